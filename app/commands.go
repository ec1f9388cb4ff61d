package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/app/web"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

var _ handlers.Commands = (*pipeline)(nil)

// Commands implements handlers.Commands: the comment's commands become a
// job, carried out by runCommands.
func (p *pipeline) Commands(ctx context.Context, req handlers.CommandRequest) error {
	return p.jobs.add(ctx, store.NewJob{Kind: jobCommand, Payload: req})
}

// runCommands carries out a comment's commands: the comment gets 👀; what
// is not a command gets the help text; a user without the configured
// permission gets a short refusal; each command then gets its result. The
// job's steps are the commands done: a job resumed after a crash goes on
// from the first not done, and every reply is named by the comment it
// answers, so it is posted once however often GitHub's answer is lost.
func (p *pipeline) runCommands(ctx context.Context, j *store.Job) error {
	var req handlers.CommandRequest
	if err := payload(j, &req); err != nil {
		return err
	}
	gh, err := p.gh.NewInstallationClient(req.InstallationID)
	if err != nil {
		return fmt.Errorf("commands on %s#%d: %w", req.Repo, req.PR, err)
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	replyTo := strconv.FormatInt(req.CommentID, 10)
	if req.CommentID == 0 { // a web action: named by its job
		replyTo = fmt.Sprintf("web-%d", j.ID)
	}
	reply := func(body, key string) error {
		if err := postComment(ctx, gh, owner, repo, req.PR, body, fmt.Sprintf("reply-%s-%s", replyTo, key)); err != nil {
			return fmt.Errorf("reply on %s#%d: %w", req.Repo, req.PR, err)
		}
		return nil
	}
	name := p.cfg.Commands.Name
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
		if req.CommentID != 0 {
			if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, owner, repo, req.CommentID, "eyes"); err != nil {
				return fmt.Errorf("react to comment %d on %s: %w", req.CommentID, req.Repo, err)
			}
		}
		if help {
			var b strings.Builder
			for _, e := range req.Errors {
				fmt.Fprintf(&b, "- %s\n", e)
			}
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(handlers.Help(name))
			if err := reply(b.String(), "help"); err != nil {
				return err
			}
		}
		if err := p.st.JobStep(ctx, store.StepDone{Job: j.ID, Step: 1}); err != nil {
			return err
		}
	}
	if len(act) == 0 || j.Step > len(act) {
		return nil
	}
	perm, role, err := web.UserPermission(ctx, gh, owner, repo, req.User)
	if err != nil {
		return err
	}
	allowed := p.cfg.Commands.Permissions
	if !slices.Contains(allowed, perm) && !slices.Contains(allowed, role) {
		p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("permission", role).Msg("commands refused")
		if err := reply(fmt.Sprintf("@%s: only users with %s permission on this repository may run `@%s` commands; you have %s.",
			req.User, strings.Join(allowed, ", "), name, role), "refused"); err != nil {
			return err
		}
		for i, c := range act {
			p.record(ctx, req, c, "refused: "+role+" permission", store.StepDone{Job: j.ID, Step: i + 2})
		}
		return nil
	}
	for i, c := range act {
		if j.Step > i+1 {
			continue // done before a restart
		}
		done := store.StepDone{Job: j.ID, Step: i + 2}
		msg, marked, err := p.command(ctx, gh, req, c, done)
		if err != nil {
			if transient(err) {
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
			p.record(ctx, req, c, outcome)
		} else {
			p.record(ctx, req, c, outcome, done)
		}
	}
	return nil
}

// record keeps a command and its outcome for the PR page, with the job
// step that did it.
func (p *pipeline) record(ctx context.Context, req handlers.CommandRequest, c handlers.Command, outcome string, done ...store.StepDone) {
	line := strings.TrimSpace(strings.Join(append([]string{c.Verb}, c.Attrs...), " ") + " " + c.Message)
	if err := p.st.PutCommand(ctx, store.CommandRecord{Repo: req.Repo, PR: req.PR, User: req.User, Command: line, Outcome: outcome, Received: time.Now(), Via: req.Via}, done...); err != nil {
		p.log.Warn().Err(err).Msg("recording a command")
	}
}

