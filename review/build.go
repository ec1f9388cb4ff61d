package review

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// typicalBuild is what a derivation never built before is estimated to
// take.
const typicalBuild = 5 * time.Minute

// estimates are how long the review's pending derivations (the head's
// attributes and their tests, and the base side of changed ones) are
// expected to build: the last successful build of the same package
// (store.DrvName), typicalBuild for one never built; what they are known
// to need in memory; and the head's work, their sum. The policy puts the PRs whose verdicts cost
// least first (see TestSchedulingSimulation); the running check runs say
// how much building is left.
func (r *Reviewer) estimates(ctx context.Context, rep *report.Report) (est map[string]time.Duration, needs map[string]int, work time.Duration, err error) {
	var head, all []string
	for _, s := range rep.Systems {
		for _, e := range s.Attrs {
			if e.Verdict != report.Pending {
				continue
			}
			head = append(head, e.DrvPath)
			for _, t := range e.Tests {
				if t.DrvPath != "" {
					head = append(head, t.DrvPath)
				}
			}
			if e.BaseDrvPath != "" {
				all = append(all, e.BaseDrvPath)
			}
		}
	}
	all = append(all, head...)
	names := make([]string, len(all))
	for i, d := range all {
		names[i] = store.DrvName(d)
	}
	times, err := r.store.BuildTimes(ctx, names)
	if err != nil {
		return nil, nil, 0, err
	}
	mem, err := r.store.MemoryNeeds(ctx, names)
	if err != nil {
		return nil, nil, 0, err
	}
	est, needs = make(map[string]time.Duration, len(all)), map[string]int{}
	for i, d := range all {
		est[d] = cmp.Or(times[names[i]], typicalBuild)
		if m := mem[names[i]]; m > 0 {
			needs[d] = m
		}
	}
	for _, d := range head {
		work += est[d]
	}
	return est, needs, work, nil
}

// need is one attribute whose derivation must be in the store to be built:
// its evaluation (commit, system, aliases) and what it should give.
type need struct {
	commit, system string
	aliases        bool
	attr           string
	drvs           []string // the attribute's and, at head, its tests'
}

