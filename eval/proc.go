package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/basinix/basinix/nix"
)

// proc is one running walker process. A held one (walkSpec.hold set) does not
// exit after its walk: it waits, holding no worker slot, for requests on
// its named pipe, each a walk or details of more attributes in the set it
// already imported (see nix/expr/walker.nix).
type proc struct {
	e      *Evaluator
	spec   walkSpec
	rounds int                // held: the number of the current round (0: the walk)
	cancel context.CancelFunc // kills the process

	done chan struct{} // closed when the process has exited and its slot is free

	waits   chan struct{} // a "w" record came: the process reads the pipe
	waiting atomic.Bool   // between a "w" and the next request

	// names are the top-level names of the derivations it walked: the
	// details of those are cheap for it. Written by its rounds' records
	// only, read once it waits.
	names map[string]bool

	mu      sync.Mutex
	w       walkerProcess // guarded by mu: set once started
	cur     *round        // guarded by mu: what the records coming now belong to
	holding bool          // guarded by mu: a worker slot is taken

	// retiring: its memory passed the soft bound, and its round was cut
	// at the next group; retired are the paths after the cut, for a new
	// process (see retire).
	retiring atomic.Bool
	retired  []Path // guarded by mu
	// base is the walker's resident memory once it walked its first group
	// (the set's import and little more), the floor any new walker has.
	base atomic.Int64
}

// round is one walk or request of a process: the order of its records,
// where they go and what came of them.
type round struct {
	mu        sync.Mutex // held while records are handled, and by stealers
	cut       bool       // the end of the list was taken by another walker
	reached   bool       // cut, and the walker is past what is left to it
	ord       *order
	out       walkOutcome
	sink      sink
	protoErr  error
	chunkMode bool
	fine      int
	// state, for a chunk's first round, is its walk's, settled once the
	// walker has told its list, and then set to nil.
	state *walkState
}

// walkState says whether a chunk's walk is settled: over, or with a
// process walking that another walker could take part of the list of (it
// is running and its list is known). Between processes (the first still
// importing the set, or a new one after a death) it is not. A walker that
// is done waits for the unsettled ones before it gives up looking for a
// list to take over (see idlePool.unsettled): a walker whose chunk ended
// before another walker's import would otherwise leave that walker its
// whole chunk. A nil walkState is always settled.
type walkState struct {
	mu      sync.Mutex
	settled bool
	ch      chan struct{} // closed when settled
}

func newWalkState() *walkState { return &walkState{ch: make(chan struct{})} }

func (s *walkState) settle() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.settled {
		s.settled = true
		close(s.ch)
	}
}

func (s *walkState) unsettle() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled {
		s.settled = false
		s.ch = make(chan struct{})
	}
}

// pending returns a channel closed once the walk is settled, nil when it
// is now.
func (s *walkState) pending() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled {
		return nil
	}
	return s.ch
}

// errRetired says a held process stopped a request early, past the soft
// memory bound (see retire).
var errRetired = errors.New("walker retired past the soft memory bound")

// walkerProcess is a running walker: a *nix.Walker, or a scripted one in
// tests. It lives until it exits or the context it was started with ends.
type walkerProcess interface {
	Held() bool
	Send(ctx context.Context, req *nix.WalkRequest) error // nil: exit
	Limit(round, k int) error
	Done() <-chan struct{}
	Err() error
	Marked() []string
}

// startWalker starts a walker process (see nix.StartWalker).
type startWalker func(ctx context.Context, spec nix.WalkerSpec, h nix.WalkerHooks) (walkerProcess, error)

