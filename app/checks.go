package app

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
	"github.com/basinix/basinix/store"
)

// rebuildAction is the check run button that rebuilds the failed builds.
var rebuildAction = &github.CheckRunAction{Label: "Rebuild failed", Description: "Build the failed derivations again", Identifier: "rebuild-failed"}

// checkRunStore is what publishing check runs keeps: each one's GitHub id
// and whether its final result was sent.
type checkRunStore interface {
	CheckRunID(ctx context.Context, revision int64, name string) (int64, error)
	PutCheckRunID(ctx context.Context, revision int64, name string, id int64) error
	CheckRunFinal(ctx context.Context, revision int64, name string) (bool, error)
	SetCheckRunFinal(ctx context.Context, revision int64, name string) error
}

// checks publishes one revision's check runs. The GitHub id of each check
// run is kept in the store, so a restarted server updates the check runs
// it created before instead of creating them again.
type checks struct {
	st      checkRunStore
	gh      *github.Client
	log     zerolog.Logger
	rev     *store.Revision
	details string // details_url
	// creating serialises the creation of the revision's check runs (the
	// announcement and the worker may both try).
	creating *sync.Mutex
}

func (c *checks) owner() (string, string) {
	owner, repo, _ := strings.Cut(c.rev.Repo, "/")
	return owner, repo
}

// id returns the GitHub id of the named check run, creating it (with
// status "queued" or "in_progress") when the store knows none.
func (c *checks) id(ctx context.Context, name, status string) (int64, error) {
	c.creating.Lock()
	defer c.creating.Unlock()
	id, err := c.st.CheckRunID(ctx, c.rev.ID, name)
	if err != nil || id != 0 {
		return id, err
	}
	id, err = ensureCheckRun(ctx, c.gh, c.rev.Repo, c.rev.HeadSHA, checkRunSpec{Name: name, Status: status, Details: c.details, ExternalID: c.externalID()})
	if err != nil {
		return 0, err
	}
	return id, c.st.PutCheckRunID(ctx, c.rev.ID, name, id)
}

// externalID names the revision's check runs among those of its commit:
// the revision and its attempt.
func (c *checks) externalID() string {
	return strconv.FormatInt(c.rev.ID, 10) + "." + strconv.Itoa(c.rev.Attempt)
}

// checkRunSpec is a check run to create.
type checkRunSpec struct {
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

// ensureCheckRun returns the id of the check run spec names on head,
// creating it unless it exists: it is looked for by name and external id
// first (created before a kill, its id not remembered), and after a
// failed create (GitHub created it, its answer lost).
func ensureCheckRun(ctx context.Context, gh *github.Client, fullName, head string, spec checkRunSpec) (int64, error) {
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

// publish updates the named check run with cr: the annotations go in
// batches of 50, each batch its own update (GitHub appends them), and the
// conclusion, when cr has one, comes with the last.
func (c *checks) publish(ctx context.Context, name string, cr report.CheckRun, actions ...*github.CheckRunAction) error {
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
			return fmt.Errorf("check run %q on %s@%s: %w", name, c.rev.Repo, c.rev.HeadSHA, err)
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
			return fmt.Errorf("update check run %q on %s@%s: %w", name, c.rev.Repo, c.rev.HeadSHA, err)
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
func (c *checks) refusedOutput(ctx context.Context, name string, id int64, cr report.CheckRun, refusal string, actions []*github.CheckRunAction) error {
	c.log.Error().Str("check_run", name).Str("repo", c.rev.Repo).Str("head", c.rev.HeadSHA).Str("github", refusal).
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
		return fmt.Errorf("update check run %q on %s@%s with a short output: %w", name, c.rev.Repo, c.rev.HeadSHA, err)
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

// final sends a check run's final output unless it was sent before, and
// records that it was.
func (c *checks) final(ctx context.Context, name string, cr report.CheckRun, actions ...*github.CheckRunAction) error {
	done, err := c.st.CheckRunFinal(ctx, c.rev.ID, name)
	if err != nil || done {
		return err
	}
	if err := c.publish(ctx, name, cr, actions...); err != nil {
		return err
	}
	return c.st.SetCheckRunFinal(ctx, c.rev.ID, name)
}
