package review

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/nix"
)

// GC policies of a tracked branch.
const (
	// GCFixedOutput keeps the outputs of the fixed-output derivations (the
	// sources) reachable from the branch's latest evaluation: a rebuild
	// never downloads again.
	GCFixedOutput = "fixed-output"
	// GCAll keeps every output basinix built for the branch's latest
	// gc.evaluations evaluations.
	GCAll = "all"
	// GCArchive keeps every output basinix ever built for the branch.
	GCArchive = "archive"
	// GCNone keeps nothing of the branch.
	GCNone = "none"
)

// GCConfig says what basinix keeps from Nix's garbage collector.
type GCConfig struct {
	// Branches is the policy per tracked branch, by "owner/repo:branch" or
	// "branch"; "*" for the others.
	Branches map[string]string `yaml:"branches"`
	// Evaluations is how many of a branch's latest evaluations "all" keeps.
	Evaluations int `yaml:"evaluations"`
	// PRKeep is how long a PR's outputs stay rooted after it is closed.
	PRKeep time.Duration `yaml:"pr_keep"`
	// RefreshEvery is how often the server updates the roots (0: never;
	// `basinix gc` does it).
	RefreshEvery time.Duration `yaml:"refresh_every"`
}

// Policy returns the branch's policy.
func (c GCConfig) Policy(repo, branch string) string {
	for _, k := range []string{repo + ":" + branch, branch, "*"} {
		if p, ok := c.Branches[k]; ok {
			return p
		}
	}
	return GCFixedOutput
}

func (c GCConfig) validate() error {
	for k, p := range c.Branches {
		switch p {
		case GCFixedOutput, GCAll, GCArchive, GCNone:
		default:
			return fmt.Errorf("config: gc.branches[%q] is %q: fixed-output, all, archive or none", k, p)
		}
	}
	if c.Evaluations < 1 || c.PRKeep < 0 || c.RefreshEvery < 0 {
		return fmt.Errorf("config: gc.evaluations must be at least 1, gc.pr_keep and gc.refresh_every not negative")
	}
	return nil
}

// GCRoot is one set of store paths basinix keeps, with one root.
type GCRoot struct {
	// Name says what it keeps: "branch octo/pkgs master", "pr octo/pkgs#12",
	// "failures" (the .drv files of remembered failures, so that a
	// rebuild can run).
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// Until is when it stops being kept: a closed PR's.
	Until   *time.Time `json:"until,omitempty"`
	Paths   int        `json:"paths"`
	NarSize int64      `json:"narSize"`
	// Link is the indirect root under the data directory.
	Link  string `json:"link"`
	paths []string
}

// GCReport is what `basinix gc` found and did.
type GCReport struct {
	DryRun bool      `json:"dryRun"`
	Roots  []*GCRoot `json:"roots"`
	// Unkept are the outputs basinix built that no policy keeps: Nix's
	// collector removes them unless something else roots them.
	Unkept        int      `json:"unkept"`
	UnkeptNarSize int64    `json:"unkeptNarSize"`
	UnkeptSample  []string `json:"unkeptSample,omitempty"`
	// Dropped are the roots of earlier runs that nothing keeps now.
	Dropped   []string       `json:"dropped,omitempty"`
	Collected *nix.Collected `json:"collected,omitempty"`
	// Cache is what became of the binary cache's expired paths.
	Cache *CacheReport `json:"cache,omitempty"`
}

// GCOptions: DryRun changes nothing; Collect runs Nix's collector after
// the roots are updated, freeing at most MaxFreed bytes (0: no bound).
type GCOptions struct {
	DryRun   bool
	Collect  bool
	MaxFreed int64
	// Now is when the policies are applied (zero: now): a dry run at a
	// later time tells what will stop being kept.
	Now time.Time
}

// rootsDir is where basinix's indirect roots are.
func (r *Reviewer) rootsDir() string { return filepath.Join(r.cfg.DataDir, "gcroots") }

