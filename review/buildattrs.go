package review

import (
	"context"
	"fmt"
	"sort"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
)

// AttrsRequest asks for named attributes (or their passthru.tests) to be
// built at Head merged onto Base, changed or not.
type AttrsRequest struct {
	Repo, Base, Head string
	Systems          []string
	Attrs            []string
	Tests            bool
}

// BuildAttrs evaluates the merged head (from the cache when it can),
// builds the named attributes, or their tests, for each system and returns
// the results by system. An attribute that does not exist or does not
// evaluate gets a result saying so; its build is not attempted.
func (r *Reviewer) BuildAttrs(ctx context.Context, req AttrsRequest) (map[string][]report.BuiltAttr, error) {
	m, err := r.fetch(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	_, _, merge, err := merged(ctx, m, req.Base, req.Head)
	if err != nil {
		return nil, err
	}
	trees := &worktrees{m: m}
	defer trees.removeAll(r.log)
	evals, err := r.evaluateAll(ctx, m.URL, trees, req.Systems, []string{merge.Commit}, evalOpts{})
	if err == nil {
		err = waitStored(evals)
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]report.BuiltAttr{}
	var needs []need
	for _, system := range req.Systems {
		ev := evals[evalID{merge.Commit, system}].ev
		var paths []eval.Path
		var aliased []bool
		for _, name := range req.Attrs {
			a := ev.Attrs[name]
			switch {
			case a == nil:
				out[system] = append(out[system], report.BuiltAttr{Attr: name, Message: "no such attribute"})
			case !a.Evaluable():
				out[system] = append(out[system], report.BuiltAttr{Attr: name, Message: "does not evaluate: " + a.Error.Message})
			default:
				paths = append(paths, a.Path)
				aliased = append(aliased, a.AliasError)
			}
		}
		for _, aliases := range []bool{false, true} {
			var ps []eval.Path
			for i, p := range paths {
				if aliased[i] == aliases {
					ps = append(ps, p)
				}
			}
			if len(ps) == 0 {
				continue
			}
			wt, release, err := trees.get(ctx, merge.Commit)
			if err != nil {
				return nil, err
			}
			details, err := r.ev.Details(ctx, wt.Path, system, ps, aliases, true)
			release()
			if err != nil {
				return nil, fmt.Errorf("build %v at %s: %w", req.Attrs, merge.Commit, err)
			}
			for _, p := range ps {
				name := p.String()
				d := details[name]
				if !req.Tests {
					out[system] = append(out[system], report.BuiltAttr{Attr: name, DrvPath: ev.Attrs[name].DrvPath})
					needs = append(needs, need{commit: merge.Commit, system: system, aliases: aliases, attr: name, drvs: []string{ev.Attrs[name].DrvPath}})
					continue
				}
				if d == nil || d.Error != nil || len(d.Tests) == 0 {
					out[system] = append(out[system], report.BuiltAttr{Attr: name + ".passthru.tests", Message: "no passthru.tests", NoTests: true})
					continue
				}
				n := need{commit: merge.Commit, system: system, aliases: aliases, attr: name}
				for tn, t := range d.Tests {
					ta := report.BuiltAttr{Attr: name + ".passthru.tests." + tn, DrvPath: t.DrvPath}
					if t.Error != nil {
						ta.Message = "does not evaluate: " + t.Error.Message
					} else {
						n.drvs = append(n.drvs, t.DrvPath)
					}
					out[system] = append(out[system], ta)
				}
				needs = append(needs, n)
			}
		}
	}
	if err := r.instantiate(ctx, trees, needs); err != nil {
		return nil, err
	}
	var wants []build.Want
	for _, list := range out {
		for _, a := range list {
			if a.DrvPath != "" && a.Message == "" {
				wants = append(wants, build.Want{Drv: a.DrvPath, Priority: priority(requested, 0, r.cfg.BranchPriority)})
			}
		}
	}
	outcomes, err := r.buildRetrying(ctx, wants, nil)
	if err != nil {
		return nil, err
	}
	for system, list := range out {
		for i, a := range list {
			if o, ok := outcomes[a.DrvPath]; ok && a.Message == "" {
				list[i].Result, list[i].FailedDep, list[i].Log, list[i].Message = o.Result, o.FailedDep, o.Log, o.Message
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Attr < list[j].Attr })
		out[system] = list
	}
	return out, nil
}
