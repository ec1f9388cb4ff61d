// Package commands is the command worker: a comment's `@basinix …`
// commands (and the web page's actions, which are the same commands) as a
// job, carried out step by step so that a job resumed after a crash goes
// on from the first command not done, and the jobs the commands start
// (requested builds and tests, diffoscope). Every reply is named by what
// it answers, so it is posted once however often GitHub's answer is lost.
package commands

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// The kinds of job the worker runs.
const (
	KindCommand    = "command"    // a comment's commands
	KindRequested  = "requested"  // `@basinix build/test ATTR…`, built and published
	KindDiffoscope = "diffoscope" // `@basinix diff ATTR…`, compared and answered
)

// Config is about comment commands ("@basinix rebuild").
type Config struct {
	// Name is what a command line starts with, after "@".
	Name string `yaml:"name"`
	// Permissions are the repository permissions (GitHub's permission or
	// role name) that may run commands.
	Permissions []string `yaml:"permissions"`
	// MergeMethod is how `merge` merges: merge, squash or rebase.
	MergeMethod string `yaml:"merge_method"`
	// MergeChecks are the basinix checks `merge` requires to have passed:
	// "eval" (no evaluation error) and "build" (nothing newly failing on
	// any system).
	MergeChecks []string `yaml:"merge_checks"`
}

// Store is what the worker reads and records: the PR's revisions and
// reports, re-runs, the commands' steps and outcomes.
type Store interface {
	review.ReportStore
	PRRevisions(ctx context.Context, repo string, pr int) ([]*store.Revision, error)
	RerunRevision(ctx context.Context, id int64, opt store.RerunOptions, done ...store.StepDone) (bool, error)
	JobStep(ctx context.Context, done store.StepDone) error
	PutCommand(ctx context.Context, c store.CommandRecord, done ...store.StepDone) error
}

// Reviewer builds what the commands ask for.
type Reviewer interface {
	BuildAttrs(ctx context.Context, req review.AttrsRequest) (map[string][]report.BuiltAttr, error)
	Diffoscope(ctx context.Context, e *report.AttrEntry) ([]build.DiffoscopeRun, error)
}

// Installations gives the GitHub client of an installation.
type Installations interface {
	NewInstallationClient(id int64) (*github.Client, error)
}

// Worker carries out the commands' jobs.
type Worker struct {
	Config   Config
	Systems  []string
	Store    Store
	Reviewer Reviewer
	GitHub   Installations
	// AddJob records a job (with done, the step that started it).
	AddJob func(ctx context.Context, j store.NewJob, done ...store.StepDone) error
	// Rerun wakes the revision pipeline: a re-run was queued.
	Rerun func()
	// Transient says whether an error is the machine's or GitHub's fault
	// (the job is tried again later) rather than the command's.
	Transient func(error) bool
	// MaxAttempts is how many times a job is taken before a lasting fault
	// is published as its result.
	MaxAttempts int
	// The web pages: a log, a PR, a revision's PR or branch; and where
	// diffoscope reports are kept and served.
	PublicURL     string
	LogLink       func(log string) string
	PRURL         func(repo string, pr int) string
	DetailsURL    func(rev *store.Revision) string
	DiffoscopeDir string
	Log           zerolog.Logger
}