// GC works out what each policy keeps, roots it (one root per branch, PR
// and the remembered failures, replacing the earlier ones), drops the
// roots nothing keeps any more and, asked to, collects garbage.
func (r *Reviewer) GC(ctx context.Context, opt GCOptions) (*GCReport, error) {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	roots, err := r.gcPlan(ctx, now)
	if err != nil {
		return nil, err
	}
	rep := &GCReport{DryRun: opt.DryRun, Roots: roots}
	kept := map[string]bool{}
	var all []string
	for _, root := range roots {
		all = append(all, root.paths...)
		for _, p := range root.paths {
			kept[p] = true
		}
	}
	built, err := r.builtOutputs(ctx)
	if err != nil {
		return nil, err
	}
	var unkept []string
	for _, p := range built {
		if !kept[p] {
			unkept = append(unkept, p)
		}
	}
	infos, err := r.nix.PathInfos(ctx, append(slices.Clone(all), unkept...), false)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, root := range roots {
		for _, p := range root.paths {
			root.NarSize += infos[p].NarSize
		}
	}
	rep.Unkept = len(unkept)
	for _, p := range unkept {
		rep.UnkeptNarSize += infos[p].NarSize
	}
	rep.UnkeptSample = unkept[:min(len(unkept), 20)]

	dir := r.rootsDir()
	want := map[string]bool{}
	for _, root := range roots {
		want[root.Link] = true
	}
	links, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, l := range links {
		if p := filepath.Join(dir, l.Name()); !want[p] {
			rep.Dropped = append(rep.Dropped, p)
		}
	}
	if r.cfg.Cache.URL != "" {
		if rep.Cache, err = r.expireCache(ctx, now, opt.DryRun); err != nil {
			return nil, err
		}
	}
	if opt.DryRun {
		return rep, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	tmp := filepath.Join(r.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, root := range roots {
		if _, err := r.nix.RootSet(ctx, root.Link, tmp, root.paths); err != nil {
			return nil, fmt.Errorf("gc: %s: %w", root.Name, err)
		}
	}
	for _, p := range rep.Dropped {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("gc: %w", err)
		}
	}
	r.log.Info().Int("roots", len(roots)).Int("dropped", len(rep.Dropped)).Int("unkept", rep.Unkept).Msg("gc roots updated")
	if opt.Collect {
		if rep.Collected, err = r.nix.CollectGarbage(ctx, opt.MaxFreed); err != nil {
			return nil, err
		}
		r.log.Info().Int("paths", rep.Collected.Paths).Str("freed", rep.Collected.Freed).Msg("garbage collected")
	}
	return rep, nil
}

// gcPlan is what each policy keeps at now, by root.
func (r *Reviewer) gcPlan(ctx context.Context, now time.Time) ([]*GCRoot, error) {
	cfg := r.cfg.GC
	var roots []*GCRoot
	add := func(name, policy string, until *time.Time, paths []string) {
		slices.Sort(paths)
		paths = slices.Compact(paths)
		roots = append(roots, &GCRoot{Name: name, Policy: policy, Until: until, Paths: len(paths), paths: paths,
			Link: filepath.Join(r.rootsDir(), strings.ReplaceAll(url.PathEscape(name), "%20", "_"))})
	}
	branches, err := r.store.Branches(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range branches {
		policy := cfg.Policy(b.Repo, b.Branch)
		var paths []string
		switch policy {
		case GCNone:
			continue
		case GCFixedOutput:
			drvs, err := r.store.BranchDrvs(ctx, b.Repo, b.Branch, 1)
			if err != nil {
				return nil, err
			}
			if paths, err = r.fixedOutputs(ctx, drvs); err != nil {
				return nil, err
			}
		case GCAll, GCArchive:
			n := cfg.Evaluations
			if policy == GCArchive {
				n = math.MaxInt32
			}
			drvs, err := r.store.BranchDrvs(ctx, b.Repo, b.Branch, n)
			if err != nil {
				return nil, err
			}
			if paths, err = r.successOutputs(ctx, drvs); err != nil {
				return nil, err
			}
		}
		add("branch "+b.Repo+" "+b.Branch, policy, nil, paths)
	}
	prs, err := r.store.PRDrvs(ctx, now.Add(-cfg.PRKeep))
	if err != nil {
		return nil, err
	}
	for _, pr := range prs {
		paths, err := r.successOutputs(ctx, pr.Drvs)
		if err != nil {
			return nil, err
		}
		var until *time.Time
		if !pr.Closed.IsZero() {
			u := pr.Closed.Add(cfg.PRKeep)
			until = &u
		}
		add(fmt.Sprintf("pr %s#%d", pr.Repo, pr.PR), "pr", until, paths)
	}
	failed, err := r.store.BuiltDrvs(ctx, string(build.Failure), string(build.DependencyFailed), string(build.Timeout))
	if err != nil {
		return nil, err
	}
	if failed, err = r.validPaths(ctx, failed); err != nil {
		return nil, err
	}
	add("failures", "failures", nil, failed)
	return roots, nil
}

// builtOutputs are the outputs of every successful build basinix
// remembers that are in the store.
func (r *Reviewer) builtOutputs(ctx context.Context) ([]string, error) {
	drvs, err := r.store.BuiltDrvs(ctx, string(build.Success))
	if err != nil {
		return nil, err
	}
	return r.successOutputs(ctx, drvs)
}

// successOutputs are the valid outputs of those of drvs whose build
// succeeded.
func (r *Reviewer) successOutputs(ctx context.Context, drvs []string) ([]string, error) {
	recs, err := r.store.Builds(ctx, drvs)
	if err != nil {
		return nil, err
	}
	var built []string
	for _, d := range drvs {
		if rec := recs[d]; rec != nil && rec.Result == string(build.Success) {
			built = append(built, d)
		}
	}
	outs := outputPaths(built)
	return r.validPaths(ctx, outs)
}

// fixedOutputs are the valid outputs of the fixed-output derivations in
// the closures of drvs (those of drvs that are in the store: the ones
// basinix built or instantiated).
func (r *Reviewer) fixedOutputs(ctx context.Context, drvs []string) ([]string, error) {
	drvs, err := r.validPaths(ctx, drvs)
	if err != nil || len(drvs) == 0 {
		return nil, err
	}
	closure, err := r.nix.Requisites(ctx, drvs)
	if err != nil {
		return nil, err
	}
	var outs []string
	for _, p := range closure {
		if !strings.HasSuffix(p, ".drv") {
			continue
		}
		d, err := nix.ReadDerivation(p)
		if err != nil {
			return nil, err
		}
		if d.Fixed {
			for _, o := range d.Outputs {
				outs = append(outs, o)
			}
		}
	}
	return r.validPaths(ctx, outs)
}

// validPaths are those of paths that are in the store.
func (r *Reviewer) validPaths(ctx context.Context, paths []string) ([]string, error) {
	gone, err := r.gone(ctx, paths)
	if err != nil {
		return nil, err
	}
	return without(paths, gone), nil
}

// without is paths less those in gone.
func without(paths []string, gone map[string]bool) []string {
	var out []string
	for _, p := range paths {
		if !gone[p] {
			out = append(out, p)
		}
	}
	return out
}

// gone is the set of those of paths that are not in the store.
func (r *Reviewer) gone(ctx context.Context, paths []string) (map[string]bool, error) {
	gone := map[string]bool{}
	if len(paths) == 0 {
		return gone, nil
	}
	invalid, err := r.nix.InvalidPaths(ctx, paths)
	if err != nil {
		return nil, err
	}
	for _, p := range invalid {
		gone[p] = true
	}
	return gone, nil
}

// KeepRoots updates the roots every gc.refresh_every until ctx ends
// (the server runs it; Nix's collector is left to `basinix gc --collect`
// or the machine's own schedule).
func (r *Reviewer) KeepRoots(ctx context.Context) {
	if r.cfg.GC.RefreshEvery <= 0 {
		return
	}
	tick := time.NewTicker(r.cfg.GC.RefreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := r.GC(ctx, GCOptions{}); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("updating the gc roots")
		}
	}
}
