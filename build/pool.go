package build

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/nix"
)

// Nix is what the pool needs of Nix.
type Nix interface {
	Realise(ctx context.Context, cmd nix.RealiseCmd) (*nix.Realised, error)
	InvalidPaths(ctx context.Context, paths []string) ([]string, error)
	ReadLog(ctx context.Context, drv string, max int) ([]byte, error)
}

// Results is where the pool remembers results by derivation.
type Results interface {
	// Results returns the known results of drvs; unknown ones are absent.
	Results(ctx context.Context, drvs []string) (map[string]*Outcome, error)
	PutResults(ctx context.Context, outs []*Outcome) error
}

// Options configure a Pool.
type Options struct {
	// Local is the local machine; MaxJobs 0 builds only on Machines.
	Local Machine
	// Cores is each local build's --cores (0: Nix's default).
	Cores int
	// Machines are the remote builders.
	Machines []*Machine
	// SSHOptions are given to Nix as NIX_SSHOPTS for remote builds.
	SSHOptions string
	// BuildTimeout and MaxSilentTime bound each derivation's build.
	BuildTimeout, MaxSilentTime time.Duration
	// BatchSize is the most derivations one Nix process is given.
	BatchSize int
	// LogDir is where build logs are kept, LogMaxBytes of each.
	LogDir      string
	LogMaxBytes int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Cgroups, when set, limits local builds: each local build slot (of
	// Local.MaxJobs) is a Nix process of its own, in a group of its own
	// with JobMemoryMiB and JobCPUs (0: no limit of that kind). A build the kernel kills
	// for the group's memory is a failure "out of memory (limit N MiB)",
	// remembered only with RememberOOM (more memory may build it).
	// Short, when set, says what this machine is short of (Pressure.Short):
	// while it says something, no local build starts (remote machines
	// still build), checked again every few seconds.
	Short        func() string
	Cgroups      *nix.Cgroups
	JobMemoryMiB int
	JobCPUs      float64
	// FeatureLimits are the per-build limits of builds that require a
	// system feature (big-parallel: more), over the defaults.
	FeatureLimits map[string]JobLimits
	RememberOOM   bool
}

// Want asks for one derivation.
type Want struct {
	Drv string
	// Priority: higher is built first.
	Priority int
	// Force builds it again when its failure (or a failure in its closure)
	// is remembered; a remembered success still holds.
	Force bool
	// Est is how long it is expected to build (from recorded builds of
	// the same package); 0: not known. Progress.Left adds them up.
	Est time.Duration
	// MemoryMiB is what it is known to need (an earlier build ran out of
	// memory); 0: not known. It goes to a machine with at least that much
	// (when machines' sizes are known), in a cgroup that gives it.
	MemoryMiB int
}

// Pool builds derivations. Every derivation is built at most once at a
// time, whatever the number of tickets that want it; results are
// remembered in Results, and a remembered result is given without building
// unless the want forces it.
type Pool struct {
	opt      Options
	nix      Nix
	results  Results
	log      zerolog.Logger
	drvs     *drvCache
	machines []*machine
	wake     chan struct{}
	live     *liveLogs

	mu      sync.Mutex
	jobs    map[string]*job // queued and running, by drv; guarded by mu
	seq     uint64          // guarded by mu
	short   string          // what the machine was short of at the last schedule; guarded by mu
	stopped bool            // guarded by mu
}

// job is one derivation to build and the tickets waiting for it.
type job struct {
	drv     *nix.Derivation
	prio    int
	seq     uint64 // submission order, among equal priorities
	force   bool
	needMiB int // what its build needs in memory (Want.MemoryMiB)
	tickets map[*Ticket]struct{}
	batch   *batch // nil while queued
}

// New returns a Pool; it builds nothing before Run.
func New(opt Options, n Nix, results Results, log zerolog.Logger) (*Pool, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 256
	}
	if opt.LogMaxBytes <= 0 {
		opt.LogMaxBytes = 4 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.LogDir == "" {
		return nil, fmt.Errorf("build pool: no log directory")
	}
	if err := os.MkdirAll(opt.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("build pool: %w", err)
	}
	local := opt.Local
	local.URI = ""
	if local.SpeedFactor == 0 {
		local.SpeedFactor = 1
	}
	p := &Pool{opt: opt, nix: n, results: results, log: log, drvs: newDrvCache(),
		wake: make(chan struct{}, 1), jobs: map[string]*job{}, live: &liveLogs{logs: map[string]*liveLog{}}}
	if opt.limited() && local.MaxJobs > 1 {
		// With limits, each local build slot is a Nix process of its own
		// (-j1) in a cgroup of its own: a build cannot take the memory of
		// the one beside it, and an OOM kill names its slot's builds.
		for range local.MaxJobs {
			slot := local
			slot.MaxJobs = 1
			p.machines = append(p.machines, &machine{Machine: &slot})
		}
	} else {
		p.machines = append(p.machines, &machine{Machine: &local})
	}
	for _, m := range opt.Machines {
		p.machines = append(p.machines, &machine{Machine: m})
	}
	return p, nil
}

// Stats counts the derivations the pool has queued and handed to machines.
type Stats struct{ Queued, Running int }

// Stats returns the pool's counts now.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s Stats
	for _, j := range p.jobs {
		if j.batch == nil {
			s.Queued++
		} else {
			s.Running++
		}
	}
	return s
}