// start starts a walker process over queue (chunk mode: the process picks
// its share itself) once a worker slot is free.
func (e *Evaluator) start(ctx context.Context, spec walkSpec, chunkMode bool, queue []Path, fine int, fast bool, s sink) (*proc, error) {
	p := &proc{e: e, spec: spec, done: make(chan struct{}), waits: make(chan struct{}, 1), names: map[string]bool{}}
	ws := nix.WalkerSpec{
		Expr: e.walker, Dir: e.listDir,
		Src: spec.src, Readable: spec.readable, Flake: spec.flake,
		System: spec.system, Config: spec.config, Mode: spec.mode,
		Strict: spec.strict, Write: spec.write,
		Batch: walkBatch, Fine: fine, Fast: fast,
		Hold:   spec.hold != nil,
		Env:    e.env,
		Limits: nix.Limits{Silence: e.opt.AttrTimeout, MaxMemory: e.opt.MaxMemory},
	}
	r := &round{ord: &order{}, sink: s, chunkMode: chunkMode, fine: fine}
	if spec.mode == "walk" {
		r.sink = &ownerSink{sink: s, names: p.names}
	}
	if chunkMode {
		ws.Chunk, ws.Chunks = spec.chunk, spec.chunks
		r.state = spec.state
	} else {
		ws.Paths = rawPaths(queue)
		r.ord.frames = []*frame{{paths: queue}}
	}
	p.cur = r

	if err := p.hold(ctx); err != nil {
		return nil, err
	}
	// Walking from before its first record, so that a walker that is
	// done and sees its list told finds it among the running ones.
	spec.idle.running(p, true)
	// A held process outlives the walk that started it.
	life := ctx
	if spec.hold != nil {
		life = spec.hold
	}
	pctx, cancel := context.WithCancel(life)
	p.cancel = cancel
	stopWithEvaluator := context.AfterFunc(e.closed, cancel)
	w, err := e.startWalker(pctx, ws, nix.WalkerHooks{Records: p.onRecords, Waiting: p.waiting.Load, OnMemory: p.onMemory})
	if err != nil {
		stopWithEvaluator()
		cancel()
		p.unhold()
		spec.idle.running(p, false)
		return nil, err
	}
	p.mu.Lock()
	p.w = w
	p.mu.Unlock()
	r.mu.Lock()
	p.toldList(r, false) // (its first records may have come already)
	r.mu.Unlock()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		<-w.Done()
		stopWithEvaluator()
		cancel()
		e.forgetMemory(p)
		p.unhold()
		close(p.done)
	}()
	return p, nil
}

// rawPaths is paths as the walker protocol has them.
func rawPaths(paths []Path) [][]string {
	out := make([][]string, len(paths))
	for i, p := range paths {
		out[i] = p
	}
	return out
}

// walker returns the process, nil while it is being started.
func (p *proc) walker() walkerProcess {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w
}

// held says whether the process waits for requests after its rounds.
func (p *proc) held() bool {
	w := p.walker()
	return w != nil && w.Held()
}

// hold takes a worker slot for the process; unhold gives it back.
func (p *proc) hold(ctx context.Context) error {
	release, err := p.e.acquire(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		release()
		return nil
	}
	p.holding = true
	return nil
}

func (p *proc) unhold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.holding = false
		<-p.e.slots
	}
}

// onRecords takes a line of the walker's records.
func (p *proc) onRecords(recs []nix.WalkRecord, err error) {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.protoErr != nil || r.reached {
		return
	}
	waiting := false
	if err == nil {
		waiting, err = records(recs, r)
	}
	p.toldList(r, waiting || err != nil)
	if err != nil {
		// Lines that break the protocol: nothing after them can be
		// trusted, and a held process would wait forever.
		r.protoErr = err
		p.cancel()
		return
	}
	if r.reached {
		// Done with its part of a list another walker took the rest of.
		p.cancel()
		return
	}
	if waiting {
		p.waiting.Store(true)
		p.unhold()
		select {
		case p.waits <- struct{}{}:
		default:
		}
	}
}

// toldList settles round r's walk once the process is started and has
// told its list (or is done with the round, or broken): a walker that is
// done and sees the walk settled must find the process able to give part
// of its list away. The caller holds r.mu.
func (p *proc) toldList(r *round, ended bool) {
	if r.state != nil && p.walker() != nil && (len(r.ord.frames) > 0 || ended || r.protoErr != nil || p.waiting.Load()) {
		r.state.settle()
		r.state = nil
	}
}

// wait waits until the process waits for a request (true) or has exited.
func (p *proc) wait() bool {
	select {
	case <-p.waits:
		return true
	case <-p.done:
		// A "w" may have come just before the exit.
		select {
		case <-p.waits:
			return true
		default:
			return false
		}
	}
}