// buildAll builds, for every system of rep, the head's added and changed
// attributes and their tests, and the base derivations of changed
// attributes whose result is not known; then it fills results and verdicts.
func (r *Reviewer) buildAll(ctx context.Context, req Request, trees *worktrees, rep *report.Report, baseCommit, headCommit string) (instantiate, buildTime time.Duration, err error) {
	start := time.Now()
	if !r.host.Sandbox {
		r.sandboxWarning.Do(func() {
			r.log.Warn().Msg("the Nix sandbox is off: builds can see the network and the host's files (production should turn it on)")
		})
	}
	est, memory, headWork, err := r.estimates(ctx, rep)
	if err != nil {
		return 0, 0, err
	}
	cost := 0
	if req.FewerRebuildsFirst {
		cost = costUnits(Cost{Work: headWork})
	}
	wants := map[string]build.Want{}
	want := func(drv string, w work, force bool) {
		prio := priority(w, cost, r.cfg.BranchPriority) + req.Priority
		if w, ok := wants[drv]; ok {
			prio, force = max(w.Priority, prio), w.Force || force
		}
		wants[drv] = build.Want{Drv: drv, Priority: prio, Force: force, Est: est[drv], MemoryMiB: memory[drv]}
	}
	var needs []need
	var baseDrvs []string
	for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
		sys := rep.Systems[system]
		aliased := map[string]bool{}
		for _, a := range sys.AliasErrors {
			aliased[a.Attr] = true
		}
		for _, name := range slices.Sorted(maps.Keys(sys.Attrs)) {
			e := sys.Attrs[name]
			if e.Verdict != report.Pending {
				continue
			}
			n := need{commit: headCommit, system: system, aliases: aliased[name], attr: name, drvs: []string{e.DrvPath}}
			want(e.DrvPath, prHead, req.RebuildFailed)
			for _, t := range e.Tests {
				if t.DrvPath != "" {
					n.drvs = append(n.drvs, t.DrvPath)
					want(t.DrvPath, prHead, req.RebuildFailed)
				}
			}
			needs = append(needs, n)
			if e.BaseDrvPath != "" && e.Change == eval.Changed {
				baseDrvs = append(baseDrvs, e.BaseDrvPath)
			}
		}
	}
	// A base derivation with a known result needs neither a .drv nor a build.
	known, err := r.pool.Lookup(ctx, baseDrvs)
	if err != nil {
		return 0, 0, err
	}
	for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
		for _, name := range slices.Sorted(maps.Keys(rep.Systems[system].Attrs)) {
			e := rep.Systems[system].Attrs[name]
			if e.Verdict != report.Pending || e.BaseDrvPath == "" || e.Change != eval.Changed || known[e.BaseDrvPath] != nil {
				continue
			}
			needs = append(needs, need{commit: baseCommit, system: system, attr: name, drvs: []string{e.BaseDrvPath}})
			want(e.BaseDrvPath, prBase, false)
		}
	}
	if err := r.instantiate(ctx, trees, needs); err != nil {
		return 0, 0, err
	}
	instantiate = time.Since(start)

	start = time.Now()
	list := make([]build.Want, 0, len(wants))
	for _, w := range wants {
		list = append(list, w)
	}
	outcomes, err := r.buildRetrying(ctx, list, req.Progress)
	if err != nil {
		return instantiate, time.Since(start), err
	}
	for drv, o := range known {
		outcomes[drv] = *o
	}
	// The failed dependencies' logs explain the dependency failures.
	var deps []string
	for _, o := range outcomes {
		if o.FailedDep != "" {
			if _, ok := outcomes[o.FailedDep]; !ok {
				deps = append(deps, o.FailedDep)
			}
		}
	}
	depOutcomes, err := r.pool.Lookup(ctx, deps)
	if err != nil {
		return instantiate, time.Since(start), err
	}
	for drv, o := range depOutcomes {
		outcomes[drv] = *o
	}
	for _, sys := range rep.Systems {
		sys.ApplyBuilds(outcomes)
	}
	if err := r.outputDiffs(ctx, rep); err != nil {
		r.log.Warn().Err(err).Msg("output diffs")
	}
	return instantiate, time.Since(start), nil
}

// buildRetrying builds wants and returns their outcomes. Derivations that
// failed for the machine's fault are built again after each of
// machineRetries; when the fault lasts, the error is ErrInfrastructure,
// since such an outcome is no verdict.
func (r *Reviewer) buildRetrying(ctx context.Context, wants []build.Want, progress func(build.Progress)) (map[string]build.Outcome, error) {
	outcomes, err := r.buildOnce(ctx, wants, progress)
	for attempt := 0; err == nil; attempt++ {
		var again []build.Want
		var why string
		for _, w := range wants {
			if o := outcomes[w.Drv]; o.MachineFault != "" {
				again, why = append(again, w), o.MachineFault
			}
		}
		if len(again) == 0 {
			return outcomes, nil
		}
		if attempt == len(machineRetries) {
			return nil, fmt.Errorf("%w: %d builds failed for the machine's fault, %d times: %s", ErrInfrastructure, len(again), attempt+1, why)
		}
		r.log.Warn().Int("drvs", len(again)).Str("why", why).Dur("in", machineRetries[attempt]).Msg("builds failed for the machine's fault: building them again")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(machineRetries[attempt]):
		}
		var more map[string]build.Outcome
		if more, err = r.buildOnce(ctx, again, progress); err == nil {
			maps.Copy(outcomes, more)
		}
	}
	return nil, err
}

