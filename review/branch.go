package review

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
}

// Tip is a branch tip evaluated: what to record in the branch's history
// and what to build for it.
type Tip struct {
	Tip     store.Tip
	Changes []store.AttrChange
	// Wants are the changed attributes' derivations, instantiated.
	Wants []build.Want
	// Flake says the tip is evaluated as a flake (its attributes are jobs).
	Flake bool
	// Previous is the branch's tip before this one ("" for the first).
	Previous string
}

// BranchTip evaluates a new tip of a tracked branch against the previous
// recorded one, and returns the attributes that changed and the
// derivations to build for them (at a priority below every PR's: branch
// builds fill idle machines, and PR reviews then find their base results
// known). It builds nothing: the caller records the tip and has the
// builds done, and the history reads their results by derivation. The
// first tip basinix sees is only evaluated: history starts with the next.
// A tip already recorded returns nil.
func (r *Reviewer) BranchTip(ctx context.Context, req BranchRequest) (*Tip, error) {
	prev, err := r.store.LastTip(ctx, req.Name, req.Branch)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Commit == req.Commit {
		return nil, nil
	}
	m, err := r.fetch(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	tip, err := m.Resolve(ctx, req.Commit)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Commit == tip {
		return nil, nil
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
		return nil, err
	}
	out := &Tip{Tip: store.Tip{Commit: tip, Title: m.Title(ctx, tip)},
		Flake: r.isFlake(ctx, m, tip)}
	var needs []need
	if prev != nil {
		out.Previous = prev.Commit
		for _, system := range req.Systems {
			d := eval.Compare(evals[evalID{prev.Commit, system}].ev, evals[evalID{tip, system}].ev)
			for _, a := range d.Attrs {
				switch {
				case a.Head == nil:
				case !a.Head.OK():
					out.Changes = append(out.Changes, store.AttrChange{System: system, Attr: a.Attr})
				default:
					out.Changes = append(out.Changes, store.AttrChange{System: system, Attr: a.Attr, DrvPath: a.Head.DrvPath})
					needs = append(needs, need{commit: tip, system: system, attr: a.Attr, drvs: []string{a.Head.DrvPath}})
					out.Wants = append(out.Wants, build.Want{Drv: a.Head.DrvPath, Priority: priority(branchTip, 0, r.cfg.BranchPriority)})
				}
			}
		}
	}
	if err := r.instantiate(ctx, trees, needs); err != nil {
		return nil, fmt.Errorf("branch %s at %s: %w", req.Branch, tip, err)
	}
	return out, nil
}
