package build

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Ticket gathers the outcomes of one Submit. Its methods are safe for
// concurrent use.
type Ticket struct {
	pool *Pool

	mu       sync.Mutex
	wants    map[string]Want
	outcomes map[string]*Outcome // guarded by mu
	building map[string]bool     // handed to a machine, not finished; guarded by mu
	done     chan struct{}       // closed when every want has an outcome
	changed  chan struct{}       // capacity 1: something happened
}

func newTicket(p *Pool, wants map[string]Want) *Ticket {
	t := &Ticket{pool: p, wants: wants, outcomes: map[string]*Outcome{}, building: map[string]bool{},
		done: make(chan struct{}), changed: make(chan struct{}, 1)}
	if len(wants) == 0 {
		close(t.done)
	}
	return t
}

func (t *Ticket) deliver(o *Outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.outcomes[o.Drv]; ok {
		return
	}
	t.outcomes[o.Drv] = o
	delete(t.building, o.Drv)
	t.notifyLocked()
	if len(t.outcomes) == len(t.wants) {
		close(t.done)
	}
}

func (t *Ticket) setBuilding(drv string, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.outcomes[drv]; ok {
		return
	}
	if on {
		t.building[drv] = true
	} else {
		delete(t.building, drv)
	}
	t.notifyLocked()
}

func (t *Ticket) notifyLocked() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Done is closed when every wanted derivation has its outcome.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Changed receives a value after progress was made (coalesced).
func (t *Ticket) Changed() <-chan struct{} { return t.changed }

// Progress counts a ticket's derivations.
type Progress struct {
	Total    int
	Done     int // with an outcome, of which
	Failed   int // failed, dependency-failed or timed out
	Cached   int // known before
	Building int // handed to a machine
	// Running are the derivations Nix is building now (a batch is handed
	// to Nix whole; it starts each when its inputs are there), sorted:
	// their output can be followed live.
	Running []string
	// Left estimates the building left before every derivation has its
	// outcome, if the pool's slots were the ticket's: the critical path of
	// what is left (the longest chain of wanted derivations each needing
	// the one before), or all of it spread over the slots, whichever is
	// longer (from the wants' estimates; 0 when none has one).
	Left time.Duration
}

// Progress returns the ticket's counts now.
func (t *Ticket) Progress() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := Progress{Total: len(t.wants), Done: len(t.outcomes), Building: len(t.building)}
	for drv := range t.building {
		if t.pool.running(drv) {
			p.Running = append(p.Running, drv)
		}
	}
	sort.Strings(p.Running)
	for _, o := range t.outcomes {
		if o.Result.Failed() {
			p.Failed++
		}
		if o.Cached {
			p.Cached++
		}
	}
	left := map[string]time.Duration{}
	var work time.Duration
	for drv, w := range t.wants {
		if _, done := t.outcomes[drv]; !done && w.Est > 0 {
			left[drv] = w.Est
			work += w.Est
		}
	}
	if slots := t.pool.slots(); slots > 0 && len(left) > 0 {
		p.Left = max(t.pool.criticalPath(left), work/time.Duration(slots))
	}
	return p
}

// maxPathWants bounds the wants whose closures criticalPath reads: past
// it (a mass rebuild), the longest single build stands for the path.
const maxPathWants = 500

// criticalPath is the longest chain among the derivations left (their
// estimates), each needing the one before in its closure: no amount of
// slots builds them sooner.
func (p *Pool) criticalPath(left map[string]time.Duration) time.Duration {
	var longest time.Duration
	if len(left) > maxPathWants {
		for _, est := range left {
			longest = max(longest, est)
		}
		return longest
	}
	memo := map[string]time.Duration{}
	var path func(drv string) time.Duration
	path = func(drv string) time.Duration {
		if v, ok := memo[drv]; ok {
			return v
		}
		memo[drv] = left[drv] // a cycle (none in Nix) ends here
		var before time.Duration
		for _, in := range p.drvs.closure(drv) {
			if _, wanted := left[in]; wanted {
				before = max(before, path(in))
			}
		}
		memo[drv] = before + left[drv]
		return memo[drv]
	}
	for drv := range left {
		longest = max(longest, path(drv))
	}
	return longest
}

// Outcomes returns the outcomes so far, by derivation.
func (t *Ticket) Outcomes() map[string]Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Outcome, len(t.outcomes))
	for k, o := range t.outcomes {
		out[k] = *o
	}
	return out
}

// Wait returns every outcome once all are there. When ctx ends first, the
// ticket is cancelled and ctx's error returned.
func (t *Ticket) Wait(ctx context.Context) (map[string]Outcome, error) {
	select {
	case <-t.done:
		return t.Outcomes(), nil
	case <-ctx.Done():
		t.Cancel()
		return t.Outcomes(), ctx.Err()
	}
}

// Cancel withdraws the ticket's interest: derivations nobody else wants are
// not built, or stop building, and every missing outcome becomes Cancelled.
func (t *Ticket) Cancel() {
	t.mu.Lock()
	var open []string
	for drv := range t.wants {
		if _, ok := t.outcomes[drv]; !ok {
			open = append(open, drv)
		}
	}
	t.mu.Unlock()
	t.pool.withdraw(t, open)
	for _, drv := range open {
		t.deliver(&Outcome{Drv: drv, Result: Cancelled, Message: "withdrawn", transient: true})
	}
}