// command carries out one accepted command and returns the reply to post
// ("" when its result is a check run), and whether it recorded done as
// part of its own write (a command whose effect is in the store).
func (p *pipeline) command(ctx context.Context, gh *github.Client, req handlers.CommandRequest, c handlers.Command, done store.StepDone) (string, bool, error) {
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
		return p.rerun(ctx, req, c.Verb, store.RerunOptions{RebuildFailed: true}, done)
	case "eval":
		return p.rerun(ctx, req, c.Verb, store.RerunOptions{FreshEval: true}, done)
	case "review":
		rev, rep, msg, err := p.reviewed(ctx, req)
		if msg != "" || err != nil {
			return msg, false, err
		}
		var b strings.Builder
		if err := report.WriteMarkdown(&b, rep, report.MarkdownOptions{Link: p.logURL}); err != nil {
			return "", false, err
		}
		owner, repo, _ := strings.Cut(req.Repo, "/")
		body := report.Fit(b.String(), p.detailsURL(rev))
		if err := postReview(ctx, gh, owner, repo, req.PR, rev.HeadSHA, body, fmt.Sprintf("review-%d", req.CommentID)); err != nil {
			return "", false, fmt.Errorf("review on %s#%d: %w", req.Repo, req.PR, err)
		}
		return "", false, nil
	case "merge":
		msg, err := p.merge(ctx, gh, req, c.Message)
		return msg, false, err
	case "build", "test":
		return p.requested(ctx, req, c, done)
	case "diff":
		if err := p.jobs.add(ctx, store.NewJob{Kind: jobDiffoscope, Payload: diffRequest{CommandRequest: req, Attrs: c.Attrs}}, done); err != nil {
			return "", false, err
		}
		return "", true, nil
	}
	return fmt.Sprintf("`@%s %s` is not available yet.", p.cfg.Commands.Name, c.Verb), false, nil
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
func (p *pipeline) requested(ctx context.Context, req handlers.CommandRequest, c handlers.Command, done store.StepDone) (string, bool, error) {
	revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", false, err
	}
	if len(revs) == 0 {
		return "This pull request has not been seen yet: push to it, or wait for the next reconciliation.", false, nil
	}
	rev := revs[0]
	rb := requestedBuild{InstallationID: req.InstallationID, Repo: req.Repo, PR: req.PR, Revision: rev.ID, CloneURL: rev.CloneURL, Base: rev.BaseRef, Head: rev.HeadSHA,
		Attrs: c.Attrs, Tests: c.Verb == "test", User: req.User}
	if err := p.jobs.add(ctx, store.NewJob{Kind: jobRequested, Payload: rb}, done); err != nil {
		return "", false, err
	}
	return "", true, nil
}

// runRequested builds a requested build job's attributes and publishes
// them. Its check runs are named by the job (their external id), so a
// resumed job finds them instead of creating them again; the builds'
// results are remembered by derivation, so it builds nothing twice.
func (p *pipeline) runRequested(ctx context.Context, j *store.Job) error {
	var rb requestedBuild
	if err := payload(j, &rb); err != nil {
		return err
	}
	gh, err := p.gh.NewInstallationClient(rb.InstallationID)
	if err != nil {
		return fmt.Errorf("requested build on %s#%d: %w", rb.Repo, rb.PR, err)
	}
	kind := "build-requested"
	if rb.Tests {
		kind = "tests"
	}
	details := p.prURL(rb.Repo, rb.PR)
	ids := map[string]int64{}
	for _, s := range p.cfg.Systems {
		id, err := ensureCheckRun(ctx, gh, rb.Repo, rb.Head, checkRunSpec{
			Name: report.RequestCheckName(kind, s), ExternalID: fmt.Sprintf("job-%d", j.ID), Details: details, Status: "in_progress",
			Title: strings.Join(rb.Attrs, " "), Summary: "Asked by @" + rb.User + ".",
		})
		if err != nil {
			return err
		}
		ids[s] = id
	}
	results, err := p.rv.BuildAttrs(ctx, review.AttrsRequest{Repo: rb.CloneURL, Base: rb.Base, Head: rb.Head, Systems: p.cfg.Systems, Attrs: rb.Attrs, Tests: rb.Tests})
	if err != nil && (ctx.Err() != nil || transient(err) && j.Attempts < maxJobAttempts) {
		return err // the check runs stay in progress; tried again
	}
	owner, repo, _ := strings.Cut(rb.Repo, "/")
	for _, s := range p.cfg.Systems {
		var cr report.CheckRun
		if err != nil {
			cr = report.CheckRun{Title: "could not build", Summary: report.Fit(report.CodeBlock(err.Error()), ""), Conclusion: "neutral"}
		} else {
			cr = report.RequestedCheckRun(results[s], report.MarkdownOptions{Link: p.logURL})
		}
		if _, _, uerr := gh.Checks.UpdateCheckRun(ctx, owner, repo, ids[s], github.UpdateCheckRunOptions{
			Name: report.RequestCheckName(kind, s), Conclusion: github.String(cr.Conclusion),
			Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(cr.Summary)},
		}); uerr != nil {
			return fmt.Errorf("publish requested builds on %s#%d: %w", rb.Repo, rb.PR, uerr)
		}
	}
	return nil
}

