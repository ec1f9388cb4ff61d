package review

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
)

// BisectRequest asks when an attribute started failing on a branch.
type BisectRequest struct {
	Repo, Branch, Attr, System string
	// Name is the repository's name in the branch history ("owner/repo");
	// when set, the search starts from what the history knows.
	Name string
	// Good and Bad bound the search; default: from the history, else the
	// branch's first commit and its tip.
	Good, Bad string
}

// BisectStep is one commit the bisection looked at.
type BisectStep struct {
	Commit  string       `json:"commit"`
	Title   string       `json:"title"`
	DrvPath string       `json:"drvPath,omitempty"`
	Result  build.Result `json:"result"` // or "" with Error: it does not evaluate
	Error   string       `json:"error,omitempty"`
	// How the result was known: "built", "known drvPath" (the same
	// derivation as a commit already decided), "remembered" (built before).
	How string `json:"how"`
}

// BisectResult is what `basinix bisect` says.
type BisectResult struct {
	Attr     string          `json:"attr"`
	System   string          `json:"system"`
	FirstBad checkout.Commit `json:"firstBad"`
	LastGood checkout.Commit `json:"lastGood"`
	// Cause says what changed between the two: the package itself, or a
	// dependency (and which one failed).
	Cause string `json:"cause"`
	// FromHistory is set when the branch history gave the bounds.
	FromHistory bool         `json:"fromHistory,omitempty"`
	Steps       []BisectStep `json:"steps"`
	Evaluations int          `json:"evaluations"`
	Builds      int          `json:"builds"`
	Commits     int          `json:"commits"`
}

