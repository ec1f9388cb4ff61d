package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/basinix/basinix/nix"
)

// source is what a walker evaluates: a package set's checkout, or a
// flake's jobs.
type source struct {
	// src is what the walker imports: the checkout of a package set, or
	// for a flake its copy in the store.
	src string
	// flake is the FlakeSpec as JSON for a flake, "" for a package set.
	flake string
	// readable are the store paths a flake's evaluation may read beside
	// src: its locked inputs.
	readable []string
}

// DefaultFlakeJobs is the order in which a flake's outputs are looked for
// its jobs.
var DefaultFlakeJobs = []string{"basinixJobs", "hydraJobs", "checks", "packages"}

// source returns what the checkout at dir is evaluated as. A flake is
// copied into the store and its locked inputs fetched (each once per
// Evaluator); a flake that cannot be evaluated as committed (no lock for
// its inputs, an input basinix may not fetch) is an errSetFailed, the
// repository's fault, told as the evaluation's error.
func (e *Evaluator) source(ctx context.Context, dir string) (*source, error) {
	lay, err := nix.Locate(e.opt.Flakes, nix.Dir(dir))
	if err == nil && !lay.Flake {
		return &source{src: dir}, nil
	}
	var spec *nix.FlakeSpec
	if err == nil {
		jobs := lay.Jobs
		if len(jobs) == 0 {
			jobs = e.flakeJobs()
		}
		spec, err = e.flakes.Prepare(ctx, dir, lay.Dir, jobs)
	}
	if errors.Is(err, nix.ErrFlake) {
		out := &Error{Message: e.relativeText(err.Error(), dir)}
		if ferr := (*nix.FileError)(nil); errors.As(err, &ferr) {
			out.File, out.Line = ferr.File, ferr.Line
		}
		return nil, &errSetFailed{err: out}
	}
	if err != nil {
		return nil, fmt.Errorf("prepare the flake: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("prepare the flake: %w", err)
	}
	return &source{src: spec.Nodes[spec.Root].Path, flake: string(js), readable: spec.Paths()}, nil
}

func (e *Evaluator) flakeJobs() []string {
	if len(e.opt.FlakeJobs) > 0 {
		return e.opt.FlakeJobs
	}
	return DefaultFlakeJobs
}