// rerun reviews the PR's latest finished revision again as opt says; the
// new check runs are the result.
func (p *pipeline) rerun(ctx context.Context, req handlers.CommandRequest, verb string, opt store.RerunOptions, done store.StepDone) (string, bool, error) {
	revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", false, err
	}
	if len(revs) == 0 {
		return "This pull request has not been reviewed yet.", false, nil
	}
	latest := revs[0]
	ok, err := p.st.RerunRevision(ctx, latest.ID, opt, done)
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "This pull request's latest review was stopped: there is nothing to run again.", true, nil
	}
	p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("command", verb).Msg("re-run queued")
	p.poke()
	switch latest.State {
	case store.Queued, store.Evaluating, store.Building, store.Publishing:
		return fmt.Sprintf("A review of %s is running: this runs when it is done.", report.Short(latest.HeadSHA)), true, nil
	}
	return "", true, nil
}

// reviewed returns the PR's latest revision and its report, or the reply
// saying why there is none to act on.
func (p *pipeline) reviewed(ctx context.Context, req handlers.CommandRequest) (*store.Revision, *report.Report, string, error) {
	revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
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
	rep, err := review.LoadReport(ctx, p.st, rev)
	if err != nil {
		return nil, nil, "", err
	}
	return rev, rep, "", nil
}

// merge merges the PR through the API when its latest review is of its
// current head, its checks passed and GitHub says it is mergeable; a
// refusal says which condition failed. A message is posted as a comment
// first; without one the merge is silent.
func (p *pipeline) merge(ctx context.Context, gh *github.Client, req handlers.CommandRequest, message string) (string, error) {
	rev, rep, msg, err := p.reviewed(ctx, req)
	if msg != "" || err != nil {
		return "Not merged: " + msg, err
	}
	checks := p.cfg.Commands.MergeChecks
	if slices.Contains(checks, "eval") && rep.EvalBroken() {
		return fmt.Sprintf("Not merged: `%s` is failure (the change breaks evaluation).", report.EvalCheckName), nil
	}
	for _, s := range p.cfg.Systems {
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
		if err := postComment(ctx, gh, owner, repo, req.PR, message, fmt.Sprintf("merge-message-%d", req.CommentID)); err != nil {
			return "", fmt.Errorf("comment on %s#%d: %w", req.Repo, req.PR, err)
		}
	}
	if err := mergeOnce(ctx, gh, owner, repo, req.PR, rev.HeadSHA, p.cfg.Commands.MergeMethod); err != nil {
		return "Not merged: GitHub refused: " + report.Code(err.Error()), nil
	}
	p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("method", p.cfg.Commands.MergeMethod).Msg("merged")
	return "", nil
}

// diffRequest is a `@basinix diff ATTR…` job.
type diffRequest struct {
	handlers.CommandRequest
	Attrs []string
}

// runDiffoscope runs diffoscope on the attributes' outputs in the PR's
// latest review and answers the comment with links to the reports (one
// reply per job, posted once).
func (p *pipeline) runDiffoscope(ctx context.Context, j *store.Job) error {
	var req diffRequest
	if err := payload(j, &req); err != nil {
		return err
	}
	gh, err := p.gh.NewInstallationClient(req.InstallationID)
	if err != nil {
		return fmt.Errorf("diff on %s#%d: %w", req.Repo, req.PR, err)
	}
	_, rep, msg, err := p.reviewed(ctx, req.CommandRequest)
	if err != nil {
		return err
	}
	if msg == "" {
		var b strings.Builder
		for _, attr := range req.Attrs {
			for _, system := range sortedKeys(rep.Systems) {
				runs, err := p.rv.Diffoscope(ctx, rep.Systems[system].Attrs[attr])
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fmt.Fprintf(&b, "- %s (%s): %s\n", report.Code(attr), system, report.Code(err.Error()))
					continue
				}
				for _, r := range runs {
					// The report is this repository's readers' only.
					if err := os.WriteFile(filepath.Join(review.DiffoscopeDir(p.cfg.DataDir), r.File+".repo"), []byte(req.Repo), 0o644); err != nil {
						return fmt.Errorf("diff on %s#%d: %w", req.Repo, req.PR, err)
					}
					fmt.Fprintf(&b, "- %s (%s, output %s): ", report.Code(attr), system, r.Output)
					switch {
					case !r.Differs:
						b.WriteString("no differences\n")
					default:
						fmt.Fprintf(&b, "[diffoscope report](%s/diffoscope/%s) (%s%s)\n", strings.TrimSuffix(p.cfg.Server.PublicURL, "/"), r.File,
							report.HumanBytes(r.Size), map[bool]string{true: ", cut to its bound"}[r.Truncated])
					}
				}
			}
		}
		msg = "diffoscope, base → head:\n\n" + b.String()
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	if err := postComment(ctx, gh, owner, repo, req.PR, msg, fmt.Sprintf("diff-%d", j.ID)); err != nil {
		return fmt.Errorf("reply on %s#%d: %w", req.Repo, req.PR, err)
	}
	return nil
}