// buildOnce submits wants to the pool and waits for their outcomes,
// reporting progress as it changes, and every second (a build that ends
// is no event until its batch ends, but progress no longer names it).
func (r *Reviewer) buildOnce(ctx context.Context, wants []build.Want, progress func(build.Progress)) (map[string]build.Outcome, error) {
	t, err := r.pool.Submit(ctx, wants)
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(t.Progress())
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-t.Done():
			done = true
		case <-t.Changed():
		case <-tick.C:
		case <-ctx.Done():
			t.Cancel()
			return nil, ctx.Err()
		}
		if progress != nil {
			progress(t.Progress())
		}
	}
	outs := t.Outcomes()
	var built []string
	for drv, o := range outs {
		if o.Result == build.Success && !o.Cached {
			built = append(built, drv)
		}
		// Killed for its memory: next time it gets twice as much.
		if o.MemoryLimitMiB > 0 {
			if err := r.store.PutMemoryNeed(context.WithoutCancel(ctx), store.DrvName(drv), 2*o.MemoryLimitMiB); err != nil {
				r.log.Warn().Err(err).Str("drv", drv).Msg("remembering what a build needs in memory")
			}
		}
	}
	r.queueUploads(context.WithoutCancel(ctx), built)
	return outs, nil
}

// instantiate makes sure the .drv files of needs are in the store, writing
// the missing ones by evaluating just those attributes in read-write mode.
func (r *Reviewer) instantiate(ctx context.Context, trees *worktrees, needs []need) error {
	var all []string
	for _, n := range needs {
		all = append(all, n.drvs...)
	}
	invalid, err := r.nix.InvalidPaths(ctx, all)
	if err != nil {
		return fmt.Errorf("instantiate: %w", err)
	}
	missing := map[string]bool{}
	for _, p := range invalid {
		missing[p] = true
	}
	type group struct {
		commit, system string
		aliases        bool
	}
	groups := map[group][]eval.Path{}
	for _, n := range needs {
		if !slices.ContainsFunc(n.drvs, func(d string) bool { return missing[d] }) {
			continue
		}
		p, err := eval.ParsePath(n.attr)
		if err != nil {
			return fmt.Errorf("instantiate %s: %w", n.attr, err)
		}
		g := group{n.commit, n.system, n.aliases}
		groups[g] = append(groups[g], p)
	}
	for g, paths := range groups {
		wt, release, err := trees.get(ctx, g.commit)
		if err != nil {
			return err
		}
		_, err = r.ev.Details(ctx, wt.Path, g.system, paths, g.aliases, true)
		release()
		if err != nil {
			return fmt.Errorf("instantiate at %s: %w", g.commit, err)
		}
		r.log.Info().Str("commit", g.commit).Str("system", g.system).Int("attrs", len(paths)).Msg("instantiated")
	}
	return nil
}

// buildResults keeps the pool's results in the store.
type buildResults struct {
	st interface {
		Builds(ctx context.Context, drvs []string) (map[string]*store.BuildRecord, error)
		PutBuilds(ctx context.Context, recs []*store.BuildRecord) error
	}
}

func (b buildResults) Results(ctx context.Context, drvs []string) (map[string]*build.Outcome, error) {
	recs, err := b.st.Builds(ctx, drvs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*build.Outcome, len(recs))
	for k, r := range recs {
		out[k] = &build.Outcome{Drv: r.DrvPath, Result: build.Result(r.Result), FailedDep: r.FailedDep, Message: r.Message,
			Machine: r.Machine, Started: r.Started, Duration: r.Duration, Log: r.LogPath}
	}
	return out, nil
}

func (b buildResults) PutResults(ctx context.Context, outs []*build.Outcome) error {
	recs := make([]*store.BuildRecord, len(outs))
	for i, o := range outs {
		recs[i] = &store.BuildRecord{DrvPath: o.Drv, Result: string(o.Result), FailedDep: o.FailedDep, Message: o.Message,
			Machine: o.Machine, Started: o.Started, Duration: o.Duration, LogPath: o.Log}
	}
	return b.st.PutBuilds(ctx, recs)
}

// Rebuild builds drvs again, whatever their remembered results, and
// returns their outcomes (a user's "build again").
func (r *Reviewer) Rebuild(ctx context.Context, drvs []string) (map[string]build.Outcome, error) {
	wants := make([]build.Want, len(drvs))
	for i, d := range drvs {
		wants[i] = build.Want{Drv: d, Force: true, Priority: 10}
	}
	return r.buildRetrying(ctx, wants, nil)
}
