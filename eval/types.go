// Package eval evaluates a nixpkgs-style package set at a checkout: it finds
// the attributes as nix-env -qaP does, evaluates them in parallel chunks with
// per-attribute error isolation, checks aliases, reads meta and tests, and
// diffs two evaluations.
package eval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/basinix/basinix/nix"
)

// Attr is one attribute of an evaluation.
type Attr struct {
	Path    Path   `json:"path"`
	DrvPath string `json:"drvPath,omitempty"`
	// OutPath is the path of its first output, "" when not known.
	OutPath string `json:"outPath,omitempty"`
	// Error is set when the attribute does not evaluate (without aliases).
	// A throw caught by tryEval has the message Unexplained until Explain
	// fetches the real one.
	Error *Error `json:"error,omitempty"`
	// AliasError is true when the attribute evaluates only with aliases
	// on: Error says what failed without them, and DrvPath comes from the
	// evaluation with aliases.
	AliasError bool `json:"aliasError,omitempty"`
}

// Unexplained is the message of a throw whose real message was not fetched.
const Unexplained = "evaluation failed (throw or assert)"

// OK reports whether the attribute evaluated to a derivation with aliases off.
func (a *Attr) OK() bool { return a.Error == nil && a.DrvPath != "" }

// Evaluable reports whether the attribute has a derivation at all (perhaps
// only with aliases on).
func (a *Attr) Evaluable() bool { return a.DrvPath != "" && (a.Error == nil || a.AliasError) }

// Details are what a review needs of an attribute beyond its drvPath. They
// are evaluated only for the attributes a change touches: on a large set,
// reading meta and tests of everything would cost more than the whole diff.
type Details struct {
	Name      string            `json:"name,omitempty"`
	Outputs   map[string]string `json:"outputs,omitempty"`
	Position  string            `json:"position,omitempty"` // FILE:LINE relative to the repository root
	Broken    bool              `json:"broken,omitempty"`
	Supported bool              `json:"supported"` // meta.platforms / badPlatforms allow the system
	Features  []string          `json:"features,omitempty"`
	// Maintainers are the GitHub handles of meta.maintainers.
	Maintainers []string        `json:"maintainers,omitempty"`
	Tests       map[string]Test `json:"tests,omitempty"` // passthru.tests
	// Error is set when the details could not be evaluated; the rest is empty.
	Error *Error `json:"error,omitempty"`
}

// Test is the evaluation of one passthru.tests entry.
type Test struct {
	DrvPath string `json:"drvPath,omitempty"`
	Error   *Error `json:"error,omitempty"`
}

// Error is an evaluation error, pinned to the place Nix named inside the
// repository when it named one.
type Error struct {
	Message string `json:"message"`
	File    string `json:"file,omitempty"` // relative to the repository root
	Line    int    `json:"line,omitempty"`
}

func (e *Error) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s (%s:%d)", e.Message, e.File, e.Line)
	}
	return e.Message
}

// Evaluation is one package set at one commit for one system and config.
type Evaluation struct {
	Commit string
	System string
	// Attrs by Path.String().
	Attrs map[string]*Attr
	// Error is set when the package set itself failed to evaluate (for
	// example a syntax error in all-packages.nix); Attrs is then empty.
	Error    *Error
	Duration time.Duration
	// Processes counts the Nix processes the evaluation started.
	Processes int
	// Retired counts the walkers that passed the soft memory bound and
	// handed the rest of their list to a new process (not kills).
	Retired int
}

// Runner runs Nix; *nix.Runner is one.
type Runner interface {
	Run(ctx context.Context, cmd nix.Cmd) (*nix.Result, error)
}

// Options tune an Evaluator.
type Options struct {
	// Workers is how many Nix processes run at once (default: the core count).
	Workers int
	// Config is the Nix expression given as the package set's config.
	Config string
	// AttrTimeout ends an evaluation process that makes no progress for this
	// long; the attribute it was on gets a time-limit error.
	AttrTimeout time.Duration
	// MaxMemory bounds each evaluation process's resident memory, in bytes.
	MaxMemory int64
	// MemoryBudget bounds the walkers' resident memory together, in
	// bytes (default Workers × MaxMemory): past it, the largest walker
	// hands its list over at its next group (as past its own soft bound),
	// so that many walkers at once do not take the machine's memory.
	MemoryBudget int64
	// AvailableMemory is the memory, in bytes, the machine has for the
	// walkers (its MemAvailable): their GC's initial heap is sized from it
	// (see initialHeap). 0: 1 GiB each.
	AvailableMemory int64
	// MaxExplained bounds how many throwing attributes get their message
	// fetched by one Explain (one Nix process each); the rest say so.
	MaxExplained int
	// TempDir holds the walker expression and attribute lists.
	TempDir string
	// Timeout bounds one evaluation as a whole, every process it starts,
	// beside AttrTimeout's bound on silence (0: no bound). Past it the
	// evaluation fails with ErrTimeLimit and nothing of it is kept.
	Timeout time.Duration
	// MaxAttrs bounds the attributes of one evaluation (default
	// 1,000,000): a set that grows without end fails with a clear error
	// instead of basinix's memory growing with it.
	MaxAttrs int
	// MaxDeaths bounds how many Nix processes one evaluation may lose to
	// errors tryEval cannot catch (default 200; each costs an import of
	// the set): past it, the attributes not evaluated yet get an error
	// that says so.
	MaxDeaths int
	// Flakes says when a checkout is evaluated as a flake: "auto" (the
	// default: a flake.nix and no default.nix), "always" or "never".
	Flakes string
	// FlakeJobs is the order of outputs a flake's jobs are looked for in
	// (default DefaultFlakeJobs).
	FlakeJobs []string
	// FlakeLocalInputs are the directories path: and git+file: inputs of
	// a flake may be fetched from (default none).
	FlakeLocalInputs []string
}

// Key is what of the options an evaluation's result depends on, for its
// cache key: the config, and the limits that decide which attributes fail.
func (o Options) Key() string {
	// repo_config: evaluations made before .basinix.toml was read.
	return fmt.Sprintf("config=%s attr_timeout=%s max_memory=%d max_attrs=%d max_deaths=%d flakes=%s flake_jobs=%v repo_config=1",
		o.Config, o.AttrTimeout, o.MaxMemory, o.MaxAttrs, o.MaxDeaths, o.Flakes, o.FlakeJobs)
}

var (
	// ErrInfrastructure marks an evaluation that failed for the machine's
	// fault (the store database busy or read-only, no space left, a signal
	// basinix did not send): nothing of it is a result, nothing is kept.
	ErrInfrastructure = errors.New("infrastructure error")
	// ErrTimeLimit marks an evaluation that ran past Options.Timeout.
	ErrTimeLimit = errors.New("evaluation time limit")
)

// DefaultConfig is the config nixpkgs CI evaluates with: no aliases, and
// everything else allowed so that meta decides what is skipped.
const DefaultConfig = `{ allowAliases = false; allowBroken = true; allowUnfree = true; allowUnsupportedSystem = true; allowInsecurePredicate = _: true; }`
