package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/basinix/basinix/nix"
)

// Evaluator evaluates package sets. Its worker slots are shared by every
// evaluation it runs, so base and head evaluated at once still use at most
// Options.Workers Nix processes.
type Evaluator struct {
	run     Runner
	opt     Options
	log     zerolog.Logger
	walker  string // path of the walker expression
	listDir string // where attribute lists for the walker are written
	env     []string
	slots   chan struct{}
}

// New returns an Evaluator. It writes the walker expression under
// opt.TempDir.
func New(run Runner, opt Options, log zerolog.Logger) (*Evaluator, error) {
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}
	if opt.Config == "" {
		opt.Config = DefaultConfig
	}
	if opt.MaxExplained == 0 {
		opt.MaxExplained = 200
	}
	if opt.TempDir == "" {
		opt.TempDir = os.TempDir()
	}
	walker, err := nix.WriteWalker(opt.TempDir)
	if err != nil {
		return nil, err
	}
	listDir, err := os.MkdirTemp(opt.TempDir, "lists-")
	if err != nil {
		return nil, fmt.Errorf("evaluator: %w", err)
	}
	// Nix's GC starts small and grows in many steps; a larger initial heap
	// saves most collections on a large set, but must stay well below the
	// memory bound or every process would look like it eats memory.
	heap := int64(1 << 30)
	if opt.MaxMemory > 0 && opt.MaxMemory/4 < heap {
		heap = opt.MaxMemory / 4
	}
	return &Evaluator{
		run: run, opt: opt, log: log, walker: walker, listDir: listDir,
		env:   []string{"GC_INITIAL_HEAP_SIZE=" + strconv.FormatInt(heap, 10)},
		slots: make(chan struct{}, opt.Workers),
	}, nil
}

// Close removes the Evaluator's temporary files.
func (e *Evaluator) Close() error { return os.RemoveAll(e.listDir) }

// Workers returns the number of evaluation processes run at once.
func (e *Evaluator) Workers() int { return e.opt.Workers }

// ConfigExpr returns the config expression evaluations use; it is part of
// the cache key.
func (e *Evaluator) ConfigExpr() string { return e.opt.Config }

