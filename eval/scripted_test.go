package eval

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/basinix/basinix/nix"
)

// A scripted walker stands in for nix/expr/walker.nix in tests of the
// evaluator's scheduling (culprits, hand-overs, memory, sessions): it
// speaks the same protocol (records, groups, the fine list, limits,
// requests, how a process dies) over a package set written in Go, in
// microseconds. What the real walker makes of Nix code is tested against
// Nix in the other tests.

// ScriptedAttr is what a scripted walker finds at an attribute.
type ScriptedAttr struct {
	// Children make it a recurseForDerivations set.
	Children map[string]ScriptedAttr
	// Throw: tryEval catches its error (with this message in strict mode).
	Throw string
	// Abort: an error tryEval cannot catch kills the process with this
	// message, which names the attribute (the walker's error context).
	Abort string
	// Fault: the process dies with this text on stderr (the machine's
	// fault, e.g. "database is locked").
	Fault string
	// OnlyWithAliases: it fails as Abort says without aliases and is a
	// derivation with them.
	OnlyWithAliases bool
	// Memory the walker keeps once it evaluated the attribute.
	Memory int64
	// Hang: it never finishes (a loop), until the silence bound.
	Hang bool
	// Gated: it finishes only once a walker of the set was told to stop
	// early (a hand-over), or after 10 s.
	Gated bool
}

// ScriptedSet is a package set for scripted walkers.
type ScriptedSet struct {
	Attrs map[string]ScriptedAttr
	// Broken: the set does not evaluate at all.
	Broken string
	// Import is the memory a walker has once the set is imported.
	Import int64
	// NoPipes: walkers cannot wait for requests.
	NoPipes bool
	// LateList: the walker whose chunk holds this attribute tells its
	// list 300 ms late, as one still importing the set while another
	// walker is done with its chunk.
	LateList string

	started  atomic.Int32
	requests atomic.Int32
	cutOnce  sync.Once
	cut      chan struct{}
}

// Processes is how many walker processes were started on the set.
func (s *ScriptedSet) Processes() int { return int(s.started.Load()) }

// Requests is how many requests held walkers of the set were sent.
func (s *ScriptedSet) Requests() int { return int(s.requests.Load()) }

// DrvPath is the drvPath a scripted walker gives path.
func ScriptedDrv(path Path) string { return "/nix/store/" + path.String() + ".drv" }

// UseScripted makes e's walkers scripted ones over set.
func UseScripted(e *Evaluator, set *ScriptedSet) {
	set.cut = make(chan struct{})
	e.startWalker = func(ctx context.Context, spec nix.WalkerSpec, h nix.WalkerHooks) (walkerProcess, error) {
		set.started.Add(1)
		w := &scripted{set: set, spec: spec, h: h, done: make(chan struct{}), reqs: make(chan *nix.WalkRequest), forced: map[string]bool{}, limit: [2]int{-1, 0}}
		go w.run(ctx)
		return w, nil
	}
}

// scripted is one scripted walker process.
type scripted struct {
	set  *ScriptedSet
	spec nix.WalkerSpec
	h    nix.WalkerHooks
	done chan struct{}
	reqs chan *nix.WalkRequest

	mu    sync.Mutex
	limit [2]int // round, index: the limits file

	rss    int64
	forced map[string]bool // the attributes whose memory it keeps
	err    error
	marked []string
}

// death ends a walker process.
type death struct {
	err    *nix.Error
	marked []string
}

func (w *scripted) Held() bool            { return w.spec.Hold && !w.set.NoPipes }
func (w *scripted) Done() <-chan struct{} { return w.done }
func (w *scripted) Err() error            { return w.err }
func (w *scripted) Marked() []string      { return w.marked }

func (w *scripted) Limit(round, k int) error {
	w.mu.Lock()
	w.limit = [2]int{round, k}
	w.mu.Unlock()
	w.set.cutOnce.Do(func() { close(w.set.cut) })
	return nil
}

