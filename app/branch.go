package app

import (
	"context"
	"fmt"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/store"
)

// BranchRequest is a new tip of a tracked branch.
type BranchRequest struct {
	Repo    string // what to fetch
	Name    string // the repository's name in the history ("owner/repo")
	Branch  string
	Commit  string
	Systems []string
	// Priority of the builds (below every PR's by default: branch builds
	// fill idle machines).
	Priority int
}

// BranchTip evaluates a new tip of a tracked branch, records in the
// branch's history the derivations of the attributes that changed since the
// previous tip, and builds them at a priority below every PR's (PR reviews
// then find their base results known). The first tip basinix sees is only
// evaluated: history starts with the next.
func (r *Reviewer) BranchTip(ctx context.Context, req BranchRequest) error {
	m, err := r.fetch(ctx, req.Repo)
	if err != nil {
		return err
	}
	tip, err := m.Resolve(ctx, req.Commit)
	if err != nil {
		return err
	}
	prev, err := r.store.LastTip(ctx, req.Name, req.Branch)
	if err != nil {
		return err
	}
	if prev != nil && prev.Commit == tip {
		return nil
	}
	trees := &worktrees{m: m}
	defer trees.removeAll(r.log)
	commits := []string{tip}
	if prev != nil {
		commits = append(commits, prev.Commit)
	}
	evals, err := r.evaluateAll(ctx, m.URL, trees, req.Systems, commits, evalOpts{})
	if err == nil {
		err = waitStored(evals)
	}
	if err != nil {
		return err
	}
	var changes []store.AttrChange
	var needs []need
	var wants []build.Want
	if prev != nil {
		for _, system := range req.Systems {
			d := eval.Compare(evals[evalID{prev.Commit, system}].ev, evals[evalID{tip, system}].ev)
			for _, a := range d.Attrs {
				switch {
				case a.Head == nil:
				case !a.Head.OK():
					changes = append(changes, store.AttrChange{System: system, Attr: a.Attr})
				default:
					changes = append(changes, store.AttrChange{System: system, Attr: a.Attr, DrvPath: a.Head.DrvPath})
					needs = append(needs, need{commit: tip, system: system, attr: a.Attr, drvs: []string{a.Head.DrvPath}})
					wants = append(wants, build.Want{Drv: a.Head.DrvPath, Priority: req.Priority})
				}
			}
		}
	}
	if err := r.store.PutTip(ctx, req.Name, req.Branch, store.Tip{Commit: tip, Title: m.Title(ctx, tip)}, changes); err != nil {
		return err
	}
	r.log.Info().Str("repo", req.Name).Str("branch", req.Branch).Str("commit", tip).Int("changed", len(changes)).Msg("branch tip recorded")
	if len(wants) == 0 {
		return nil
	}
	if err := r.instantiate(ctx, trees, needs); err != nil {
		return fmt.Errorf("branch %s at %s: %w", req.Branch, tip, err)
	}
	t, err := r.pool.Submit(ctx, wants)
	if err != nil {
		return err
	}
	_, err = t.Wait(ctx)
	return err
}