func (p *Pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run schedules builds until ctx ends; then it stops the running builds,
// gives every waiting ticket Cancelled outcomes and returns nil.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		for _, b := range p.schedule() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.runBatch(ctx, b)
			}()
		}
		select {
		case <-ctx.Done():
			p.stop()
			return nil
		case <-p.wake:
		case <-tick.C: // machines come back from their backoff
		}
	}
}

// stop cancels every queued job; running batches end with the context.
func (p *Pool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for drv, j := range p.jobs {
		if j.batch == nil {
			p.deliverLocked(j, &Outcome{Drv: drv, Result: Cancelled, Message: "the build pool stopped", transient: true})
		}
	}
}

// Submit asks for wants and returns the ticket that gathers their
// outcomes. Remembered results are given at once; derivations in the
// queue or being built are shared with the tickets already waiting.
func (p *Pool) Submit(ctx context.Context, wants []Want) (*Ticket, error) {
	byDrv := map[string]Want{}
	for _, w := range wants {
		if err := nix.CheckDrvPath(w.Drv); err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		if o, ok := byDrv[w.Drv]; ok {
			w.Priority = max(w.Priority, o.Priority)
			w.Force = w.Force || o.Force
		}
		byDrv[w.Drv] = w
	}
	t := newTicket(p, byDrv)
	ready, err := p.known(ctx, byDrv)
	if err != nil {
		return nil, err
	}
	for _, o := range ready {
		t.deliver(o)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		for drv := range byDrv {
			t.deliver(&Outcome{Drv: drv, Result: Cancelled, Message: "the build pool stopped", transient: true})
		}
		return t, nil
	}
	for drv, w := range byDrv {
		if _, ok := ready[drv]; ok {
			continue
		}
		j := p.jobs[drv]
		if j == nil {
			p.seq++
			j = &job{drv: p.drvs.get(drv), prio: w.Priority, seq: p.seq, tickets: map[*Ticket]struct{}{}}
			p.jobs[drv] = j
		}
		j.prio = max(j.prio, w.Priority)
		j.force = j.force || w.Force
		j.needMiB = max(j.needMiB, w.MemoryMiB)
		j.tickets[t] = struct{}{}
		if j.batch != nil {
			t.setBuilding(drv, true)
		}
	}
	p.poke()
	return t, nil
}