// outcome says how the current round ended in a process that exited: nil
// error when it finished, else where it stopped.
func (p *proc) outcome() (walkOutcome, error) {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reached {
		return r.out, nil
	}
	if r.protoErr != nil {
		return r.out, fmt.Errorf("walk %s: %w", p.spec.system, r.protoErr)
	}
	w := p.walker()
	if w.Err() == nil {
		if w.Held() {
			// A waiting walker exits only when told to.
			return r.out, fmt.Errorf("walk %s: %w", p.spec.system, nix.ErrWalkerExited)
		}
		return r.out, nil
	}
	out := r.out
	out.marked = w.Marked()
	out.culprit = r.ord.next()
	if out.culprit != nil {
		// The first top-level path of a walk is frames[0]; its index says
		// whether the walker was in the leading paths it reports one by one.
		top := r.ord.frames[0].i // past the recursed set the walker is inside, if any
		if len(r.ord.frames) > 1 {
			top--
		}
		out.exact = !r.chunkMode && top < r.fine
		out.remaining = r.ord.rest()
	}
	return out, w.Err()
}

// walkRequest is what a held process is asked (see nix.WalkRequest).
type walkRequest struct {
	Mode    string
	Aliases bool
	Paths   []Path
	Fine    int
	Fast    bool
}

// ask sends a held process a request whose records go to s, and returns
// its round once it is sent: wait and outcome then tell how it went, as for
// a new process. An error means the process is gone (or the context
// ended), and the request was not taken.
func (p *proc) ask(ctx context.Context, req walkRequest, s sink) (*round, error) {
	select {
	case <-p.done:
		return nil, nix.ErrWalkerExited
	default:
	}
	if err := p.hold(ctx); err != nil {
		// The caller gives up on it (its context ended): nobody would
		// ask it anything again.
		p.close()
		return nil, err
	}
	r := &round{ord: &order{frames: []*frame{{paths: req.Paths}}}, sink: s, fine: req.Fine}
	r.out.started = true // the set is imported
	r.out.reused = true
	if req.Mode == "walk" {
		r.sink = &ownerSink{sink: s, names: p.names}
	}
	p.mu.Lock()
	p.cur = r
	p.rounds++
	p.mu.Unlock()
	p.waiting.Store(false)
	if err := p.walker().Send(ctx, &nix.WalkRequest{Mode: req.Mode, Aliases: req.Aliases, Paths: rawPaths(req.Paths), Fine: req.Fine, Fast: req.Fast}); err != nil {
		p.stop()
		return nil, err
	}
	return r, nil
}

// request asks a held process to walk or detail paths into s, and waits for
// its answer. When the process is gone or dies, the error says so, the
// process is done with, and unfinished lists the paths it did not finish.
func (p *proc) request(ctx context.Context, req walkRequest, s sink) (unfinished []Path, err error) {
	r, err := p.ask(ctx, req, s)
	if err != nil {
		return req.Paths, err
	}
	stopOnCancel := context.AfterFunc(ctx, p.cancel)
	parked := p.wait()
	stopOnCancel()
	// Past the soft memory bound, the process stopped early: the rest of
	// the request is unfinished, for a new process.
	retired := p.takeRetired()
	if parked && retired != nil {
		p.close()
		return retired, errRetired
	}
	if parked {
		if r.protoErr == nil {
			return nil, nil
		}
		err = fmt.Errorf("walk %s: %w", p.spec.system, r.protoErr)
	} else {
		_, err = p.outcome()
		if err == nil {
			err = nix.ErrWalkerExited
		}
	}
	p.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if next := r.ord.next(); next != nil {
		unfinished = append([]Path{next}, r.ord.rest()...)
	}
	return append(unfinished, retired...), err
}

// close tells a held process to exit and returns; the process is reaped
// in the background, and killed if it does not exit.
func (p *proc) close() {
	select {
	case <-p.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if p.walker().Send(ctx, nil) != nil {
		cancel()
		p.stop()
		return
	}
	go func() {
		defer cancel()
		select {
		case <-p.done:
		case <-ctx.Done():
			p.stop()
		}
	}()
}

// idlePool holds the waiting processes of one evaluation, and knows its
// running walks. A nil pool holds none.
type idlePool struct {
	mu      sync.Mutex
	procs   []*proc
	walking map[*proc]bool
	walks   []*walkState // one per chunk of the evaluation's walk
}

// running notes that p walks for the evaluation (on) or has stopped.
func (q *idlePool) running(p *proc, on bool) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.walking == nil {
		q.walking = map[*proc]bool{}
	}
	if on {
		q.walking[p] = true
	} else {
		delete(q.walking, p)
	}
}

