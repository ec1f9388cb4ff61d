// Package publish is basinix's voice on GitHub: a revision's check runs
// (created once, updated in batches of annotations, their final output
// sent once), labels, comments, reviews, review requests and merges, each
// write made so that GitHub acting and then losing its answer does not
// make it twice, and the client middleware that retries what may be sent
// again. What the check runs say, and their names, come from package
// report; which revision and when, from the app.
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/report"
)

// RebuildAction is the check run button that rebuilds the failed builds.
var RebuildAction = &github.CheckRunAction{Label: "Rebuild failed", Description: "Build the failed derivations again", Identifier: "rebuild-failed"}

// Store is what publishing check runs keeps: each one's GitHub id and
// whether its final result was sent.
type Store interface {
	CheckRunID(ctx context.Context, revision int64, name string) (int64, error)
	PutCheckRunID(ctx context.Context, revision int64, name string, id int64) error
	CheckRunFinal(ctx context.Context, revision int64, name string) (bool, error)
	SetCheckRunFinal(ctx context.Context, revision int64, name string) error
}

// Revision is the revision whose check runs are published: its id and
// attempt name them among the check runs of its commit.
type Revision struct {
	ID      int64
	Attempt int
	Repo    string // owner/name
	Head    string // the commit the check runs are on
}

// Checks publishes one revision's check runs. The GitHub id of each check
// run is kept in the store, so a restarted server updates the check runs
// it created before instead of creating them again.
type Checks struct {
	st      Store
	gh      *github.Client
	log     zerolog.Logger
	rev     Revision
	details string // details_url
	// creating serialises the creation of the revision's check runs (the
	// announcement and the worker may both try).
	creating *sync.Mutex
}

// NewChecks returns the check runs publisher of rev, linking to details;
// creating is held while one of rev's check runs is created (share one
// per revision).
func NewChecks(st Store, gh *github.Client, log zerolog.Logger, rev Revision, details string, creating *sync.Mutex) *Checks {
	return &Checks{st: st, gh: gh, log: log, rev: rev, details: details, creating: creating}
}

// Details is the details URL the check runs link to.
func (c *Checks) Details() string { return c.details }

// Client is the installation client the check runs are published with.
func (c *Checks) Client() *github.Client { return c.gh }

func (c *Checks) owner() (string, string) {
	owner, repo, _ := strings.Cut(c.rev.Repo, "/")
	return owner, repo
}

// id returns the GitHub id of the named check run, creating it (with
// status "queued" or "in_progress") when the store knows none.
func (c *Checks) id(ctx context.Context, name, status string) (int64, error) {
	c.creating.Lock()
	defer c.creating.Unlock()
	id, err := c.st.CheckRunID(ctx, c.rev.ID, name)
	if err != nil || id != 0 {
		return id, err
	}
	id, err = EnsureCheckRun(ctx, c.gh, c.rev.Repo, c.rev.Head, CheckRunSpec{Name: name, Status: status, Details: c.details, ExternalID: c.externalID()})
	if err != nil {
		return 0, err
	}
	return id, c.st.PutCheckRunID(ctx, c.rev.ID, name, id)
}

// Open creates the named check run with status ("queued" or
// "in_progress") unless it exists.
func (c *Checks) Open(ctx context.Context, name, status string) error {
	_, err := c.id(ctx, name, status)
	return err
}

// externalID names the revision's check runs among those of its commit:
// the revision and its attempt.
func (c *Checks) externalID() string {
	return strconv.FormatInt(c.rev.ID, 10) + "." + strconv.Itoa(c.rev.Attempt)
}

// CheckRunSpec is a check run to create.
type CheckRunSpec struct {
	Name, Status, Details string
	// ExternalID names it among the check runs of its commit: what
	// created it (a revision's attempt, a job).
	ExternalID     string
	Title, Summary string // its first output, when Title is set
	// Conclusion, when set, creates the check run completed, with its
	// annotations (at most one batch).
	Conclusion  string
	Annotations []report.Annotation
	// Listed says the caller listed the commit's check runs just before
	// and this one was not among them: no lookup before the create.
	Listed bool
}