// known returns the outcomes decided without building: remembered results
// (for a forced want, only a remembered success), dependency failures on a
// remembered failure in the closure (not for forced wants), and
// derivations that cannot be read. Derived dependency failures are
// remembered too. A derivation with a remembered result is not read, so it
// need not be in the store any more.
func (p *Pool) known(ctx context.Context, wants map[string]Want) (map[string]*Outcome, error) {
	drvs := make([]string, 0, len(wants))
	for drv := range wants {
		drvs = append(drvs, drv)
	}
	out, err := p.Lookup(ctx, drvs)
	if err != nil {
		return nil, err
	}
	closures := map[string][]string{}
	var all []string
	for drv, w := range wants {
		if o := out[drv]; o != nil && (!w.Force || o.Result == Success) {
			continue
		}
		delete(out, drv)
		if _, err := p.drvs.read(drv); err != nil {
			out[drv] = &Outcome{Drv: drv, Result: Failure, Message: err.Error(), transient: true}
			continue
		}
		if !w.Force {
			c := p.drvs.closure(drv)
			closures[drv] = c
			all = append(all, c...)
		}
	}
	if len(all) == 0 {
		return out, nil
	}
	stored, err := p.results.Results(ctx, dedupe(all))
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	var derived []*Outcome
	for drv, c := range closures {
		if dep := nearestFailed(c, stored); dep != "" {
			o := &Outcome{Drv: drv, Result: DependencyFailed, FailedDep: dep, Cached: true,
				Message: fmt.Sprintf("dependency %s failed before (%s)", dep, stored[dep].Result)}
			out[drv] = o
			derived = append(derived, o)
		}
	}
	if err := p.results.PutResults(ctx, derived); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	return out, nil
}

// Lookup returns the remembered results of drvs that still hold, marked
// Cached; the others are absent.
func (p *Pool) Lookup(ctx context.Context, drvs []string) (map[string]*Outcome, error) {
	stored, err := p.results.Results(ctx, drvs)
	if err != nil {
		return nil, fmt.Errorf("build results: %w", err)
	}
	var deps []string
	for _, o := range stored {
		if o.Result == DependencyFailed && o.FailedDep != "" {
			if _, ok := stored[o.FailedDep]; !ok {
				deps = append(deps, o.FailedDep)
			}
		}
	}
	if len(deps) > 0 {
		more, err := p.results.Results(ctx, dedupe(deps))
		if err != nil {
			return nil, fmt.Errorf("build results: %w", err)
		}
		for k, v := range more {
			stored[k] = v
		}
	}
	out := map[string]*Outcome{}
	for _, drv := range drvs {
		if o := stored[drv]; o != nil && stillValid(o, stored) {
			c := *o
			c.Cached = true
			out[drv] = &c
		}
	}
	return out, nil
}

// stillValid reports whether a remembered outcome still holds: a dependency
// failure holds while the dependency it names is remembered as failed (a
// forced rebuild may have fixed it since).
func stillValid(o *Outcome, stored map[string]*Outcome) bool {
	if o.Result != DependencyFailed || o.FailedDep == "" {
		return true
	}
	dep := stored[o.FailedDep]
	return dep != nil && dep.Result.Failed()
}

// nearestFailed returns the first derivation of closure (nearest first)
// whose own build is remembered as failed or timed out.
func nearestFailed(closure []string, results map[string]*Outcome) string {
	for _, d := range closure {
		if o := results[d]; o != nil && (o.Result == Failure || o.Result == Timeout) {
			return d
		}
	}
	return ""
}

