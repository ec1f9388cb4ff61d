package review

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
)

// OutputsConfig is about what a review says of the outputs it built.
type OutputsConfig struct {
	// Diffs is how many changed attributes built on both sides get an
	// output diff (files, sizes, closure) per review; 0: none.
	Diffs int `yaml:"diffs"`
	// MaxFiles bounds the files of one output that are compared.
	MaxFiles int `yaml:"max_files"`
	// MaxEntries is how many differing files a diff lists.
	MaxEntries int `yaml:"max_entries"`
	// Diffoscope runs on request only.
	Diffoscope DiffoscopeConfig `yaml:"diffoscope"`
}

// diffTarget is one attribute whose outputs are compared.
type diffTarget struct {
	entry      *report.AttrEntry
	base, head map[string]string // output name → path
}

// outputDiffs fills, for the changed attributes of rep built successfully
// on both sides, what the change did to their outputs: NAR and closure
// sizes, files added, removed and changed, and the closure's packages.
// An attribute whose outputs are not all in the store (collected, or
// built elsewhere) says so instead. Only an error of the store's is
// returned; the review goes on without diffs then.
func (r *Reviewer) outputDiffs(ctx context.Context, rep *report.Report) error {
	if r.cfg.Outputs.Diffs <= 0 {
		return nil
	}
	var targets []diffTarget
	for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
		sys := rep.Systems[system]
		for _, name := range slices.Sorted(maps.Keys(sys.Attrs)) {
			e := sys.Attrs[name]
			if e.Change != eval.Changed || e.Head != build.Success || e.Base != build.Success {
				continue
			}
			if len(targets) == r.cfg.Outputs.Diffs {
				break
			}
			t := diffTarget{entry: e}
			var err error
			if t.head, err = outputsOf(e.DrvPath); err == nil {
				t.base, err = outputsOf(e.BaseDrvPath)
			}
			if err != nil {
				e.Outputs = &build.OutputDiff{Error: err.Error()}
				continue
			}
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	var paths []string
	for _, t := range targets {
		paths = append(append(paths, slices.Collect(maps.Values(t.base))...), slices.Collect(maps.Values(t.head))...)
	}
	gone, err := r.gone(ctx, paths)
	if err != nil {
		return fmt.Errorf("output diffs: %w", err)
	}
	infos, err := r.nix.PathInfos(ctx, without(paths, gone), true)
	if err != nil {
		return fmt.Errorf("output diffs: %w", err)
	}
	lim := build.DiffLimits{MaxFiles: r.cfg.Outputs.MaxFiles, MaxEntries: r.cfg.Outputs.MaxEntries}
	for _, t := range targets {
		t.entry.Outputs = diffOutputs(t, gone, infos, lim)
	}
	return nil
}

func diffOutputs(t diffTarget, gone map[string]bool, infos map[string]nix.PathInfo, lim build.DiffLimits) *build.OutputDiff {
	for _, side := range []map[string]string{t.base, t.head} {
		for _, p := range side {
			if gone[p] {
				return &build.OutputDiff{Error: fmt.Sprintf("%s is no longer in the store", p)}
			}
		}
	}
	d := &build.OutputDiff{}
	baseClosure, headClosure := closureOf(t.base, infos), closureOf(t.head, infos)
	for _, p := range t.base {
		d.NarSize.Base += infos[p].NarSize
	}
	for _, p := range t.head {
		d.NarSize.Head += infos[p].NarSize
	}
	for _, s := range baseClosure {
		d.ClosureSize.Base += s
	}
	for _, s := range headClosure {
		d.ClosureSize.Head += s
	}
	d.Closure = build.DiffClosures(baseClosure, headClosure)
	if len(d.Closure) > max(lim.MaxEntries, 50) {
		d.Closure = d.Closure[:max(lim.MaxEntries, 50)]
	}
	files, err := build.DiffOutputs(t.base, t.head, lim)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	d.Files = files
	return d
}

// closureOf is the closure of outputs (path → NAR size), from infos that
// hold the closure of every output.
func closureOf(outputs map[string]string, infos map[string]nix.PathInfo) map[string]int64 {
	out := map[string]int64{}
	var stack []string
	for _, p := range outputs {
		stack = append(stack, p)
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := out[p]; ok {
			continue
		}
		info := infos[p]
		out[p] = info.NarSize
		stack = append(stack, info.References...)
	}
	return out
}

// outputsOf reads a derivation's outputs; content-addressed outputs,
// whose paths a .drv does not hold, are left out.
func outputsOf(drv string) (map[string]string, error) {
	d, err := nix.ReadDerivation(drv)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, p := range d.Outputs {
		if p != "" {
			out[name] = p
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no output path known before it is built", drv)
	}
	return out, nil
}

// outputPaths are the outputs of drvs, those whose .drv is gone left out.
func outputPaths(drvs []string) []string {
	var outs []string
	for _, d := range drvs {
		o, err := outputsOf(d)
		if err != nil {
			continue
		}
		for _, p := range o {
			outs = append(outs, p)
		}
	}
	return outs
}
