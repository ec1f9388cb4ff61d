package build

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/nix"
)

// batch is the derivations one Nix process builds on one machine.
type batch struct {
	m    *machine
	jobs []*job
	// oomLimitMiB is set when the kernel killed a build of the batch for
	// its cgroup's memory limit (that many MiB).
	oomLimitMiB int

	cancelOnce sync.Once
	cancelFn   context.CancelFunc // set before the batch starts
}

func (b *batch) cancel() { b.cancelOnce.Do(func() { b.cancelFn() }) }

// wantedLocked reports whether some ticket still waits for a job of b.
func (b *batch) wantedLocked() bool {
	for _, j := range b.jobs {
		if len(j.tickets) > 0 {
			return true
		}
	}
	return false
}

// runBatch builds b and delivers its outcomes, or puts its jobs back in the
// queue when its machine could not be reached.
func (p *Pool) runBatch(ctx context.Context, b *batch) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	b.cancelFn = cancel
	if !b.wantedLocked() { // withdrawn between schedule and now
		cancel()
	}
	p.mu.Unlock()

	drvs := make([]string, len(b.jobs))
	for i, j := range b.jobs {
		drvs[i] = j.drv.Path
	}
	cmd := nix.RealiseCmd{
		Drvs:      drvs,
		MaxJobs:   b.m.MaxJobs,
		Cores:     p.opt.Cores,
		Timeout:   p.opt.BuildTimeout,
		MaxSilent: p.opt.MaxSilentTime,
	}
	if b.m.URI != "" {
		cmd.MaxJobs = 0
		cmd.Builders = b.m.Line()
		cmd.SSHOptions = p.opt.SSHOptions
	}
	cmd.OnLog, cmd.OnStart, cmd.OnEnd = p.live.line, p.buildStarted, p.buildEnded
	log := p.log.With().Str("machine", b.m.Name()).Int("drvs", len(drvs)).Logger()
	group := p.cgroup(b, log)
	if group != nil {
		cmd.Cgroup = group.Procs
	}
	log.Info().Msg("build batch started")
	start := p.opt.Now()
	r, err := p.nix.Realise(bctx, cmd)
	realised := p.opt.Now()
	if group != nil {
		if group.OOMKills() > 0 && group.MemoryMiB > 0 {
			b.oomLimitMiB = group.MemoryMiB
		}
		if err := group.Remove(); err != nil {
			log.Debug().Err(err).Msg("removing the batch's cgroup")
		}
	}
	if r == nil { // Nix did not start
		r = &nix.Realised{Builds: map[string]*nix.Build{}, Failures: map[string]*nix.Failure{}}
	}

	if b.m.URI != "" && unreachable(r, b.m.URI) { // nothing was built: nothing live
		p.mu.Lock()
		backoff := b.m.markDownLocked(p.opt.Now())
		b.m.busy = false
		for _, j := range b.jobs {
			j.batch = nil
			for t := range j.tickets {
				t.setBuilding(j.drv.Path, false)
			}
		}
		p.mu.Unlock()
		log.Warn().Dur("backoff", backoff).Strs("errors", r.Errors).Msg("machine unreachable: marked down, its builds go elsewhere")
		p.poke()
		return
	}

	outs, decideErr := p.decide(ctx, bctx, b, r, err)
	// The logs are kept now: the live output goes, before anyone is told
	// the build ended.
	built := make([]string, 0, len(r.Builds))
	for drv := range r.Builds {
		built = append(built, drv)
	}
	p.live.drop(built)
	if decideErr != nil {
		log.Error().Err(decideErr).Msg("deciding build results")
	}
	var keep []*Outcome
	for _, o := range outs {
		if !o.transient {
			keep = append(keep, o)
		}
	}
	if err := p.results.PutResults(context.WithoutCancel(ctx), keep); err != nil {
		log.Error().Err(err).Msg("remembering build results")
	}

	p.mu.Lock()
	b.m.busy = false
	if b.m.URI != "" && len(r.Builds) > 0 {
		b.m.backoff = 0
	}
	for _, j := range b.jobs {
		o := outs[j.drv.Path]
		if o == nil {
			o = &Outcome{Drv: j.drv.Path, Result: Cancelled, transient: true}
		}
		p.deliverLocked(j, o)
	}
	p.mu.Unlock()
	log.Info().Dur("took", p.opt.Now().Sub(start)).Dur("nix", realised.Sub(start)).Int("built", len(r.Builds)).Int("failed", len(r.Failures)).Msg("build batch done")
	p.poke()
}