// schedule hands queued jobs, highest priority first, to idle machines
// that can build them, and returns the batches to start. A machine with
// fewer jobs per slot and more speed is preferred.
func (p *Pool) schedule() []*batch {
	short := ""
	if p.opt.Short != nil {
		short = p.opt.Short()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	if short != p.short {
		if short != "" {
			p.log.Warn().Str("short", short).Msg("the machine is short: local builds wait")
		} else {
			p.log.Info().Msg("the machine is not short any more: local builds start again")
		}
		p.short = short
	}
	now := p.opt.Now()
	var queued []*job
	for _, j := range p.jobs {
		if j.batch == nil {
			queued = append(queued, j)
		}
	}
	sort.Slice(queued, func(a, b int) bool {
		if queued[a].prio != queued[b].prio {
			return queued[a].prio > queued[b].prio
		}
		return queued[a].seq < queued[b].seq
	})
	batches := map[*machine]*batch{}
	var order []*batch
	for _, j := range queued {
		var best *machine
		var bestLoad float64
		possible := false
		// A build known to need more memory than a machine has does not go
		// there, unless no machine has enough: then the biggest gets it.
		fits := func(m *machine) bool { return j.needMiB == 0 || m.MemoryMiB == 0 || m.MemoryMiB >= j.needMiB }
		someFit := slices.ContainsFunc(p.machines, func(m *machine) bool { return m.CanBuild(j.drv.System, j.drv.Features) && fits(m) })
		for _, m := range p.machines {
			if !m.CanBuild(j.drv.System, j.drv.Features) {
				continue
			}
			possible = true
			b := batches[m]
			if !m.upLocked(now) || m.busy && b == nil || b != nil && len(b.jobs) >= p.opt.BatchSize || m.URI == "" && short != "" ||
				someFit && !fits(m) {
				continue
			}
			load := 0.0
			if b != nil {
				load = float64(len(b.jobs)) / float64(m.MaxJobs)
			}
			load /= m.SpeedFactor
			if best == nil || bigger(j, m, best) || !bigger(j, best, m) && (load < bestLoad || load == bestLoad && m.SpeedFactor > best.SpeedFactor) {
				best, bestLoad = m, load
			}
		}
		if !possible {
			// Not the derivation's fault: not built, and not remembered.
			p.deliverLocked(j, &Outcome{Drv: j.drv.Path, Result: Cancelled, transient: true,
				Message: fmt.Sprintf("no machine builds %s with features %v", j.drv.System, j.drv.Features)})
			continue
		}
		if best == nil {
			continue // its machines are busy or down: it waits
		}
		b := batches[best]
		if b == nil {
			b = &batch{m: best}
			batches[best] = b
			order = append(order, b)
			best.busy = true
		}
		b.jobs = append(b.jobs, j)
		j.batch = b
		for t := range j.tickets {
			t.setBuilding(j.drv.Path, true)
		}
	}
	return order
}

// deliverLocked gives o to every ticket of j and forgets j.
func (p *Pool) deliverLocked(j *job, o *Outcome) {
	for t := range j.tickets {
		t.deliver(o)
	}
	delete(p.jobs, j.drv.Path)
}

// withdraw removes t's interest in its derivations; a queued job nobody
// wants any more is dropped, and a running batch nobody wants is stopped.
func (p *Pool) withdraw(t *Ticket, drvs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, drv := range drvs {
		j := p.jobs[drv]
		if j == nil {
			continue
		}
		delete(j.tickets, t)
		if len(j.tickets) > 0 {
			continue
		}
		if j.batch == nil {
			delete(p.jobs, drv)
			continue
		}
		if !j.batch.wantedLocked() {
			j.batch.cancel()
		}
	}
}

func dedupe(l []string) []string {
	seen := make(map[string]struct{}, len(l))
	out := l[:0:0]
	for _, s := range l {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// slots is how many builds the pool's machines run at once.
func (p *Pool) slots() int {
	n := 0
	for _, m := range p.machines {
		n += max(m.MaxJobs, 0)
	}
	return n
}

// bigger says whether machine a suits job j better than b by its size: a
// build known to need much memory goes where there is more, a
// big-parallel one where there are more cores. Otherwise load decides.
func bigger(j *job, a, b *machine) bool {
	if j.needMiB > 0 && a.MemoryMiB != b.MemoryMiB {
		return a.MemoryMiB > b.MemoryMiB
	}
	if slices.Contains(j.drv.Features, "big-parallel") && a.Cores != b.Cores {
		return a.Cores > b.Cores
	}
	return false
}

// JobLimits are one build's share of a cgroup (0: the default's).
type JobLimits struct {
	MemoryMiB int
	CPUs      float64
}

// limited says whether local builds run in cgroups with limits.
func (o *Options) limited() bool {
	return o.Cgroups != nil && (o.JobMemoryMiB > 0 || o.JobCPUs > 0)
}
