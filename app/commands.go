package app

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/handlers"
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
		p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Str("permission", perm.RoleName).Msg("commands refused")
		return reply(fmt.Sprintf("@%s: only users with %s permission on this repository may run `@%s` commands; you have %s.",
			req.User, strings.Join(allowed, ", "), name, perm.RoleName))
	}
	for _, c := range act {
		msg, err := p.command(ctx, req, c)
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

// command carries out one accepted command and returns the reply to post
// ("" when its result is a check run).
func (p *pipeline) command(ctx context.Context, req handlers.CommandRequest, c handlers.Command) (string, error) {
	switch c.Verb {
	case "rebuild":
		revs, err := p.st.PRRevisions(ctx, req.Repo, req.PR)
		if err != nil {
			return "", err
		}
		if len(revs) == 0 {
			return "There is no review of this pull request to rebuild yet.", nil
		}
		latest := revs[0]
		switch latest.State {
		case store.Queued, store.Evaluating, store.Building, store.Publishing:
			return fmt.Sprintf("A review of %s is still running: ask again when its check runs are done.", short(latest.HeadSHA)), nil
		case store.Superseded, store.Cancelled:
			return "This pull request's latest review was stopped: there is nothing to rebuild.", nil
		}
		ok, err := p.st.RerunRevision(ctx, latest.ID, true)
		if err != nil || !ok {
			return "", err
		}
		p.log.Info().Str("repo", req.Repo).Int("pr", req.PR).Str("user", req.User).Msg("rebuild of the failed builds queued")
		p.poke()
		return "", nil // the new check runs are the result
	}
	return fmt.Sprintf("`@%s %s` is not available yet.", p.cfg.Commands.Name, c.Verb), nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
