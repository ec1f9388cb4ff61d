package eval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	flakes  *nix.FlakeFetcher
	env     []string
	slots   chan struct{}
	// startWalker starts walker processes: nix.StartWalker, or scripted
	// ones in tests.
	startWalker startWalker
	// exactWalks turns fast walks off (see fast), for tests that compare
	// the two.
	exactWalks bool

	// mem is what each walker's resident memory was last measured at,
	// for Options.MemoryBudget.
	mem struct {
		sync.Mutex
		rss map[*proc]memSample
	}

	// closed ends every process left when the Evaluator is closed; bg
	// counts the processes running.
	closed context.Context
	close  context.CancelFunc
	bg     sync.WaitGroup
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
	if opt.MaxAttrs == 0 {
		opt.MaxAttrs = 1_000_000
	}
	if opt.MaxDeaths == 0 {
		opt.MaxDeaths = 200
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
	heap := initialHeap(opt)
	closed, closeFn := context.WithCancel(context.Background())
	start := func(ctx context.Context, spec nix.WalkerSpec, h nix.WalkerHooks) (walkerProcess, error) {
		return nix.StartWalker(ctx, run, spec, h)
	}
	return &Evaluator{startWalker: start,
		run: run, opt: opt, log: log, walker: walker, listDir: listDir,
		flakes: nix.NewFlakeFetcher(run, walker, opt.FlakeLocalInputs),
		env:    []string{"GC_INITIAL_HEAP_SIZE=" + strconv.FormatInt(heap, 10)},
		slots:  make(chan struct{}, opt.Workers),
		closed: closed, close: closeFn,
	}, nil
}

// initialHeap is the GC_INITIAL_HEAP_SIZE each walker gets. Nix's default
// heap starts at 384 MiB and grows in 8 MiB steps, collecting between
// them, and a walk of a large set keeps most of what it allocates, so most
// collections free nothing (five collections, a quarter of a walker's
// time, on the 100,000-attribute sample). A heap as large as the walk
// needs spares them: half the available memory shared by the workers, at
// most 4 GiB each (what Determinate Nix gives its evaluator), at least
// Nix's 384 MiB, within half of a MemoryBudget's share, and a quarter of
// MaxMemory when that bounds a process, or every process would look like
// it eats memory and be retired. Without Options.AvailableMemory, 1 GiB.
func initialHeap(opt Options) int64 {
	workers := int64(max(opt.Workers, 1))
	heap := int64(1 << 30)
	if opt.AvailableMemory > 0 {
		heap = min(max(opt.AvailableMemory/2/workers, 384<<20), 4<<30)
	}
	if opt.MemoryBudget > 0 {
		heap = min(heap, opt.MemoryBudget/2/workers)
	}
	if opt.MaxMemory > 0 {
		heap = min(heap, opt.MaxMemory/4)
	}
	return heap
}

// Close ends the processes still running (waiting ones of sessions not
// closed, closed ones still exiting), waits for them, and removes the
// Evaluator's temporary files.
func (e *Evaluator) Close() error {
	e.close()
	e.bg.Wait()
	return os.RemoveAll(e.listDir)
}

// Workers returns the number of evaluation processes run at once.
func (e *Evaluator) Workers() int { return e.opt.Workers }

// Key returns what the evaluations' results depend on beyond the commit
// and system (the config and the limits), for their cache key.
func (e *Evaluator) Key() string { return e.opt.Key() }

// bounded returns ctx bounded by Options.Timeout; timedOut then says
// whether the bound is what ended it.
func (e *Evaluator) bounded(ctx context.Context) (bctx context.Context, cancel context.CancelFunc, timedOut func() bool) {
	if e.opt.Timeout <= 0 {
		return ctx, func() {}, func() bool { return false }
	}
	bctx, cancel = context.WithTimeoutCause(ctx, e.opt.Timeout, ErrTimeLimit)
	return bctx, cancel, func() bool { return ctx.Err() == nil && errors.Is(context.Cause(bctx), ErrTimeLimit) }
}

// limitErr is the error of an evaluation that the time bound ended.
func (e *Evaluator) limitErr(what string) error {
	return fmt.Errorf("%s: %w: it took longer than %s", what, ErrTimeLimit, e.opt.Timeout)
}