func (w *scripted) Send(ctx context.Context, req *nix.WalkRequest) error {
	if !w.Held() {
		return nix.ErrWalkerExited
	}
	select {
	case w.reqs <- req:
		w.set.requests.Add(1)
		return nil
	case <-w.done:
		return nix.ErrWalkerExited
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *scripted) run(ctx context.Context) {
	defer close(w.done)
	err := w.walkAll(ctx)
	var d *death
	switch {
	case err == nil:
		return
	case ctx.Err() != nil:
		w.err = fmt.Errorf("nix-instantiate: %w", ctx.Err())
	case asDeath(err, &d):
		w.err, w.marked = d.err, d.marked
	default:
		w.err = err
	}
}

func asDeath(err error, d **death) bool {
	if x, ok := err.(*death); ok {
		*d = x
		return true
	}
	return false
}

func (d *death) Error() string { return d.err.Error() }

func (w *scripted) dies(msg string, kill nix.Kill, marked []string) error {
	return &death{err: &nix.Error{Op: "nix-instantiate", Message: msg, ExitCode: 1, Kill: kill, Stderr: "error: " + msg}, marked: marked}
}

func (w *scripted) line(recs ...nix.WalkRecord) { w.h.Records(recs, nil) }

// walkAll is walker.nix's body: the walk, then the requests when held.
func (w *scripted) walkAll(ctx context.Context) error {
	if w.set.Broken != "" {
		return w.dies(w.set.Broken, nix.KillNone, nil)
	}
	w.rss = w.set.Import
	aliases := strings.Contains(w.spec.Config, "allowAliases = true")
	var paths [][]string
	if w.spec.Chunks > 0 {
		names := w.chunkNames()
		if w.set.LateList != "" && slices.Contains(names, w.set.LateList) {
			select {
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		w.line(nix.WalkRecord{Kind: nix.RecordImported, Names: names})
		for _, n := range names {
			paths = append(paths, []string{n})
		}
	} else {
		w.line(nix.WalkRecord{Kind: nix.RecordImported})
		paths = w.spec.Paths
	}
	if err := w.steps(ctx, 0, w.spec.Mode, aliases, w.spec.Fine, paths); err != nil {
		return err
	}
	if !w.Held() {
		return nil
	}
	for round := 1; ; round++ {
		w.line(nix.WalkRecord{Kind: nix.RecordWaiting})
		var req *nix.WalkRequest
		select {
		case req = <-w.reqs:
		case <-ctx.Done():
			return ctx.Err()
		}
		if req == nil {
			return nil
		}
		if err := w.steps(ctx, round, req.Mode, req.Aliases, req.Fine, req.Paths); err != nil {
			return err
		}
	}
}

// chunkNames are the top-level names of the process's chunk, sorted.
func (w *scripted) chunkNames() []string {
	var names []string
	for n := range w.set.Attrs {
		h := fnv.New32a()
		h.Write([]byte(n))
		if int(h.Sum32()%uint32(w.spec.Chunks)) == w.spec.Chunk {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// steps walks paths: the first fine one by one, the rest in groups of
// Batch, each group one line, stopping before a group the limits file
// cuts off.
func (w *scripted) steps(ctx context.Context, round int, mode string, aliases bool, fine int, paths [][]string) error {
	f := min(fine, len(paths))
	for _, p := range paths[:f] {
		if err := w.walk(ctx, mode, aliases, p, func(r nix.WalkRecord) { w.line(r) }); err != nil {
			return err
		}
	}
	for start := f; start < len(paths); start += w.spec.Batch {
		w.mu.Lock()
		stop := w.limit[0] == round && start >= w.limit[1]
		w.mu.Unlock()
		if stop {
			return nil
		}
		var group []nix.WalkRecord
		for _, p := range paths[start:min(start+w.spec.Batch, len(paths))] {
			if err := w.walk(ctx, mode, aliases, p, func(r nix.WalkRecord) { group = append(group, r) }); err != nil {
				return err
			}
		}
		w.line(group...)
	}
	return nil
}

// walk gives the records of path, and of its children for a set.
func (w *scripted) walk(ctx context.Context, mode string, aliases bool, path []string, emit func(nix.WalkRecord)) error {
	a, ok := w.find(path)
	if !ok {
		return w.dies(fmt.Sprintf("attribute '%s' missing", path[len(path)-1]), nix.KillNone, path)
	}
	if err := w.force(ctx, a, aliases, path); err != nil {
		return err
	}
	if mode == "details" {
		name := Path(path).String()
		emit(nix.WalkRecord{Kind: nix.RecordDetails, Path: path, Details: &nix.WalkDetails{Name: &name, Sup: true, Out: map[string]*string{"out": &name}}})
		return nil
	}
	switch {
	case a.Children != nil:
		names := make([]string, 0, len(a.Children))
		for n := range a.Children {
			names = append(names, n)
		}
		sort.Strings(names)
		emit(nix.WalkRecord{Kind: nix.RecordRecurse, Path: path, Names: names})
		for _, n := range names {
			if err := w.walk(ctx, mode, aliases, append(path[:len(path):len(path)], n), emit); err != nil {
				return err
			}
		}
	case a.Throw != "" && w.spec.Strict:
		return w.dies(a.Throw, nix.KillNone, path)
	case a.Throw != "":
		emit(nix.WalkRecord{Kind: nix.RecordThrow, Path: path})
	default:
		emit(nix.WalkRecord{Kind: nix.RecordDrv, Path: path, DrvPath: ScriptedDrv(path), OutPath: "/nix/store/" + Path(path).String()})
	}
	return nil
}

// force evaluates a's value: the memory it keeps, and how it may kill the
// process.
func (w *scripted) force(ctx context.Context, a ScriptedAttr, aliases bool, path []string) error {
	if a.Gated {
		select {
		case <-w.set.cut:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
	if a.Hang {
		if w.spec.Limits.Silence <= 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-time.After(w.spec.Limits.Silence):
			return w.dies(fmt.Sprintf("killed after %s without progress (time limit)", w.spec.Limits.Silence), nix.KillSilence, nil)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if key := Path(path).String(); !w.forced[key] {
		w.forced[key] = true
		w.rss += a.Memory
	}
	if w.h.OnMemory != nil {
		w.h.OnMemory(w.rss)
	}
	if max := w.spec.Limits.MaxMemory; max > 0 && w.rss > max {
		return w.dies(fmt.Sprintf("killed for using more than the memory limit of %d MiB", max>>20), nix.KillMemory, nil)
	}
	switch {
	case a.Fault != "":
		return &death{err: &nix.Error{Op: "nix-instantiate", Message: a.Fault, ExitCode: 1, Stderr: "error: " + a.Fault}}
	case a.Abort != "" && !(a.OnlyWithAliases && aliases):
		return w.dies(a.Abort, nix.KillNone, path)
	}
	return nil
}

// find returns the attribute at path.
func (w *scripted) find(path []string) (ScriptedAttr, bool) {
	attrs := w.set.Attrs
	var a ScriptedAttr
	for _, n := range path {
		var ok bool
		if a, ok = attrs[n]; !ok {
			return a, false
		}
		attrs = a.Children
	}
	return a, true
}