// walkers returns the processes walking now (a moment's answer). The
// caller asks them questions without q.mu held.
func (q *idlePool) walkers() []*proc {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*proc, 0, len(q.walking))
	for p := range q.walking {
		out = append(out, p)
	}
	return out
}

// minSteal is the fewest top-level attributes worth taking over from a
// running walk (beyond the group it may be evaluating).
const minSteal = 64

// steal takes over the second half of what the running walk with most left
// has not started, and returns it; nil when no walk has enough left. The
// walk ends where the stolen part begins.
func (q *idlePool) steal() []Path {
	if q == nil {
		return nil
	}
	var best *proc
	bestLeft := 0
	for _, p := range q.walkers() {
		if left := p.left(); left > bestLeft {
			best, bestLeft = p, left
		}
	}
	if best == nil || bestLeft < 2*minSteal {
		return nil
	}
	return best.cut()
}

// unsettled returns what to wait on for each chunk walk that is not
// settled now (see walkState): a moment's answer, to be taken before
// looking for a list to take over, so that a walk settled in between is
// not missed.
func (q *idlePool) unsettled() []<-chan struct{} {
	if q == nil {
		return nil
	}
	var out []<-chan struct{}
	for _, w := range q.walks {
		if ch := w.pending(); ch != nil {
			out = append(out, ch)
		}
	}
	return out
}

// left is how many top-level paths the process's current round has
// surely not started, 0 or less when it cannot give any away.
func (p *proc) left() int {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	top, from, ok := p.unstarted(r)
	if !ok {
		return 0
	}
	return len(top.paths) - from
}

// unstarted returns the top-level list of round r and where the paths the
// walker has surely not started begin: past the first group Go has not
// seen, which may be done with the walker on the next already (its line
// still in the pipe). ok is false when the round cannot give paths away.
// The caller holds r.mu.
func (p *proc) unstarted(r *round) (top *frame, from int, ok bool) {
	if !p.held() || len(r.ord.frames) == 0 || r.cut || r.protoErr != nil {
		return nil, 0, false
	}
	top = r.ord.frames[0]
	return top, top.i + 2*walkBatch, true
}

// cut ends the current round of p at a group boundary about half way
// through what it has not started, and returns the paths after: the
// walker stops there (it reads its limits file before each group) and
// waits for a request. A walker that goes on anyway is killed when its
// records go past the end (see records).
func (p *proc) cut() []Path {
	p.mu.Lock()
	r, round := p.cur, p.rounds
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	top, from, ok := p.unstarted(r)
	if !ok {
		return nil
	}
	n := len(top.paths)
	f := min(r.fine, n)
	want := from + (n-from)/2
	k := f + (want-f+walkBatch-1)/walkBatch*walkBatch
	if n-k < minSteal {
		return nil
	}
	return p.cutAt(r, round, k)
}

// cutAt ends round r (number round) of p before the k-th top-level path
// and returns the paths from there. The caller holds r.mu.
func (p *proc) cutAt(r *round, round, k int) []Path {
	if p.walker().Limit(round, k) != nil {
		return nil
	}
	top := r.ord.frames[0]
	stolen := slices.Clone(top.paths[k:])
	top.paths = top.paths[:k:k]
	r.cut = true
	return stolen
}

// softMemory is the resident memory past which a walker hands the rest of
// its list to a new process at its next group, as nix-eval-jobs' workers
// restart past max-memory-size: a walker's memory only grows with what it
// evaluated, and a graceful hand-over loses nothing, where a kill at
// MaxMemory costs the group under way and a process to try the suspect
// alone. The bound is three quarters of the way from base, the memory a
// new walker starts with (the set's import), to max: on a large set whose
// import alone takes most of max, a bound of 3/4 max would retire walkers
// after every group, each new one importing the set again. The quarter
// left is room for the group being walked.
func softMemory(base, max int64) int64 {
	if base >= max {
		return max
	}
	return base + (max-base)/4*3
}

