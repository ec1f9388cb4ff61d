package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/handlers"
)

// reconcileLoop reconciles at start and then every interval, so that
// webhooks missed while basinix was down are not lost.
func (p *pipeline) reconcileLoop(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := p.reconcile(ctx); err != nil && ctx.Err() == nil {
			p.log.Error().Err(err).Msg("reconciliation")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reconcile lists the App's installations, their repositories and their
// open pull requests, and queues a revision for every PR head that has
// none (a known head, finished or not, is left alone).
func (p *pipeline) reconcile(ctx context.Context) error {
	appClient, err := p.gh.NewAppClient()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	var queued int
	opt := &github.ListOptions{PerPage: 100}
	for {
		insts, resp, err := appClient.Apps.ListInstallations(ctx, opt)
		if err != nil {
			return fmt.Errorf("reconcile: list installations: %w", err)
		}
		for _, inst := range insts {
			n, err := p.reconcileInstallation(ctx, inst.GetID())
			if err != nil {
				return err
			}
			queued += n
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	p.log.Info().Int("queued", queued).Msg("reconciled with GitHub")
	return nil
}

func (p *pipeline) reconcileInstallation(ctx context.Context, id int64) (int, error) {
	gh, err := p.gh.NewInstallationClient(id)
	if err != nil {
		return 0, fmt.Errorf("reconcile installation %d: %w", id, err)
	}
	queued := 0
	opt := &github.ListOptions{PerPage: 100}
	for {
		repos, resp, err := gh.Apps.ListRepos(ctx, opt)
		if err != nil {
			return queued, fmt.Errorf("reconcile installation %d: list repositories: %w", id, err)
		}
		for _, repo := range repos.Repositories {
			n, err := p.reconcileRepo(ctx, gh, id, repo.GetOwner().GetLogin(), repo.GetName())
			if err != nil {
				return queued, err
			}
			queued += n
		}
		if resp.NextPage == 0 {
			return queued, nil
		}
		opt.Page = resp.NextPage
	}
}

func (p *pipeline) reconcileRepo(ctx context.Context, gh *github.Client, inst int64, owner, name string) (int, error) {
	full := owner + "/" + name
	p.catchUpBranches(ctx, gh, inst, owner, name)
	queued := 0
	opt := &github.PullRequestListOptions{State: "open", ListOptions: github.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := gh.PullRequests.List(ctx, owner, name, opt)
		if err != nil {
			return queued, fmt.Errorf("reconcile %s: list pull requests: %w", full, err)
		}
		for _, pr := range prs {
			if pr.GetDraft() && !p.cfg.Server.Drafts {
				continue
			}
			fresh, err := p.queue(ctx, handlers.PullRequest{InstallationID: inst, Repo: full, CloneURL: pr.GetBase().GetRepo().GetCloneURL(),
				Number: pr.GetNumber(), HeadSHA: pr.GetHead().GetSHA(), BaseRef: pr.GetBase().GetRef(), Author: pr.GetUser().GetLogin(), Title: pr.GetTitle(), Private: pr.GetBase().GetRepo().GetPrivate()})
			if err != nil {
				return queued, err
			}
			if fresh {
				queued++
			}
		}
		if resp.NextPage == 0 {
			return queued, nil
		}
		opt.Page = resp.NextPage
	}
}

// catchUpBranches records the tracked branches' tips that moved while
// basinix was not listening (their pushes are missed webhooks too).
func (p *pipeline) catchUpBranches(ctx context.Context, gh *github.Client, inst int64, owner, name string) {
	full := owner + "/" + name
	repo, _, err := gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		p.log.Warn().Err(err).Str("repo", full).Msg("catching up branches")
		return
	}
	tracked := p.cfg.Server.TrackedBranches
	if len(tracked) == 0 {
		tracked = []string{repo.GetDefaultBranch()}
	}
	for _, b := range tracked {
		br, _, err := gh.Repositories.GetBranch(ctx, owner, name, b, 0)
		if err != nil {
			p.log.Warn().Err(err).Str("repo", full).Str("branch", b).Msg("catching up branches")
			continue
		}
		last, err := p.st.LastTip(ctx, full, b)
		if err != nil || last != nil && last.Commit == br.GetCommit().GetSHA() {
			continue
		}
		if n, err := p.st.PendingJobs(ctx, branchSerial(full, b)); err != nil || n > 0 {
			continue // a push being recorded: it is the tip, or older than a push to come
		}
		if err := p.Evaluate(ctx, handlers.BranchPush{InstallationID: inst, Repo: full, CloneURL: repo.GetCloneURL(), Branch: b, Commit: br.GetCommit().GetSHA(), Private: repo.GetPrivate()}); err != nil {
			p.log.Warn().Err(err).Str("repo", full).Str("branch", b).Msg("catching up branches")
		}
	}
}