// EnsureCheckRun returns the id of the check run spec names on head,
// creating it unless it exists: it is looked for by name and external id
// first (created before a kill, its id not remembered), and after a
// failed create (GitHub created it, its answer lost).
func EnsureCheckRun(ctx context.Context, gh *github.Client, fullName, head string, spec CheckRunSpec) (int64, error) {
	owner, repo, _ := strings.Cut(fullName, "/")
	var id int64
	found := func() (bool, error) {
		list, _, err := gh.Checks.ListCheckRunsForRef(ctx, owner, repo, head, &github.ListCheckRunsOptions{CheckName: github.String(spec.Name)})
		if err != nil {
			return false, fmt.Errorf("list check runs of %s@%s: %w", fullName, head, err)
		}
		for _, run := range list.CheckRuns {
			if run.GetExternalID() == spec.ExternalID {
				id = run.GetID()
				return true, nil
			}
		}
		return false, nil
	}
	if !spec.Listed {
		if ok, err := found(); err != nil || ok {
			return id, err
		}
	}
	opts := github.CreateCheckRunOptions{
		Name: spec.Name, HeadSHA: head, ExternalID: github.String(spec.ExternalID), DetailsURL: github.String(spec.Details),
		Status: github.String(spec.Status),
	}
	if spec.Title != "" {
		opts.Output = &github.CheckRunOutput{Title: github.String(spec.Title), Summary: github.String(spec.Summary), Annotations: annotations(spec.Annotations)}
	}
	if spec.Conclusion != "" {
		opts.Status = nil
		opts.Conclusion = github.String(spec.Conclusion)
		opts.CompletedAt = &github.Timestamp{Time: time.Now()}
	}
	err := once(ctx, func() error {
		run, _, err := gh.Checks.CreateCheckRun(ctx, owner, repo, opts)
		id = run.GetID()
		return err
	}, found, fmt.Sprintf("create check run %q on %s@%s", spec.Name, fullName, head))
	if err != nil {
		return 0, fmt.Errorf("create check run %q on %s@%s: %w", spec.Name, fullName, head, err)
	}
	return id, nil
}

// Publish updates the named check run with cr: the annotations go in
// batches of 50, each batch its own update (GitHub appends them), and the
// conclusion, when cr has one, comes with the last.
func (c *Checks) Publish(ctx context.Context, name string, cr report.CheckRun, actions ...*github.CheckRunAction) error {
	id, err := c.id(ctx, name, "in_progress")
	if err != nil {
		return err
	}
	owner, repo := c.owner()
	anns := cr.Annotations
	if len(anns) > 0 {
		// GitHub appends annotations: those an earlier attempt got there
		// (its answer lost, or basinix stopped between batches) are not
		// sent again.
		run, _, err := c.gh.Checks.GetCheckRun(ctx, owner, repo, id)
		if err != nil {
			return fmt.Errorf("check run %q on %s@%s: %w", name, c.rev.Repo, c.rev.Head, err)
		}
		anns = anns[min(len(anns), run.GetOutput().GetAnnotationsCount()):]
	}
	batches := report.Batches(anns)
	if len(batches) == 0 {
		batches = [][]report.Annotation{nil}
	}
	for i, batch := range batches {
		opts := github.UpdateCheckRunOptions{
			Name:   name,
			Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(cr.Summary), Annotations: annotations(batch)},
		}
		if i == len(batches)-1 && cr.Conclusion != "" {
			opts.Conclusion = github.String(cr.Conclusion)
			opts.CompletedAt = &github.Timestamp{Time: time.Now()}
			opts.Actions = append(opts.Actions, actions...)
		} else {
			opts.Status = github.String("in_progress")
		}
		if _, _, err := c.gh.Checks.UpdateCheckRun(ctx, owner, repo, id, opts); err != nil {
			if refusal := refused(err); refusal != "" {
				return c.refusedOutput(ctx, name, id, cr, refusal, actions)
			}
			// Sent again later from the start, less what got there.
			return fmt.Errorf("update check run %q on %s@%s: %w", name, c.rev.Repo, c.rev.Head, err)
		}
	}
	return nil
}

// refused returns what GitHub said when it refused a request as it is
// (422: a field past its limit, say), "" for any other error.
func refused(err error) string {
	var ge *github.ErrorResponse
	if !errors.As(err, &ge) || ge.Response == nil || ge.Response.StatusCode != http.StatusUnprocessableEntity {
		return ""
	}
	msg := ge.Message
	for _, e := range ge.Errors {
		msg += fmt.Sprintf("; %s %s %s %s", e.Resource, e.Field, e.Code, e.Message)
	}
	return msg
}