// memSample is a walker's resident memory and when it was measured.
type memSample struct {
	rss int64
	at  time.Time
}

// overBudget records p's memory and says whether the walkers together
// are past the evaluator's memory budget with p the largest of them (the
// one to hand over). Walkers not measured for a second are gone.
func (e *Evaluator) overBudget(p *proc, rss int64) bool {
	budget := e.opt.MemoryBudget
	if budget <= 0 {
		budget = int64(e.opt.Workers) * e.opt.MaxMemory
	}
	if budget <= 0 {
		return false
	}
	now := time.Now()
	e.mem.Lock()
	defer e.mem.Unlock()
	if e.mem.rss == nil {
		e.mem.rss = map[*proc]memSample{}
	}
	e.mem.rss[p] = memSample{rss, now}
	var total, largest int64
	for q, s := range e.mem.rss {
		if now.Sub(s.at) > time.Second {
			delete(e.mem.rss, q)
			continue
		}
		total += s.rss
		largest = max(largest, s.rss)
	}
	return total > budget && rss == largest
}

// forgetMemory drops p's memory from the budget: it has exited.
func (e *Evaluator) forgetMemory(p *proc) {
	e.mem.Lock()
	delete(e.mem.rss, p)
	e.mem.Unlock()
}

// onMemory retires the process when its memory passes the soft bound, or
// the walkers together pass the memory budget and it is the largest.
func (p *proc) onMemory(rss int64) {
	max := p.e.opt.MaxMemory
	if !p.held() || p.retiring.Load() {
		return
	}
	over := p.e.overBudget(p, rss)
	base := p.base.Load()
	if base == 0 {
		if p.walkedGroup() {
			p.base.Store(rss)
		}
		return
	}
	if !over && (max <= 0 || rss <= softMemory(base, max)) {
		return
	}
	if rest := p.retire(); rest != nil {
		p.retiring.Store(true)
		p.mu.Lock()
		p.retired = rest
		p.mu.Unlock()
		p.e.log.Debug().Str("system", p.spec.system).Int64("rss_mib", rss>>20).Int64("base_mib", base>>20).Int("paths", len(rest)).Bool("budget", over).Msg("a walker past the soft memory bound (or the largest past the walkers' budget) hands its list over")
	}
}

// walkedGroup says whether the walker is past the first group of its
// current round.
func (p *proc) walkedGroup() bool {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ord.frames) > 0 && r.ord.frames[0].i >= walkBatch
}

// retire cuts the current round at the first group boundary the walker
// has surely not started, as cut does half way, and returns the paths
// after it; nil when there is nothing to hand over, or the walker has not
// walked a group yet (its memory is the set's import: a new process would
// be no smaller).
func (p *proc) retire() []Path {
	p.mu.Lock()
	r, round := p.cur, p.rounds
	p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ord.frames) == 0 || r.protoErr != nil || r.reached {
		return nil
	}
	top := r.ord.frames[0]
	n := len(top.paths)
	if top.i < walkBatch {
		return nil
	}
	f := min(r.fine, n)
	from := top.i + 2*walkBatch
	k := f + (from-f+walkBatch-1)/walkBatch*walkBatch
	if k >= n {
		return nil
	}
	return p.cutAt(r, round, k)
}

// takeRetired returns the paths a retired process handed over, once.
func (p *proc) takeRetired() []Path {
	p.mu.Lock()
	defer p.mu.Unlock()
	rest := p.retired
	p.retired = nil
	return rest
}

// take returns a waiting process that is still there, nil when none is.
func (q *idlePool) take() *proc {
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.procs) > 0 {
		p := q.procs[len(q.procs)-1]
		q.procs = q.procs[:len(q.procs)-1]
		select {
		case <-p.done:
		default:
			return p
		}
	}
	return nil
}

// put adds a waiting process; a nil pool tells it to exit instead.
func (q *idlePool) put(p *proc) {
	if q == nil {
		p.close()
		return
	}
	q.mu.Lock()
	q.procs = append(q.procs, p)
	q.mu.Unlock()
}

// stop kills the process and waits for it.
func (p *proc) stop() {
	p.cancel()
	<-p.done
}