// batchGroups numbers the batches' cgroups (with the process id: several
// basinix may share the hierarchy).
var batchGroups atomic.Uint64

// cgroup makes the group a local slot's batch runs in; nil for a remote
// batch, without limits, or when the group cannot be made (logged: the
// batch runs without). A slot builds one derivation at a time (with
// limits, the local machine is MaxJobs slots of one), so the group has
// the largest share its builds need: a feature class's (big-parallel
// gets more) or the default, and what a build is known to need.
func (p *Pool) cgroup(b *batch, log zerolog.Logger) *nix.Cgroup {
	if b.m.URI != "" || !p.opt.limited() {
		return nil
	}
	name := fmt.Sprintf("batch-%d-%d", os.Getpid(), batchGroups.Add(1))
	mem, cpu := p.opt.JobMemoryMiB, p.opt.JobCPUs
	for _, j := range b.jobs {
		for _, f := range j.drv.Features {
			if l, ok := p.opt.FeatureLimits[f]; ok {
				mem, cpu = max(mem, l.MemoryMiB), max(cpu, l.CPUs)
			}
		}
		if mem > 0 {
			mem = max(mem, j.needMiB)
		}
	}
	if mem > 0 && b.m.MemoryMiB > 0 {
		mem = min(mem, b.m.MemoryMiB) // the machine's, at most
	}
	g, err := p.opt.Cgroups.Group(name, mem, cpu)
	if err != nil {
		log.Warn().Err(err).Msg("no cgroup for the batch: it builds without limits")
		return nil
	}
	return g
}

// buildStarted and buildEnded note that Nix started building drv, or said
// it ended, and tell the tickets that wait for it: their progress names
// what runs now.
func (p *Pool) buildStarted(drv string) { p.live.start(drv); p.touch(drv) }
func (p *Pool) buildEnded(drv string)   { p.live.end(drv); p.touch(drv) }

// running reports whether Nix is building drv now, as far as it can be
// known: it started, Nix did not say it ended, and its outputs are not in
// the store yet. (Nix 2.8 with --keep-going says a build ended, failed or
// not, only when the whole run ends: a failed build looks running until
// then.)
func (p *Pool) running(drv string) bool {
	if !p.live.running(drv) {
		return false
	}
	d := p.drvs.get(drv)
	for _, out := range d.Outputs {
		if _, err := os.Lstat(out); out != "" && err == nil {
			p.live.end(drv)
			return false
		}
	}
	return true
}

func (p *Pool) touch(drv string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j := p.jobs[drv]; j != nil {
		for t := range j.tickets {
			t.setBuilding(drv, true)
		}
	}
}

// unreachable reports whether Nix could not connect to the machine at uri
// and so built nothing there.
func unreachable(r *nix.Realised, uri string) bool {
	if len(r.Builds) > 0 {
		return false
	}
	for _, u := range r.Unreachable {
		if u == uri {
			return true
		}
	}
	return false
}