// RunCommands carries out a comment's commands: the comment gets 👀; what
// is not a command gets the help text; a user without the configured
// permission gets a short refusal; each command then gets its result. The
// job's steps are the commands done: a job resumed after a crash goes on
// from the first not done, and every reply is named by the comment it
// answers, so it is posted once however often GitHub's answer is lost.
func (w *Worker) RunCommands(ctx context.Context, j *store.Job) error {
	var req handlers.CommandRequest
	if err := j.Decode(&req); err != nil {
		return err
	}
	gh, err := w.GitHub.NewInstallationClient(req.InstallationID)
	if err != nil {
		return fmt.Errorf("commands on %s#%d: %w", req.Repo, req.PR, err)
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	replyTo := strconv.FormatInt(req.CommentID, 10)
	if req.CommentID == 0 { // a web action: named by its job
		replyTo = fmt.Sprintf("web-%d", j.ID)
	}
	reply := func(body, key string) error {
		if err := publish.PostComment(ctx, gh, owner, repo, req.PR, body, fmt.Sprintf("reply-%s-%s", replyTo, key)); err != nil {
			return fmt.Errorf("reply on %s#%d: %w", req.Repo, req.PR, err)
		}
		return nil
	}
	name := w.Config.Name
	var act []handlers.Command
	help := len(req.Errors) > 0
	for _, c := range req.Commands {
		if c.Verb == "help" {
			help = true
		} else {
			act = append(act, c)
		}
	}
	if j.Step == 0 {
		if err := w.acknowledge(ctx, gh, req, help, reply); err != nil {
			return err
		}
		if err := w.Store.JobStep(ctx, store.StepDone{Job: j.ID, Step: 1}); err != nil {
			return err
		}
	}
	if len(act) == 0 || j.Step > len(act) {
		return nil
	}
	perm, role, err := publish.UserPermission(ctx, gh, owner, repo, req.User)
	if err != nil {
		return err
	}
	if ok, has := publish.Permitted(w.Config.Permissions, perm, role); !ok {
		w.Log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("permission", has).Msg("commands refused")
		if err := reply(fmt.Sprintf("@%s: only users with %s permission on this repository may run `@%s` commands; you have %s.",
			req.User, strings.Join(w.Config.Permissions, ", "), name, has), "refused"); err != nil {
			return err
		}
		for i, c := range act {
			w.record(ctx, req, c, "refused: "+has+" permission", store.StepDone{Job: j.ID, Step: i + 2})
		}
		return nil
	}
	for i, c := range act {
		if j.Step > i+1 {
			continue // done before a restart
		}
		done := store.StepDone{Job: j.ID, Step: i + 2}
		msg, marked, err := w.command(ctx, gh, req, c, done)
		if err != nil {
			if w.Transient(err) {
				return err // tried again later, from this command on
			}
			msg = fmt.Sprintf("`@%s %s` failed: %s", name, c.Verb, report.Code(err.Error()))
		}
		if msg != "" {
			if err := reply(msg, strconv.Itoa(i+1)); err != nil {
				return err
			}
		}
		outcome := "done"
		switch {
		case err != nil:
			outcome = "error: " + err.Error()
		case msg != "":
			outcome = msg
		}
		if marked {
			w.record(ctx, req, c, outcome)
		} else {
			w.record(ctx, req, c, outcome, done)
		}
	}
	return nil
}

// acknowledge is a comment's first step: 👀 on it (a web action has no
// comment), and the help text with what was not understood when it asks
// for help or has lines that are not commands.
func (w *Worker) acknowledge(ctx context.Context, gh *github.Client, req handlers.CommandRequest, help bool, reply func(body, key string) error) error {
	if req.CommentID != 0 {
		owner, repo, _ := strings.Cut(req.Repo, "/")
		if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, owner, repo, req.CommentID, "eyes"); err != nil {
			return fmt.Errorf("react to comment %d on %s: %w", req.CommentID, req.Repo, err)
		}
	}
	if !help {
		return nil
	}
	var b strings.Builder
	for _, e := range req.Errors {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	b.WriteString(handlers.Help(w.Config.Name))
	return reply(b.String(), "help")
}

// record keeps a command and its outcome for the PR page, with the job
// step that did it.
func (w *Worker) record(ctx context.Context, req handlers.CommandRequest, c handlers.Command, outcome string, done ...store.StepDone) {
	line := strings.TrimSpace(strings.Join(append([]string{c.Verb}, c.Attrs...), " ") + " " + c.Message)
	if err := w.Store.PutCommand(ctx, store.CommandRecord{Repo: req.Repo, PR: req.PR, User: req.User, Command: line, Outcome: outcome, Received: time.Now(), Via: req.Via}, done...); err != nil {
		w.Log.Warn().Err(err).Msg("recording a command")
	}
}

// command carries out one accepted command and returns the reply to post
// ("" when its result is a check run), and whether it recorded done as
// part of its own write (a command whose effect is in the store).
func (w *Worker) command(ctx context.Context, gh *github.Client, req handlers.CommandRequest, c handlers.Command, done store.StepDone) (string, bool, error) {
	switch c.Verb {
	case "rebuild", "eval", "build", "test":
		if req.Closed || req.Merged {
			// Reviewing it again would compare it with the branch as it is
			// now, and replace its last review with that.
			state := "closed"
			if req.Merged {
				state = "merged"
			}
			return fmt.Sprintf("This pull request is %s: basinix keeps its last review of it and builds nothing more for it. Reopen it to have it reviewed again.", state), false, nil
		}
	}
	switch c.Verb {
	case "rebuild":
		return w.rerun(ctx, req, c.Verb, store.RerunOptions{RebuildFailed: true}, done)
	case "eval":
		return w.rerun(ctx, req, c.Verb, store.RerunOptions{FreshEval: true}, done)
	case "review":
		rev, rep, msg, err := w.reviewed(ctx, req)
		if msg != "" || err != nil {
			return msg, false, err
		}
		var b strings.Builder
		if err := report.WriteMarkdown(&b, rep, report.MarkdownOptions{Link: w.LogLink}); err != nil {
			return "", false, err
		}
		owner, repo, _ := strings.Cut(req.Repo, "/")
		body := report.Fit(b.String(), w.DetailsURL(rev))
		if err := publish.PostReview(ctx, gh, owner, repo, req.PR, rev.HeadSHA, body, fmt.Sprintf("review-%d", req.CommentID)); err != nil {
			return "", false, fmt.Errorf("review on %s#%d: %w", req.Repo, req.PR, err)
		}
		return "", false, nil
	case "merge":
		msg, err := w.merge(ctx, gh, req, c.Message)
		return msg, false, err
	case "build", "test":
		return w.requested(ctx, req, c, done)
	case "diff":
		if err := w.AddJob(ctx, store.NewJob{Kind: KindDiffoscope, Payload: diffRequest{CommandRequest: req, Attrs: c.Attrs}}, done); err != nil {
			return "", false, err
		}
		return "", true, nil
	}
	return fmt.Sprintf("`@%s %s` is not available yet.", w.Config.Name, c.Verb), false, nil
}

// requestedBuild is a `@basinix build/test ATTR…` job: the attributes
// built at the PR's merged head, each system reported in its own check run
// (`basinix / build-requested (SYSTEM)`, `basinix / tests (SYSTEM)`).
type requestedBuild struct {
	InstallationID       int64
	Repo                 string
	PR                   int
	Revision             int64
	CloneURL, Base, Head string
	Attrs                []string
	Tests                bool
	User                 string
}

// requested queues the build of named attributes (or their tests) as a
// job of its own, recorded with the command's step.
func (w *Worker) requested(ctx context.Context, req handlers.CommandRequest, c handlers.Command, done store.StepDone) (string, bool, error) {
	revs, err := w.Store.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", false, err
	}
	if len(revs) == 0 {
		return "This pull request has not been seen yet: push to it, or wait for the next reconciliation.", false, nil
	}
	rev := revs[0]
	rb := requestedBuild{InstallationID: req.InstallationID, Repo: req.Repo, PR: req.PR, Revision: rev.ID, CloneURL: rev.CloneURL, Base: rev.BaseRef, Head: rev.HeadSHA,
		Attrs: c.Attrs, Tests: c.Verb == "test", User: req.User}
	if err := w.AddJob(ctx, store.NewJob{Kind: KindRequested, Payload: rb}, done); err != nil {
		return "", false, err
	}
	return "", true, nil
}