// refusedOutput completes a check run whose output GitHub refused with
// an output it cannot refuse (no annotations, a short summary pointing at
// the web page), instead of sending the refused one again and again.
func (c *Checks) refusedOutput(ctx context.Context, name string, id int64, cr report.CheckRun, refusal string, actions []*github.CheckRunAction) error {
	c.log.Error().Str("check_run", name).Str("repo", c.rev.Repo).Str("head", c.rev.Head).Str("github", refusal).
		Int("summary_chars", len(cr.Summary)).Int("annotations", len(cr.Annotations)).Msg("GitHub refused a check run's output: sending a short one instead")
	owner, repo := c.owner()
	opts := github.UpdateCheckRunOptions{
		Name: name,
		Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(fmt.Sprintf(
			"GitHub refused this check run's full output (%s). The report is at %s.", report.Fit(refusal, ""), c.details))},
	}
	if cr.Conclusion != "" {
		opts.Conclusion = github.String(cr.Conclusion)
		opts.CompletedAt = &github.Timestamp{Time: time.Now()}
		opts.Actions = actions
	} else {
		opts.Status = github.String("in_progress")
	}
	if _, _, err := c.gh.Checks.UpdateCheckRun(ctx, owner, repo, id, opts); err != nil {
		return fmt.Errorf("update check run %q on %s@%s with a short output: %w", name, c.rev.Repo, c.rev.Head, err)
	}
	return nil
}

func annotations(as []report.Annotation) []*github.CheckRunAnnotation {
	var out []*github.CheckRunAnnotation
	for _, a := range as {
		out = append(out, &github.CheckRunAnnotation{
			Path: github.String(a.Path), StartLine: github.Int(a.Line), EndLine: github.Int(a.Line),
			AnnotationLevel: github.String(a.Level), Title: github.String(a.Title), Message: github.String(a.Message),
		})
	}
	return out
}

// Final sends a check run's final output unless it was sent before, and
// records that it was.
func (c *Checks) Final(ctx context.Context, name string, cr report.CheckRun, actions ...*github.CheckRunAction) error {
	done, err := c.st.CheckRunFinal(ctx, c.rev.ID, name)
	if err != nil || done {
		return err
	}
	if err := c.Publish(ctx, name, cr, actions...); err != nil {
		return err
	}
	return c.st.SetCheckRunFinal(ctx, c.rev.ID, name)
}

// Listed returns the revision's check runs GitHub has on its commit (by
// name), from one listing of the commit's check runs, 100 a page.
func (c *Checks) Listed(ctx context.Context) (map[string]int64, error) {
	owner, repo := c.owner()
	out := map[string]int64{}
	opts := &github.ListCheckRunsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		list, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, owner, repo, c.rev.Head, opts)
		if err != nil {
			return nil, fmt.Errorf("list check runs of %s@%s: %w", c.rev.Repo, c.rev.Head, err)
		}
		for _, run := range list.CheckRuns {
			if run.GetExternalID() == c.externalID() {
				out[run.GetName()] = run.GetID()
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Create creates the named check run with cr unless the store or GitHub
// (existing, from Listed) has it, completed when cr has a conclusion.
func (c *Checks) Create(ctx context.Context, name string, cr report.CheckRun, existing map[string]int64) error {
	if id, err := c.st.CheckRunID(ctx, c.rev.ID, name); err != nil || id != 0 {
		return err
	}
	if id := existing[name]; id != 0 {
		return c.st.PutCheckRunID(ctx, c.rev.ID, name, id)
	}
	spec := CheckRunSpec{Name: name, Status: "queued", Details: c.details, ExternalID: c.externalID(), Listed: true,
		Title: cr.Title, Summary: cr.Summary, Conclusion: cr.Conclusion}
	if batches := report.Batches(cr.Annotations); len(batches) > 0 {
		spec.Annotations = batches[0]
	}
	id, err := EnsureCheckRun(ctx, c.gh, c.rev.Repo, c.rev.Head, spec)
	if err != nil {
		return err
	}
	if err := c.st.PutCheckRunID(ctx, c.rev.ID, name, id); err != nil {
		return err
	}
	if cr.Conclusion != "" && len(cr.Annotations) <= report.AnnotationsPerBatch {
		return c.st.SetCheckRunFinal(ctx, c.rev.ID, name)
	}
	return nil
}

// Complete sends the final output of check run id (one made by
// EnsureCheckRun, outside a revision's), without annotations.
func Complete(ctx context.Context, gh *github.Client, fullName string, id int64, name string, cr report.CheckRun) error {
	owner, repo, _ := strings.Cut(fullName, "/")
	_, _, err := gh.Checks.UpdateCheckRun(ctx, owner, repo, id, github.UpdateCheckRunOptions{
		Name: name, Conclusion: github.String(cr.Conclusion),
		Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(cr.Summary)},
	})
	if err != nil {
		return fmt.Errorf("complete check run %q on %s: %w", name, fullName, err)
	}
	return nil
}
