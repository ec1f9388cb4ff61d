package app

import (
	"cmp"
	"context"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// branchSerial orders a branch's tip jobs: one at a time, in push order.
func branchSerial(repo, branch string) string { return "branch " + repo + " " + branch }

// runBranchTip evaluates a pushed tip and records it, with the job that
// builds its changes, in one transaction. It never waits for builds: the
// next tip of the branch is evaluated while these build.
func (p *pipeline) runBranchTip(ctx context.Context, j *store.Job) error {
	var push handlers.BranchPush
	if err := j.Decode(&push); err != nil {
		return err
	}
	log := p.log.With().Str("repo", push.Repo).Str("branch", push.Branch).Str("commit", push.Commit).Logger()
	tip, err := p.rv.BranchTip(ctx, review.BranchRequest{Repo: push.CloneURL, Name: push.Repo, Branch: push.Branch, Commit: push.Commit,
		Systems: p.cfg.Systems})
	if err != nil || tip == nil {
		return err
	}
	var then []store.NewJob
	if len(tip.Wants) > 0 {
		then = append(then, store.NewJob{Kind: jobBranchBuilds, Payload: branchBuilds{Repo: push.Repo, Branch: push.Branch, Commit: tip.Tip.Commit, Wants: tip.Wants}})
	}
	if p.pushChecks(tip.Flake) {
		base := cmp.Or(tip.Previous, tip.Tip.Commit) // the first tip against itself: every job is built
		then = append(then, store.NewJob{Kind: jobPushReview, Payload: store.Revision{Repo: push.Repo, InstallationID: push.InstallationID,
			CloneURL: push.CloneURL, HeadSHA: tip.Tip.Commit, BaseRef: base, Branch: push.Branch}})
	}
	if err := p.st.PutTip(ctx, push.Repo, push.Branch, tip.Tip, tip.Changes, then...); err != nil {
		return err
	}
	p.jobs.poke()
	log.Info().Int("changed", len(tip.Changes)).Int("builds", len(tip.Wants)).Msg("branch tip recorded")
	return nil
}

// branchBuilds are the builds a recorded tip asks for.
type branchBuilds struct {
	Repo, Branch, Commit string
	Wants                []build.Want
}

// runBranchBuilds builds a recorded tip's changes; their results reach
// the branch's history by derivation.
func (p *pipeline) runBranchBuilds(ctx context.Context, j *store.Job) error {
	var bb branchBuilds
	if err := j.Decode(&bb); err != nil {
		return err
	}
	outcomes, err := p.rv.Build(ctx, bb.Wants)
	if err != nil {
		return err
	}
	failed := 0
	for _, o := range outcomes {
		if o.Result.Failed() {
			failed++
		}
	}
	p.log.Info().Str("repo", bb.Repo).Str("branch", bb.Branch).Str("commit", bb.Commit).Int("builds", len(outcomes)).Int("failed", failed).Msg("branch tip built")
	return nil
}

// pushChecks says whether a tracked branch's new tip gets check runs on
// its commit (server.push_checks).
func (p *pipeline) pushChecks(flake bool) bool {
	switch p.cfg.Server.PushChecks {
	case "all":
		return true
	case "flakes":
		return flake
	}
	return false
}

// runPushReview queues a recorded tip's push revision: the tip reviewed
// against the branch's previous tip, its check runs on the tip's commit,
// as a PR's are on its head. (Their evaluations are the tip's, cached; the
// builds are the tip's own, shared by the pool.)
func (p *pipeline) runPushReview(ctx context.Context, j *store.Job) error {
	var rev store.Revision
	if err := j.Decode(&rev); err != nil {
		return err
	}
	_, err := p.queueRevision(ctx, rev)
	return err
}