// decide turns what Nix reported into outcomes: for every derivation of
// the batch, and for every other derivation Nix built or failed on the
// way (remembered, not delivered). Logs are copied from Nix's log store.
func (p *Pool) decide(ctx, bctx context.Context, b *batch, r *nix.Realised, runErr error) (map[string]*Outcome, error) {
	ctx = context.WithoutCancel(ctx)
	cancelled := bctx.Err() != nil
	touched := map[string]bool{}
	for _, j := range b.jobs {
		touched[j.drv.Path] = true
	}
	for drv := range r.Builds {
		touched[drv] = true
	}
	for drv := range r.Failures {
		touched[drv] = true
	}
	var outputs []string
	outputsOf := map[string][]string{}
	for drv := range touched {
		d, err := p.drvs.read(drv)
		if err != nil {
			continue
		}
		for _, o := range d.Outputs {
			if o != "" {
				outputs = append(outputs, o)
				outputsOf[drv] = append(outputsOf[drv], o)
			}
		}
	}
	// Nix exits 0 only when every derivation asked for is valid, and so
	// everything it built on the way: then there is nothing to ask.
	var invalidList []string
	if runErr != nil {
		var err error
		if invalidList, err = p.nix.InvalidPaths(ctx, outputs); err != nil {
			return nil, err
		}
	}
	invalid := map[string]bool{}
	for _, o := range invalidList {
		invalid[o] = true
	}
	lastError := "nix-store failed"
	if len(r.Errors) > 0 {
		lastError = r.Errors[len(r.Errors)-1]
	} else if runErr != nil {
		lastError = runErr.Error()
	}

	outs := map[string]*Outcome{}
	for drv := range touched {
		o := &Outcome{Drv: drv}
		valid := len(outputsOf[drv]) > 0
		for _, out := range outputsOf[drv] {
			valid = valid && !invalid[out]
		}
		f := r.Failures[drv]
		switch {
		case valid:
			o.Result = Success
		case f != nil && b.oomLimitMiB > 0 && (f.Kind == nix.FailBuilder || f.Kind == nix.FailMachine):
			// The kernel killed a process of the batch for its cgroup's
			// memory limit, and this build failed: a killed compiler fails
			// its build with an exit code, not a signal, so every failure
			// of the batch is taken for it. The package's need, not the
			// machine's fault; remembered only when asked (more memory,
			// or building alone, may build it).
			o.Result, o.Message, o.transient = Failure, fmt.Sprintf("out of memory (limit %d MiB)", b.oomLimitMiB), !p.opt.RememberOOM
			o.MemoryLimitMiB = b.oomLimitMiB
		case f != nil && f.Kind == nix.FailTimeout:
			o.Result, o.Message = Timeout, f.Message
		case f != nil && f.Kind == nix.FailBuilder:
			o.Result, o.Message = Failure, f.Message
		case f != nil && f.Kind == nix.FailMachine:
			o.Result, o.Message, o.transient, o.MachineFault = Failure, f.Message, true, f.Message
		case f != nil && f.Kind == nix.FailOther:
			o.Result, o.Message, o.transient = Failure, f.Message, true
		case f != nil && f.Kind == nix.FailDependencies:
			o.Result, o.Message = DependencyFailed, f.Message
		case cancelled:
			o.Result, o.Message, o.transient = Cancelled, "nobody wants it any more", true
		default:
			// Not built and no reason given: Nix stopped early (out of disk,
			// store trouble, killed). Not the derivation's fault, so not
			// remembered.
			o.Result, o.Message, o.transient, o.MachineFault = Failure, lastError, true, lastError
		}
		if bl := r.Builds[drv]; bl != nil {
			// With -j0 and one builder, everything of a remote batch is built
			// there (Nix 2.8 names no machine in the build activity then).
			o.Machine = b.m.Name()
			o.Started = bl.Start
			if !bl.End.IsZero() {
				o.Duration = bl.End.Sub(bl.Start)
			}
		}
		outs[drv] = o
	}
	for drv, log := range p.keepLogs(ctx, r.Builds) {
		o := outs[drv]
		o.Log = log
		if strings.HasPrefix(o.Message, "out of memory (limit ") {
			// Said where the build's own output ends.
			if f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				fmt.Fprintf(f, "\nbasinix: the build was killed: %s\n", o.Message)
				f.Close()
			}
			continue
		}
		if o.Result == Failure && !o.transient {
			if why := nix.LogMachineFault(LogEnd(log, 16<<10)); why != "" {
				// Not the package's doing: tried again next time.
				o.Message, o.transient, o.MachineFault = "the machine's fault, not remembered: "+why, true, why
			}
		}
	}
	// Name the failed dependency: the nearest in the closure whose own
	// build failed now, or was remembered failed.
	var missing []string
	for drv, o := range outs {
		if o.Result == DependencyFailed {
			if dep := nearestFailed(p.drvs.closure(drv), outs); dep != "" {
				o.FailedDep = dep
			} else {
				missing = append(missing, drv)
			}
		}
	}
	if len(missing) > 0 {
		var closure []string
		for _, drv := range missing {
			closure = append(closure, p.drvs.closure(drv)...)
		}
		stored, err := p.results.Results(ctx, dedupe(closure))
		if err != nil {
			return outs, err
		}
		for _, drv := range missing {
			outs[drv].FailedDep = nearestFailed(p.drvs.closure(drv), stored)
		}
	}
	return outs, nil
}