func (e *Evaluator) acquire(ctx context.Context) (func(), error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Evaluate evaluates the package set checked out at src for system. An
// attribute that fails gets its error while every other attribute still
// gets its result; a package set that does not evaluate at all gives an
// Evaluation with Error set. The error return is for infrastructure
// failures (Nix missing, cancelled context).
func (e *Evaluator) Evaluate(ctx context.Context, src, system string) (*Evaluation, error) {
	start := time.Now()
	col := &collector{src: src, attrs: map[string]*Attr{}, throws: map[string]Path{}}
	res := &Evaluation{System: system, Attrs: col.attrs}

	var procs int
	var procsMu sync.Mutex
	count := func(n int) { procsMu.Lock(); procs += n; procsMu.Unlock() }

	chunks := e.opt.Workers
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < chunks; i++ {
		g.Go(func() error {
			n, err := e.walk(gctx, walkSpec{src: src, system: system, config: e.opt.Config, mode: "walk", chunk: i, chunks: chunks}, col)
			count(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		var setErr *errSetFailed
		if errors.As(err, &setErr) {
			res.Error = setErr.err
			res.Attrs = map[string]*Attr{}
			res.Duration, res.Processes = time.Since(start), procs
			return res, nil
		}
		return nil, fmt.Errorf("evaluate %s: %w", system, err)
	}

	// Every failed attribute is tried again with aliases on, and every
	// throw is evaluated without tryEval to learn its message.
	failed, throws := col.failures()
	g, gctx = errgroup.WithContext(ctx)
	aliases := &collector{src: src, attrs: map[string]*Attr{}, throws: map[string]Path{}}
	if len(failed) > 0 {
		g.Go(func() error {
			n, err := e.walk(gctx, walkSpec{src: src, system: system, config: "(" + e.opt.Config + ") // { allowAliases = true; }", mode: "walk", paths: failed}, aliases)
			count(n)
			return err
		})
	}
	explain := throws
	if len(explain) > e.opt.MaxExplained {
		explain = explain[:e.opt.MaxExplained]
	}
	for _, part := range split(explain, e.opt.Workers) {
		g.Go(func() error {
			n, err := e.walk(gctx, walkSpec{src: src, system: system, config: e.opt.Config, mode: "walk", strict: true, paths: part}, col)
			count(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("evaluate %s: failed attributes: %w", system, err)
	}
	col.finish(aliases)
	res.Duration, res.Processes = time.Since(start), procs
	e.log.Debug().Str("system", system).Int("attrs", len(res.Attrs)).Int("processes", procs).Dur("took", res.Duration).Msg("evaluated")
	return res, nil
}

// TestSet is the evaluation of one attribute's passthru.tests.
type TestSet struct {
	Tests map[string]Test `json:"tests,omitempty"`
	// Error is set when the tests could not be listed at all.
	Error *Error `json:"error,omitempty"`
}

// Tests evaluates the passthru.tests of the given attributes. Tests are
// evaluated apart from the main walk because only added and changed
// attributes need them and some (NixOS tests) are expensive.
func (e *Evaluator) Tests(ctx context.Context, src, system string, paths []Path) (map[string]*TestSet, error) {
	col := &testCollector{src: src, sets: map[string]*TestSet{}}
	g, gctx := errgroup.WithContext(ctx)
	for _, part := range split(paths, e.opt.Workers) {
		g.Go(func() error {
			_, err := e.walk(gctx, walkSpec{src: src, system: system, config: e.opt.Config, mode: "tests", paths: part}, col)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		var setErr *errSetFailed
		if errors.As(err, &setErr) {
			return nil, fmt.Errorf("evaluate tests: %w", setErr)
		}
		return nil, fmt.Errorf("evaluate tests: %w", err)
	}
	return col.sets, nil
}

// split cuts paths into at most n parts of nearly equal size.
func split(paths []Path, n int) [][]Path {
	if len(paths) == 0 {
		return nil
	}
	if n > len(paths) {
		n = len(paths)
	}
	parts := make([][]Path, 0, n)
	for i := 0; i < n; i++ {
		lo, hi := i*len(paths)/n, (i+1)*len(paths)/n
		parts = append(parts, paths[lo:hi])
	}
	return parts
}

// collector gathers one evaluation's attributes from concurrent walks.
type collector struct {
	src string

	mu     sync.Mutex
	attrs  map[string]*Attr // guarded by mu
	throws map[string]Path  // attributes tryEval caught, guarded by mu
}

func (c *collector) drv(p Path, info *rawInfo) {
	if info.Drv == nil {
		c.throw(p)
		return
	}
	a := &Attr{
		Path:      p,
		DrvPath:   *info.Drv,
		Broken:    info.Broken,
		Supported: info.Sup,
	}
	if len(info.Feat) > 0 {
		a.Features = info.Feat
	}
	if len(info.Tests) > 0 {
		a.Tests = info.Tests
	}
	if info.Name != nil {
		a.Name = *info.Name
	}
	if info.Pos != nil {
		a.Position = relativePosition(*info.Pos, c.src)
	}
	if len(info.Out) > 0 {
		a.Outputs = make(map[string]string, len(info.Out))
		for k, v := range info.Out {
			if v != nil {
				a.Outputs[k] = *v
			}
		}
	}
	sort.Strings(a.Tests)
	c.mu.Lock()
	c.attrs[p.String()] = a
	delete(c.throws, p.String())
	c.mu.Unlock()
}

func (c *collector) throw(p Path) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := p.String()
	if a, ok := c.attrs[k]; ok && a.Error != nil {
		return
	}
	c.throws[k] = p
	c.attrs[k] = &Attr{Path: p, Supported: true, Error: &Error{Message: "evaluation failed (throw or assert)"}}
}

func (c *collector) tests(Path, map[string]*string) {}

func (c *collector) fail(p Path, err *Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.throws, p.String())
	c.attrs[p.String()] = &Attr{Path: p, Supported: true, Error: err}
}

// failures returns the failed attributes and, among them, the throws whose
// message is still unknown, both sorted.
func (c *collector) failures() (failed, throws []Path) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.attrs {
		if a.Error != nil {
			failed = append(failed, a.Path)
		}
	}
	for _, p := range c.throws {
		throws = append(throws, p)
	}
	sortPaths(failed)
	sortPaths(throws)
	return failed, throws
}

// finish marks the failed attributes that evaluate with aliases as alias
// errors and takes their derivation from that evaluation.
func (c *collector) finish(aliases *collector) {
	for k, a := range aliases.attrs {
		orig, ok := c.attrs[k]
		if !ok || orig.Error == nil || a.Error != nil {
			continue
		}
		a.Error, a.AliasError = orig.Error, true
		c.attrs[k] = a
	}
}

func sortPaths(ps []Path) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
}

type testCollector struct {
	src  string
	mu   sync.Mutex
	sets map[string]*TestSet // guarded by mu
}

func (c *testCollector) drv(Path, *rawInfo) {}
func (c *testCollector) throw(Path)         {}

func (c *testCollector) tests(p Path, tests map[string]*string) {
	set := &TestSet{Tests: map[string]Test{}}
	for name, drv := range tests {
		if drv == nil {
			set.Tests[name] = Test{Error: &Error{Message: "evaluation failed (throw or assert)"}}
		} else {
			set.Tests[name] = Test{DrvPath: *drv}
		}
	}
	c.mu.Lock()
	c.sets[p.String()] = set
	c.mu.Unlock()
}

func (c *testCollector) fail(p Path, err *Error) {
	c.mu.Lock()
	c.sets[p.String()] = &TestSet{Error: err}
	c.mu.Unlock()
}
