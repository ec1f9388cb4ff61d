package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

var _ handlers.Commands = (*pipeline)(nil)

// Commands implements handlers.Commands: the comment gets 👀 at once; what
// is not a command gets the help text; a user without the configured
// permission gets a short refusal; each command then gets its result.
func (p *pipeline) Commands(ctx context.Context, req handlers.CommandRequest) error {
	gh, err := p.gh.NewInstallationClient(req.InstallationID)
	if err != nil {
		return fmt.Errorf("commands on %s#%d: %w", req.Repo, req.PR, err)
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, owner, repo, req.CommentID, "eyes"); err != nil {
		return fmt.Errorf("react to comment %d on %s: %w", req.CommentID, req.Repo, err)
	}
	reply := func(body string) error {
		_, _, err := gh.Issues.CreateComment(ctx, owner, repo, req.PR, &github.IssueComment{Body: github.String(body)})
		if err != nil {
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
	if help {
		var b strings.Builder
		for _, e := range req.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(handlers.Help(name))
		if err := reply(b.String()); err != nil {
			return err
		}
	}
	if len(act) == 0 {
		return nil
	}
	// go-github v60 lacks role_name, which tells maintain from write.
	var perm struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	preq, err := gh.NewRequest("GET", fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", owner, repo, url.PathEscape(req.User)), nil)
	if err == nil {
		_, err = gh.Do(ctx, preq, &perm)
	}
	if err != nil {
		return fmt.Errorf("permission of %s on %s: %w", req.User, req.Repo, err)
	}
	allowed := p.cfg.Commands.Permissions
	if !slices.Contains(allowed, perm.Permission) && !slices.Contains(allowed, perm.RoleName) {
		for _, c := range act {
			p.record(ctx, req, c, "refused: "+perm.RoleName+" permission")
		}
		p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("permission", perm.RoleName).Msg("commands refused")
		return reply(fmt.Sprintf("@%s: only users with %s permission on this repository may run `@%s` commands; you have %s.",
			req.User, strings.Join(allowed, ", "), name, perm.RoleName))
	}
	for _, c := range act {
		msg, err := p.command(ctx, req, c)
		outcome := "done"
		switch {
		case err != nil:
			outcome = "error: " + err.Error()
		case msg != "":
			outcome = msg
		}
		p.record(ctx, req, c, outcome)
		if err != nil {
			return err
		}
		if msg != "" {
			if err := reply(msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// record keeps a command and its outcome for the PR page.
func (p *pipeline) record(ctx context.Context, req handlers.CommandRequest, c handlers.Command, outcome string) {
	line := strings.TrimSpace(strings.Join(append([]string{c.Verb}, c.Attrs...), " ") + " " + c.Message)
	if err := p.st.PutCommand(ctx, store.CommandRecord{Repo: req.Repo, PR: req.PR, User: req.User, Command: line, Outcome: outcome, Received: time.Now()}); err != nil {
		p.log.Warn().Err(err).Msg("recording a command")
	}
}

// command carries out one accepted command and returns the reply to post
// ("" when its result is a check run).
func (p *pipeline) command(ctx context.Context, req handlers.CommandRequest, c handlers.Command) (string, error) {
	switch c.Verb {
	case "rebuild", "eval", "build", "test":
		if req.Closed || req.Merged {
			// Reviewing it again would compare it with the branch as it is
			// now, and replace its last review with that.
			state := "closed"
			if req.Merged {
				state = "merged"
			}
			return fmt.Sprintf("This pull request is %s: basinix keeps its last review of it and builds nothing more for it. Reopen it to have it reviewed again.", state), nil
		}
	}
	switch c.Verb {
	case "rebuild":
		return p.rerun(ctx, req, c.Verb, store.RerunOptions{RebuildFailed: true})
	case "eval":
		return p.rerun(ctx, req, c.Verb, store.RerunOptions{FreshEval: true})
	case "review":
		rev, rep, msg, err := p.reviewed(ctx, req)
		if msg != "" || err != nil {
			return msg, err
		}
		var b strings.Builder
		if err := report.WriteMarkdown(&b, rep, report.MarkdownOptions{Link: p.logURL}); err != nil {
			return "", err
		}
		owner, repo, _ := strings.Cut(req.Repo, "/")
		gh, err := p.gh.NewInstallationClient(req.InstallationID)
		if err != nil {
			return "", err
		}
		body := report.Fit(b.String(), p.detailsURL(rev))
		if _, _, err := gh.PullRequests.CreateReview(ctx, owner, repo, req.PR, &github.PullRequestReviewRequest{
			CommitID: github.String(rev.HeadSHA), Body: github.String(body), Event: github.String("COMMENT")}); err != nil {
			return "", fmt.Errorf("review on %s#%d: %w", req.Repo, req.PR, err)
		}
		return "", nil
	case "merge":
		return p.merge(ctx, req, c.Message)
	case "build", "test":
		return p.requested(ctx, req, c)
	}
	return fmt.Sprintf("`@%s %s` is not available yet.", p.cfg.Commands.Name, c.Verb), nil
}

// requested builds named attributes (or their tests) at the PR's merged
// head, in the background, each system reported in its own check run
// (`basinix / build-requested (SYSTEM)`, `basinix / tests (SYSTEM)`).
func (p *pipeline) requested(ctx context.Context, req handlers.CommandRequest, c handlers.Command) (string, error) {
	revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", err
	}
	if len(revs) == 0 {
		return "This pull request has not been seen yet: push to it, or wait for the next reconciliation.", nil
	}
	rev := revs[0]
	gh, err := p.gh.NewInstallationClient(req.InstallationID)
	if err != nil {
		return "", err
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	kind := "build-requested"
	if c.Verb == "test" {
		kind = "tests"
	}
	ids := map[string]int64{}
	for _, s := range p.cfg.Systems {
		run, _, err := gh.Checks.CreateCheckRun(ctx, owner, repo, github.CreateCheckRunOptions{
			Name: fmt.Sprintf("basinix / %s (%s)", kind, s), HeadSHA: rev.HeadSHA, Status: github.String("in_progress"),
			DetailsURL: github.String(p.detailsURL(rev)),
			Output:     &github.CheckRunOutput{Title: github.String(strings.Join(c.Attrs, " ")), Summary: github.String("Asked by @" + req.User + ".")},
		})
		if err != nil {
			return "", fmt.Errorf("create check run on %s: %w", req.Repo, err)
		}
		ids[s] = run.GetID()
	}
	go func() {
		ctx := context.WithoutCancel(ctx)
		results, err := p.rv.BuildAttrs(ctx, AttrsRequest{Repo: rev.CloneURL, Base: rev.BaseRef, Head: rev.HeadSHA, Systems: p.cfg.Systems, Attrs: c.Attrs, Tests: c.Verb == "test"})
		for s, id := range ids {
			var cr report.CheckRun
			if err != nil {
				cr = report.CheckRun{Title: "could not build", Summary: report.Fit(report.CodeBlock(err.Error()), ""), Conclusion: "neutral"}
			} else {
				cr = report.RequestedCheckRun(results[s], report.MarkdownOptions{Link: p.logURL})
			}
			if _, _, uerr := gh.Checks.UpdateCheckRun(ctx, owner, repo, id, github.UpdateCheckRunOptions{
				Name: fmt.Sprintf("basinix / %s (%s)", kind, s), Conclusion: github.String(cr.Conclusion),
				Output: &github.CheckRunOutput{Title: github.String(cr.Title), Summary: github.String(cr.Summary)},
			}); uerr != nil {
				p.log.Error().Err(uerr).Str("repo", req.Repo).Int("pr", req.PR).Msg("publishing requested builds")
			}
		}
	}()
	return "", nil
}

// rerun reviews the PR's latest finished revision again as opt says; the
// new check runs are the result.
func (p *pipeline) rerun(ctx context.Context, req handlers.CommandRequest, verb string, opt store.RerunOptions) (string, error) {
	revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
	if err != nil {
		return "", err
	}
	if len(revs) == 0 {
		return "This pull request has not been reviewed yet.", nil
	}
	latest := revs[0]
	ok, err := p.st.RerunRevision(ctx, latest.ID, opt)
	if err != nil {
		return "", err
	}
	if !ok {
		return "This pull request's latest review was stopped: there is nothing to run again.", nil
	}
	p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("command", verb).Msg("re-run queued")
	p.poke()
	switch latest.State {
	case store.Queued, store.Evaluating, store.Building, store.Publishing:
		return fmt.Sprintf("A review of %s is running: this runs when it is done.", short(latest.HeadSHA)), nil
	}
	return "", nil
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
		return nil, nil, fmt.Sprintf("The review of %s is not finished (%s): ask again when it is.", short(rev.HeadSHA), rev.State), nil
	}
	var rep report.Report
	if err := json.Unmarshal(rev.Report, &rep); err != nil {
		return nil, nil, "", fmt.Errorf("report of revision %d: %w", rev.ID, err)
	}
	return rev, &rep, "", nil
}

// merge merges the PR through the API when its latest review is of its
// current head, its checks passed and GitHub says it is mergeable; a
// refusal says which condition failed. A message is posted as a comment
// first; without one the merge is silent.
func (p *pipeline) merge(ctx context.Context, req handlers.CommandRequest, message string) (string, error) {
	rev, rep, msg, err := p.reviewed(ctx, req)
	if msg != "" || err != nil {
		return "Not merged: " + msg, err
	}
	checks := p.cfg.Commands.MergeChecks
	if slices.Contains(checks, "eval") && rep.EvalBroken() {
		return fmt.Sprintf("Not merged: `%s` is failure (the change breaks evaluation).", evalCheck), nil
	}
	for _, s := range p.cfg.Systems {
		if sys := rep.Systems[s]; sys != nil && slices.Contains(checks, "build") {
			if title, conclusion := sys.BuildStatus(); conclusion == "failure" {
				return fmt.Sprintf("Not merged: `%s` is failure (%s).", buildCheck(s), title), nil
			}
		}
	}
	owner, repo, _ := strings.Cut(req.Repo, "/")
	gh, err := p.gh.NewInstallationClient(req.InstallationID)
	if err != nil {
		return "", err
	}
	pr, _, err := gh.PullRequests.Get(ctx, owner, repo, req.PR)
	if err != nil {
		return "", fmt.Errorf("pull request %s#%d: %w", req.Repo, req.PR, err)
	}
	switch {
	case pr.GetHead().GetSHA() != rev.HeadSHA:
		return fmt.Sprintf("Not merged: the pull request moved to %s since its review of %s; ask again when that is reviewed.", short(pr.GetHead().GetSHA()), short(rev.HeadSHA)), nil
	case pr.Mergeable == nil:
		return "Not merged: GitHub has not decided yet whether the pull request can be merged; ask again in a minute.", nil
	case !pr.GetMergeable():
		return "Not merged: GitHub says the pull request cannot be merged (conflicts or branch protection).", nil
	}
	if message != "" {
		if _, _, err := gh.Issues.CreateComment(ctx, owner, repo, req.PR, &github.IssueComment{Body: github.String(message)}); err != nil {
			return "", fmt.Errorf("comment on %s#%d: %w", req.Repo, req.PR, err)
		}
	}
	if _, _, err := gh.PullRequests.Merge(ctx, owner, repo, req.PR, "", &github.PullRequestOptions{MergeMethod: p.cfg.Commands.MergeMethod, SHA: rev.HeadSHA}); err != nil {
		return "Not merged: GitHub refused: " + report.Code(err.Error()), nil
	}
	p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("method", p.cfg.Commands.MergeMethod).Msg("merged")
	return "", nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