// Bisect finds the first commit on the branch's first-parent line, between
// Good and Bad, where the attribute fails to build (or to evaluate). It
// evaluates only that attribute, only at the commits binary search visits;
// a commit whose drvPath was decided before is decided without building,
// and a derivation is built at most once (results are remembered).
func (r *Reviewer) Bisect(ctx context.Context, req BisectRequest) (*BisectResult, error) {
	path, err := eval.ParsePath(req.Attr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	m, err := r.fetch(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	fromHistory := false
	if req.Good == "" && req.Bad == "" && req.Name != "" {
		if good, bad := r.historyBounds(ctx, req); bad != "" {
			req.Good, req.Bad, fromHistory = good, bad, true
		}
	}
	badRef := req.Bad
	if badRef == "" {
		badRef = req.Branch
	}
	bad, err := m.Resolve(ctx, badRef)
	if err != nil {
		return nil, fmt.Errorf("%w: bad: %w", ErrInput, err)
	}
	good := req.Good
	if good == "" {
		good, err = m.Root(ctx, bad)
	} else {
		good, err = m.Resolve(ctx, good)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: good: %w", ErrInput, err)
	}
	between, err := m.Commits(ctx, good, bad)
	if err != nil {
		return nil, err
	}
	commits := append([]checkout.Commit{{SHA: good, Title: m.Title(ctx, good)}}, between...)
	res := &BisectResult{Attr: path.String(), System: req.System, Commits: len(commits), FromHistory: fromHistory}
	trees := &worktrees{m: m}
	defer trees.removeAll(r.log)

	// The attribute at every commit: evaluations are cheap next to builds,
	// and knowing every drvPath lets the search run over the distinct
	// derivations instead of over commits.
	attrs := make([]*eval.Attr, len(commits))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, r.ev.Workers()))
	for i, c := range commits {
		g.Go(func() error {
			wt, release, err := trees.get(gctx, c.SHA)
			defer release()
			if err != nil {
				return err
			}
			a, err := r.ev.Attribute(gctx, wt.Path, req.System, path)
			if err != nil {
				return err
			}
			attrs[i] = a
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.Evaluations = len(commits)
	// Runs of consecutive commits with the same derivation (or error).
	type run struct{ first, last int }
	var runs []run
	for i := range commits {
		if i > 0 && sameAttr(attrs[i], attrs[i-1]) {
			runs[len(runs)-1].last = i
			continue
		}
		runs = append(runs, run{i, i})
	}

	byDrv := map[string]build.Outcome{} // decided derivations
	decide := func(ri int) (bool, error) {
		i := runs[ri].first
		c, a := commits[i], attrs[i]
		s := BisectStep{Commit: c.SHA, Title: c.Title}
		if !a.OK() {
			s.Error, s.How = a.Error.Message, "evaluated"
			res.Steps = append(res.Steps, s)
			return true, nil
		}
		s.DrvPath = a.DrvPath
		o, known := byDrv[a.DrvPath]
		if known {
			s.How = "known drvPath"
		} else {
			t, err := r.pool.Submit(ctx, []build.Want{{Drv: a.DrvPath, Priority: priority(requested, 0, r.cfg.BranchPriority)}})
			if err != nil {
				return false, err
			}
			outs, err := t.Wait(ctx)
			if err != nil {
				return false, err
			}
			o = outs[a.DrvPath]
			if o.Result == build.Cancelled {
				return false, fmt.Errorf("bisect %s: the build of %s did not run: %s", req.Attr, a.DrvPath, o.Message)
			}
			byDrv[a.DrvPath] = o
			s.How = "built"
			if o.Cached {
				s.How = "remembered"
			} else {
				res.Builds++
			}
		}
		s.Result = o.Result
		res.Steps = append(res.Steps, s)
		return o.Result.Failed(), nil
	}

	// The bad end must fail; the good end is taken as the caller says.
	if fails, err := decide(len(runs) - 1); err != nil {
		return nil, err
	} else if !fails {
		return nil, fmt.Errorf("%w: %s does not fail at %s: nothing to bisect", ErrInput, req.Attr, report.Short(bad))
	}
	if len(runs) == 1 {
		return nil, fmt.Errorf("%w: %s is the same derivation from %s to %s: nothing to bisect", ErrInput, req.Attr, report.Short(good), report.Short(bad))
	}
	lo, hi := 0, len(runs)-1 // lo good, hi bad
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		fails, err := decide(mid)
		if err != nil {
			return nil, err
		}
		if fails {
			hi = mid
		} else {
			lo = mid
		}
	}
	res.FirstBad, res.LastGood = commits[runs[hi].first], commits[runs[lo].last]
	res.Cause = r.cause(ctx, attrs[runs[lo].last], res.Steps, res.FirstBad.SHA)
	sort.SliceStable(res.Steps, func(i, j int) bool {
		return indexOf(commits, res.Steps[i].Commit) < indexOf(commits, res.Steps[j].Commit)
	})
	return res, nil
}

// historyBounds returns, from the branch's history, the oldest recorded
// commit of the attribute's current failing streak (bad) and the recorded
// commit before it where it built (good); "" when the history does not
// know of a failure.
func (r *Reviewer) historyBounds(ctx context.Context, req BisectRequest) (good, bad string) {
	hist, err := r.store.AttrHistory(ctx, req.Name, req.Branch, req.System, req.Attr, 1000)
	if err != nil {
		r.log.Warn().Err(err).Msg("branch history")
		return "", ""
	}
	for _, h := range hist { // newest first
		failed := h.DrvPath == "" || build.Result(h.Result).Failed()
		switch {
		case failed:
			bad = h.Commit
		case h.Result == string(build.Success) && bad != "":
			return h.Commit, bad
		case bad != "":
			return "", bad // unknown before the streak
		}
	}
	return "", bad
}

// sameAttr reports whether two evaluations of an attribute give the same
// derivation, or fail the same way.
func sameAttr(a, b *eval.Attr) bool {
	if a.OK() || b.OK() {
		return a.OK() && b.OK() && a.DrvPath == b.DrvPath
	}
	return a.Error.Message == b.Error.Message
}

// cause tells whether the package itself or a dependency changed between
// the last good commit (its attribute good) and the first bad one.
func (r *Reviewer) cause(ctx context.Context, good *eval.Attr, steps []BisectStep, bad string) string {
	var badStep *BisectStep
	for i := range steps {
		if steps[i].Commit == bad {
			badStep = &steps[i]
		}
	}
	if badStep == nil || badStep.DrvPath == "" {
		return "it stopped evaluating"
	}
	if badStep.Result == build.DependencyFailed {
		if o, err := r.pool.Lookup(ctx, []string{badStep.DrvPath}); err == nil && o[badStep.DrvPath] != nil {
			return "a dependency fails: " + report.DrvName(o[badStep.DrvPath].FailedDep)
		}
		return "a dependency fails"
	}
	if !good.OK() {
		return "it did not evaluate before"
	}
	before, err1 := nix.ReadDerivation(good.DrvPath)
	after, err2 := nix.ReadDerivation(badStep.DrvPath)
	if err1 != nil || err2 != nil {
		return ""
	}
	if report.DrvName(before.Path) != report.DrvName(after.Path) {
		return fmt.Sprintf("the package itself changed (%s → %s)", report.DrvName(before.Path), report.DrvName(after.Path))
	}
	changed := changedInputs(before.Inputs, after.Inputs)
	if len(changed) == 0 {
		return "the package itself changed"
	}
	return fmt.Sprintf("dependencies changed: %v", changed)
}

// changedInputs names the inputs of after that are not inputs of before.
func changedInputs(before, after []string) []string {
	had := map[string]bool{}
	for _, d := range before {
		had[d] = true
	}
	var out []string
	for _, d := range after {
		if !had[d] {
			out = append(out, report.DrvName(d))
		}
	}
	return out
}

func indexOf(cs []checkout.Commit, sha string) int {
	for i, c := range cs {
		if c.SHA == sha {
			return i
		}
	}
	return -1
}