// RunRequested builds a requested build job's attributes and publishes
// them. Its check runs are named by the job (their external id), so a
// resumed job finds them instead of creating them again; the builds'
// results are remembered by derivation, so it builds nothing twice.
func (w *Worker) RunRequested(ctx context.Context, j *store.Job) error {
	var rb requestedBuild
	if err := j.Decode(&rb); err != nil {
		return err
	}
	gh, err := w.GitHub.NewInstallationClient(rb.InstallationID)
	if err != nil {
		return fmt.Errorf("requested build on %s#%d: %w", rb.Repo, rb.PR, err)
	}
	kind := "build-requested"
	if rb.Tests {
		kind = "tests"
	}
	details := w.PRURL(rb.Repo, rb.PR)
	ids := map[string]int64{}
	for _, s := range w.Systems {
		id, err := publish.EnsureCheckRun(ctx, gh, rb.Repo, rb.Head, publish.CheckRunSpec{
			Name: report.RequestCheckName(kind, s), ExternalID: fmt.Sprintf("job-%d", j.ID), Details: details, Status: "in_progress",
			Title: strings.Join(rb.Attrs, " "), Summary: "Asked by @" + rb.User + ".",
		})
		if err != nil {
			return err
		}
		ids[s] = id
	}
	results, err := w.Reviewer.BuildAttrs(ctx, review.AttrsRequest{Repo: rb.CloneURL, Base: rb.Base, Head: rb.Head, Systems: w.Systems, Attrs: rb.Attrs, Tests: rb.Tests})
	if err != nil && (ctx.Err() != nil || w.Transient(err) && j.Attempts < w.MaxAttempts) {
		return err // the check runs stay in progress; tried again
	}
	for _, s := range w.Systems {
		var cr report.CheckRun
		if err != nil {
			cr = report.CheckRun{Title: "could not build", Summary: report.Fit(report.CodeBlock(err.Error()), ""), Conclusion: "neutral"}
		} else {
			cr = report.RequestedCheckRun(results[s], report.MarkdownOptions{Link: w.LogLink})
		}
		if uerr := publish.Complete(ctx, gh, rb.Repo, ids[s], report.RequestCheckName(kind, s), cr); uerr != nil {
			return fmt.Errorf("publish requested builds on %s#%d: %w", rb.Repo, rb.PR, uerr)
		}
	}
	return nil
}