func (e *Evaluator) acquire(ctx context.Context) (func(), error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Evaluate evaluates the package set checked out at src for system, in
// chunks processes (each also imports the whole set, so a caller running
// several evaluations at once gives each fewer chunks; 0 means Workers).
//
// An attribute that fails gets its error while every other attribute still
// gets its result; attributes that fail only without aliases are alias
// errors. A package set that does not evaluate at all gives an Evaluation
// with Error set. The error return is for infrastructure failures (Nix
// missing, cancelled context).
func (e *Evaluator) Evaluate(ctx context.Context, src, system string, chunks int) (*Evaluation, error) {
	s, err := e.Open(ctx, src, system, chunks)
	if err != nil {
		return nil, err
	}
	s.Close()
	return s.ev, nil
}

// Open evaluates like Evaluate, and keeps the evaluation's last processes
// waiting, so that the details of its attributes cost no new import of the
// set: ask them with Session.Details, and Close the session when done (the
// processes also end with ctx).
//
// While the evaluation runs, a walker that is done waits in the session's
// pool: from there it takes over half of what a slower walker has left, or
// what is left after a walker died, without importing the set again.
func (e *Evaluator) Open(ctx context.Context, src, system string, chunks int) (*Session, error) {
	start := time.Now()
	if chunks <= 0 {
		chunks = e.opt.Workers
	}
	wctx, cancelWalks, timedOut := e.bounded(ctx)
	defer cancelWalks()
	root, err := e.source(wctx, src)
	var setErr *errSetFailed
	if errors.As(err, &setErr) {
		ev := &Evaluation{System: system, Attrs: map[string]*Attr{}, Error: setErr.err, Duration: time.Since(start)}
		return &Session{e: e, system: system, ev: ev, idle: &idlePool{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", system, err)
	}
	full, stopFull := context.WithCancelCause(wctx)
	defer stopFull(nil)
	col := &collector{attrs: map[string]*Attr{}, limit: e.opt.MaxAttrs, full: func() { stopFull(errTooManyAttrs) }}
	res := &Evaluation{System: system, Attrs: col.attrs}
	idle := &idlePool{walks: make([]*walkState, chunks)}
	for i := range idle.walks {
		idle.walks[i] = newWalkState()
	}
	deaths, retired := &atomic.Int32{}, &atomic.Int32{}
	s := &Session{e: e, source: *root, system: system, ev: res, idle: idle}
	var procs int
	var procsMu sync.Mutex
	count := func(n int) { procsMu.Lock(); procs += n; procsMu.Unlock() }

	g, gctx := errgroup.WithContext(full)
	for i := 0; i < chunks; i++ {
		g.Go(func() error {
			spec := walkSpec{source: *root, system: system, config: e.opt.Config, mode: "walk", chunk: i, chunks: chunks, hold: ctx, idle: idle, deaths: deaths, retired: retired, state: idle.walks[i]}
			n, p, err := e.walk(gctx, spec, col)
			// Its chunk's walk is over (settled for good): the lists
			// this walker takes over below are walks of their own.
			spec.state = nil
			count(n)
			// Done: take over half of what another walk has left, as long
			// as one has enough (waiting for a walk between processes, a
			// first one still importing the set or a new one after a
			// death, to have one walking again), then wait.
			for p != nil && err == nil {
				unsettled := idle.unsettled()
				stolen := idle.steal()
				if stolen == nil {
					if len(unsettled) == 0 {
						break
					}
					select {
					case <-unsettled[0]:
						continue
					case <-gctx.Done():
					}
					break
				}
				e.log.Debug().Str("system", system).Int("paths", len(stolen)).Msg("a walker takes over the end of another's list")
				s.handovers.Add(1)
				spec.paths, spec.first = stolen, p
				n, p, err = e.walk(gctx, spec, col)
				count(n)
			}
			if p != nil {
				idle.put(p)
			}
			return err
		})
	}
	err = g.Wait()
	if err == nil && col.overflowed() {
		err = context.Cause(full)
	}
	if err != nil {
		s.Close()
		if col.overflowed() {
			err = &errSetFailed{err: &Error{Message: errTooManyAttrs.Error()}}
		}
		if timedOut() {
			return nil, e.limitErr("evaluate " + system)
		}
		if errors.As(err, &setErr) {
			res.Error = setErr.err
			res.Attrs = map[string]*Attr{}
			res.Duration, res.Processes = time.Since(start), procs
			return s, nil
		}
		return nil, fmt.Errorf("evaluate %s: %w", system, err)
	}

	// Throws were tried with aliases on by the walk itself; attributes
	// whose process died are tried again here, whatever the error: those
	// that evaluate with aliases use an alias in-tree. Only they are
	// walked again, never the whole set, within the same max_deaths.
	if failed := col.aliasSuspects(); len(failed) > 0 && root.flake == "" {
		aliases := &collector{attrs: map[string]*Attr{}}
		// New processes, not the waiting walkers: these attributes killed a
		// process once and may again, and a waiting walker would import
		// the set again with aliases first; the walkers are kept for the
		// details that come next.
		n, err := e.walkParts(wctx, walkSpec{source: *root, system: system, config: e.withAliases(), mode: "walk", paths: failed, deaths: deaths}, aliases)
		count(n)
		if err != nil {
			s.Close()
			if timedOut() {
				return nil, e.limitErr("evaluate " + system + " with aliases")
			}
			return nil, fmt.Errorf("evaluate %s with aliases: %w", system, err)
		}
		for k, a := range aliases.attrs {
			if orig := col.attrs[k]; orig != nil && orig.Error != nil && a.OK() {
				orig.DrvPath, orig.AliasError = a.DrvPath, true
			}
		}
	}
	res.Duration, res.Processes, res.Retired = time.Since(start), procs, int(retired.Load())
	e.log.Debug().Str("system", system).Int("attrs", len(res.Attrs)).Int("processes", procs).Dur("took", res.Duration).Msg("evaluated")
	return s, nil
}

// Attribute evaluates one attribute of the set at src, strictly (a throw
// gives its message) and writing its .drv, so that it can be built: the
// attribute with its drvPath, or with its error. A set that does not
// evaluate gives the set's error as the attribute's.
func (e *Evaluator) Attribute(ctx context.Context, src, system string, p Path) (*Attr, error) {
	ctx, cancel, timedOut := e.bounded(ctx)
	defer cancel()
	col := &collector{attrs: map[string]*Attr{}}
	root, err := e.source(ctx, src)
	if err == nil {
		_, _, err = e.walk(ctx, walkSpec{source: *root, system: system, config: e.opt.Config, mode: "walk", strict: true, write: true, paths: []Path{p}}, col)
	}
	var setErr *errSetFailed
	if errors.As(err, &setErr) {
		return &Attr{Path: p, Error: setErr.err}, nil
	}
	if err != nil {
		if timedOut() {
			return nil, e.limitErr(fmt.Sprintf("evaluate %s for %s", p, system))
		}
		return nil, fmt.Errorf("evaluate %s for %s: %w", p, system, err)
	}
	if a := col.attrs[p.String()]; a != nil {
		return a, nil
	}
	return &Attr{Path: p, Error: &Error{Message: "not a derivation"}}, nil
}

// withAliases is the config with aliases on.
func (e *Evaluator) withAliases() string { return "(" + e.opt.Config + ") // { allowAliases = true; }" }

// Explain evaluates the given attributes without tryEval to learn the
// message and position of their throws, at most MaxExplained of them; the
// map has an entry for each attribute that failed.
func (e *Evaluator) Explain(ctx context.Context, src, system string, paths []Path) (map[string]*Error, error) {
	if len(paths) > e.opt.MaxExplained {
		paths = paths[:e.opt.MaxExplained]
	}
	col := &collector{attrs: map[string]*Attr{}}
	root, err := e.source(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("explain errors for %s: %w", system, err)
	}
	if _, err := e.walkParts(ctx, walkSpec{source: *root, system: system, config: e.opt.Config, mode: "walk", strict: true, paths: paths}, col); err != nil {
		return nil, fmt.Errorf("explain errors for %s: %w", system, err)
	}
	out := map[string]*Error{}
	for k, a := range col.attrs {
		if a.Error != nil {
			out[k] = a.Error
		}
	}
	return out, nil
}

// Details evaluates meta, outputs and passthru.tests of the given
// attributes, with aliases on when aliases is true (for alias errors, which
// only evaluate so). With instantiate, the .drv files of the attributes and
// their tests are written to the store, so they can be built (evaluation
// is otherwise read-only). An attribute whose details cannot be evaluated
// gets Details with Error set.
func (e *Evaluator) Details(ctx context.Context, src, system string, paths []Path, aliases, instantiate bool) (map[string]*Details, error) {
	root, err := e.source(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("details for %s: %w", system, err)
	}
	col := &detailsCollector{src: root.src, out: map[string]*Details{}}
	if _, err := e.walkParts(ctx, walkSpec{source: *root, system: system, config: e.config(aliases), mode: "details", write: instantiate, paths: paths}, col); err != nil {
		return nil, fmt.Errorf("details for %s: %w", system, err)
	}
	return col.out, nil
}

// config is the config expression, with aliases on when aliases is true.
func (e *Evaluator) config(aliases bool) string {
	if aliases {
		return e.withAliases()
	}
	return e.opt.Config
}

// walkParts walks spec.paths in new processes, the list cut into one part
// per worker, and returns how many processes it took.
func (e *Evaluator) walkParts(ctx context.Context, spec walkSpec, s sink) (int, error) {
	ctx, cancel, timedOut := e.bounded(ctx)
	defer cancel()
	var mu sync.Mutex
	var procs int
	g, gctx := errgroup.WithContext(ctx)
	for _, part := range split(spec.paths, e.opt.Workers) {
		g.Go(func() error {
			spec := spec
			spec.paths = part
			n, _, err := e.walk(gctx, spec, s)
			mu.Lock()
			procs += n
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	if err != nil && timedOut() {
		err = e.limitErr("walk " + spec.system)
	}
	return procs, err
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

// errTooManyAttrs is the error of a set with more than Options.MaxAttrs
// attributes.
var errTooManyAttrs = errors.New("the package set has more attributes than the configured eval.max_attrs: does an attribute set recurse into itself without end?")

// collector gathers one evaluation's attributes from concurrent walks. With
// a limit, it keeps at most limit attributes and calls full once, when one
// more comes.
type collector struct {
	limit int
	full  func()

	mu    sync.Mutex
	attrs map[string]*Attr // guarded by mu
	over  bool             // guarded by mu
}

func (c *collector) put(a *Attr) {
	key := a.Path.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.attrs[key]; !ok && c.limit > 0 && len(c.attrs) >= c.limit {
		if !c.over {
			c.over = true
			c.full()
		}
		return
	}
	c.attrs[key] = a
}

// overflowed reports whether more than limit attributes came.
func (c *collector) overflowed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.over
}

func (c *collector) drv(p Path, drvPath, outPath string) {
	c.put(&Attr{Path: p, DrvPath: drvPath, OutPath: outPath})
}
func (c *collector) throw(p Path, aliasDrv string) {
	c.put(&Attr{Path: p, Error: &Error{Message: Unexplained}, DrvPath: aliasDrv, AliasError: aliasDrv != ""})
}
func (c *collector) fail(p Path, err *Error)        { c.put(&Attr{Path: p, Error: err}) }
func (c *collector) details(Path, *nix.WalkDetails) {}

// aliasSuspects returns, sorted, the failed attributes the walk could not
// try with aliases on and an alias may explain: every one whose process
// died, whatever the error (an alias used through a callPackage argument
// dies of "called without required argument", one used as pkgs.NAME of a
// missing attribute, one in `with pkgs;` of an undefined variable, one in
// an override of a type error), except
//   - throws, which the walk tried itself;
//   - kills for time or memory: the limits ended them, not aliases;
//   - attributes given up on after max_deaths;
//   - an abort of the code's own whose message is not about a missing
//     argument or attribute (nixpkgs' callPackage aborts "Function called
//     without required argument"): the code decided to stop, and trying it
//     again would cost a second death for nothing.
func (c *collector) aliasSuspects() []Path {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Path
	for _, a := range c.attrs {
		if a.Error == nil || a.AliasError || !aliasMayExplain(a.Error.Message) {
			continue
		}
		out = append(out, a.Path)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// aliasMayExplain reports whether an error of a died process could come
// from an alias missing with allowAliases = false (see aliasSuspects).
func aliasMayExplain(msg string) bool {
	switch {
	case msg == Unexplained, strings.HasPrefix(msg, "evaluation killed"), strings.HasPrefix(msg, "not evaluated:"):
		return false
	case strings.HasPrefix(msg, "evaluation aborted with the following error message"):
		return strings.Contains(msg, "argument") || strings.Contains(msg, "attribute")
	}
	return true
}

type detailsCollector struct {
	src string
	mu  sync.Mutex
	out map[string]*Details // guarded by mu
}

func (c *detailsCollector) drv(Path, string, string) {}
func (c *detailsCollector) throw(Path, string)       {}

func (c *detailsCollector) details(p Path, raw *nix.WalkDetails) {
	d := &Details{Broken: raw.Broken, Supported: raw.Sup}
	if raw.Name != nil {
		d.Name = *raw.Name
	}
	if raw.Pos != nil {
		d.Position = relativePosition(*raw.Pos, c.src)
	}
	if len(raw.Feat) > 0 {
		d.Features = raw.Feat
	}
	if len(raw.Maint) > 0 {
		d.Maintainers = raw.Maint
	}
	for k, v := range raw.Out {
		if v != nil {
			if d.Outputs == nil {
				d.Outputs = map[string]string{}
			}
			d.Outputs[k] = *v
		}
	}
	for name, drv := range raw.Tests {
		if d.Tests == nil {
			d.Tests = map[string]Test{}
		}
		if drv == nil {
			d.Tests[name] = Test{Error: &Error{Message: Unexplained}}
		} else {
			d.Tests[name] = Test{DrvPath: *drv}
		}
	}
	c.mu.Lock()
	c.out[p.String()] = d
	c.mu.Unlock()
}

func (c *detailsCollector) fail(p Path, err *Error) {
	c.mu.Lock()
	c.out[p.String()] = &Details{Supported: true, Error: err}
	c.mu.Unlock()
}
