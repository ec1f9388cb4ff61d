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
	if !nix.IsFlake(e.opt.Flakes, nix.InDir(dir)) {
		return &source{src: dir}, nil
	}
	spec, err := e.flakes.Prepare(ctx, dir, e.flakeJobs())
	if errors.Is(err, nix.ErrFlake) {
		return nil, &errSetFailed{err: &Error{Message: e.relativeText(err.Error(), dir)}}
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