// rerun reviews the PR's latest finished revision again as opt says; the
// new check runs are the result.
func (w *Worker) rerun(ctx context.Context, req handlers.CommandRequest, verb string, opt store.RerunOptions, done store.StepDone) (string, bool, error) {
	revs, err := w.Store.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", false, err
	}
	if len(revs) == 0 {
		return "This pull request has not been reviewed yet.", false, nil
	}
	latest := revs[0]
	ok, err := w.Store.RerunRevision(ctx, latest.ID, opt, done)
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "This pull request's latest review was stopped: there is nothing to run again.", true, nil
	}
	w.Log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("command", verb).Msg("re-run queued")
	w.Rerun()
	switch latest.State {
	case store.Queued, store.Evaluating, store.Building, store.Publishing:
		return fmt.Sprintf("A review of %s is running: this runs when it is done.", report.Short(latest.HeadSHA)), true, nil
	}
	return "", true, nil
}

// reviewed returns the PR's latest revision and its report, or the reply
// saying why there is none to act on.
func (w *Worker) reviewed(ctx context.Context, req handlers.CommandRequest) (*store.Revision, *report.Report, string, error) {
	revs, err := w.Store.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return nil, nil, "", err
	}
	if len(revs) == 0 {
		return nil, nil, "This pull request has not been reviewed yet.", nil
	}
	rev := revs[0]
	if rev.State != store.Done || len(rev.Report) == 0 {
		return nil, nil, fmt.Sprintf("The review of %s is not finished (%s): ask again when it is.", report.Short(rev.HeadSHA), rev.State), nil
	}
	rep, err := review.LoadReport(ctx, w.Store, rev)
	if err != nil {
		return nil, nil, "", err
	}
	return rev, rep, "", nil
}

// merge merges the PR through the API when its latest review is of its
// current head, its checks passed and GitHub says it is mergeable; a
// refusal says which condition failed. A message is posted as a comment
// first; without one the merge is silent.
func (w *Worker) merge(ctx context.Context, gh *github.Client, req handlers.CommandRequest, message string) (string, error) {
	rev, rep, msg, err := w.reviewed(ctx, req)
	if msg != "" || err != nil {
		return "Not merged: " + msg, err
	}
	checks := w.Config.MergeChecks
	if slices.Contains(checks, "eval") && rep.EvalBroken() {
		return fmt.Sprintf("Not merged: `%s` is failure (the change breaks evaluation).", report.EvalCheckName), nil
	}
	for _, s := range w.Systems {
		if sys := rep.Systems[s]; sys != nil && slices.Contains(checks, "build") {
			if title, conclusion := sys.BuildStatus(); conclusion == "failure" {
				return fmt.Sprintf("Not merged: `%s` is failure (%s).", report.BuildCheckName(s), title), nil
			}
		}
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	pr, _, err := gh.PullRequests.Get(ctx, owner, repo, req.PR)
	if err != nil {
		return "", fmt.Errorf("pull request %s#%d: %w", req.Repo, req.PR, err)
	}
	switch {
	case pr.GetMerged():
		// Merged since (by this command before a restart, or by someone):
		// GitHub shows it.
		return "", nil
	case pr.GetHead().GetSHA() != rev.HeadSHA:
		return fmt.Sprintf("Not merged: the pull request moved to %s since its review of %s; ask again when that is reviewed.", report.Short(pr.GetHead().GetSHA()), report.Short(rev.HeadSHA)), nil
	case pr.Mergeable == nil:
		return "Not merged: GitHub has not decided yet whether the pull request can be merged; ask again in a minute.", nil
	case !pr.GetMergeable():
		return "Not merged: GitHub says the pull request cannot be merged (conflicts or branch protection).", nil
	}
	if message != "" {
		if err := publish.PostComment(ctx, gh, owner, repo, req.PR, message, fmt.Sprintf("merge-message-%d", req.CommentID)); err != nil {
			return "", fmt.Errorf("comment on %s#%d: %w", req.Repo, req.PR, err)
		}
	}
	if err := publish.MergeOnce(ctx, gh, owner, repo, req.PR, rev.HeadSHA, w.Config.MergeMethod); err != nil {
		return "Not merged: GitHub refused: " + report.Code(err.Error()), nil
	}
	w.Log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("method", w.Config.MergeMethod).Msg("merged")
	return "", nil
}

// diffRequest is a `@basinix diff ATTR…` job.
type diffRequest struct {
	handlers.CommandRequest
	Attrs []string
}

// RunDiffoscope runs diffoscope on the attributes' outputs in the PR's
// latest review and answers the comment with links to the reports (one
// reply per job, posted once).
func (w *Worker) RunDiffoscope(ctx context.Context, j *store.Job) error {
	var req diffRequest
	if err := j.Decode(&req); err != nil {
		return err
	}
	gh, err := w.GitHub.NewInstallationClient(req.InstallationID)
	if err != nil {
		return fmt.Errorf("diff on %s#%d: %w", req.Repo, req.PR, err)
	}
	_, rep, msg, err := w.reviewed(ctx, req.CommandRequest)
	if err != nil {
		return err
	}
	if msg == "" {
		var b strings.Builder
		for _, attr := range req.Attrs {
			for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
				runs, err := w.Reviewer.Diffoscope(ctx, rep.Systems[system].Attrs[attr])
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintf(&b, "- %s (%s): %s\n", report.Code(attr), system, report.Code(err.Error()))
					continue
				}
				for _, r := range runs {
					// The report is this repository's readers' only.
					if err := os.WriteFile(filepath.Join(w.DiffoscopeDir, r.File+".repo"), []byte(req.Repo), 0o644); err != nil {
						return fmt.Errorf("diff on %s#%d: %w", req.Repo, req.PR, err)
					}
					fmt.Fprintf(&b, "- %s (%s, output %s): ", report.Code(attr), system, r.Output)
					switch {
					case !r.Differs:
						b.WriteString("no differences\n")
					default:
						fmt.Fprintf(&b, "[diffoscope report](%s/diffoscope/%s) (%s%s)\n", strings.TrimSuffix(w.PublicURL, "/"), r.File,
							report.HumanBytes(r.Size), map[bool]string{true: ", cut to its bound"}[r.Truncated])
					}
				}
			}
		}
		msg = "diffoscope, base → head:\n\n" + b.String()
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	if err := publish.PostComment(ctx, gh, owner, repo, req.PR, msg, fmt.Sprintf("diff-%d", j.ID)); err != nil {
		return fmt.Errorf("reply on %s#%d: %w", req.Repo, req.PR, err)
	}
	return nil
}
