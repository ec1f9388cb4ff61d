package review

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// layout says how commit is evaluated (nix.Locate).
func (r *Reviewer) layout(ctx context.Context, m *checkout.Mirror, commit string) (nix.Layout, error) {
	return nix.Locate(r.cfg.Eval.Flakes, commitFiles{ctx, m, commit})
}

// isFlake says whether commit is evaluated as a flake, its jobs reviewed
// as a CI (a bad .basinix.toml asks for a flake: it has no other use).
func (r *Reviewer) isFlake(ctx context.Context, m *checkout.Mirror, commit string) bool {
	lay, _ := r.layout(ctx, m, commit)
	return lay.Flake
}

// commitFiles are nix.Files of a commit in a mirror.
type commitFiles struct {
	ctx    context.Context
	m      *checkout.Mirror
	commit string
}

func (f commitFiles) Has(name string) bool { return f.m.HasFile(f.ctx, f.commit, name) }

func (f commitFiles) Read(name string) ([]byte, error) {
	b, err := f.m.ReadFile(f.ctx, f.commit, name, nix.MaxRepoConfig)
	switch {
	case errors.Is(err, checkout.ErrNotRegular):
		return nil, nix.NotRepoFile(name, "not a regular file")
	case errors.Is(err, checkout.ErrTooLarge):
		return nil, nix.NotRepoFile(name, "larger than 64 KiB")
	}
	return b, err
}

// ErrInput marks errors in what the user asked for (a missing repository,
// ref or default.nix), as opposed to failures of basinix or its tools.
var ErrInput = errors.New("bad input")

// Reviewer runs reviews: it owns the store, the git workspace and the evaluator.
type Reviewer struct {
	cfg            Config
	log            zerolog.Logger
	store          *store.Store
	ws             *checkout.Workspace
	ev             *eval.Evaluator
	nix            *nix.Runner
	pool           *build.Pool
	host           *nix.Host
	sandboxWarning sync.Once
	evaluator      string // the evaluator part of the cache key
	cfgHash        string
	uploadKick     chan struct{}
}

// New opens the store under cfg.DataDir, checks that Nix is there
// and sets up the builder pool (which builds once Run runs).
func New(ctx context.Context, cfg Config, log zerolog.Logger) (*Reviewer, error) {
	// Every path basinix hands Nix must be absolute: a relative one is
	// read relative to the evaluated file and refused in restricted mode.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dataDir
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Builders and reviewers substitute from basinix's binary cache.
	extra, err := cacheOptions(cfg.Cache)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		opts := maps.Clone(cfg.Nix.Options)
		if opts == nil {
			opts = map[string]string{}
		}
		for k, v := range extra {
			if old := opts[k]; old != "" {
				v = old + " " + v
			}
			opts[k] = v
		}
		cfg.Nix.Options = opts
	}
	runner := nix.New(cfg.Nix.BinDir, cfg.Nix.Options, log)
	version, err := runner.Version(ctx)
	if err != nil {
		return nil, err
	}
	// On a machine where Nix was just installed, the evaluations that start
	// at once would create the store database together ("database is
	// busy"): create it first, alone.
	if err := runner.InitStore(ctx); err != nil {
		log.Warn().Err(err).Msg("initialising the Nix store database")
	}
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, "basinix.db"))
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		st.Close()
		return nil, fmt.Errorf("data dir: %w", err)
	}
	available, _ := build.MemAvailableMiB()
	ev, err := eval.New(runner, eval.Options{
		AvailableMemory: int64(available) << 20,
		Workers:         cfg.Eval.Workers,
		Config:          cfg.Eval.Config,
		AttrTimeout:     cfg.Eval.AttrTimeout,
		MaxMemory:       cfg.Eval.MaxMemoryMiB << 20,
		MemoryBudget:    cfg.Eval.MemoryBudgetMiB << 20,
		MaxExplained:    cfg.Eval.MaxExplained,
		TempDir:         tmp,
		Timeout:         cfg.Eval.Timeout,
		MaxAttrs:        cfg.Eval.MaxAttrs,
		MaxDeaths:       cfg.Eval.MaxDeaths,
		Flakes:          cfg.Eval.Flakes,
		FlakeJobs:       cfg.Eval.FlakeJobs,

		FlakeLocalInputs: cfg.Eval.FlakeLocalInputs,
	}, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	pool, host, err := newPool(ctx, cfg, runner, st, log)
	if err != nil {
		ev.Close()
		st.Close()
		return nil, err
	}
	// The config and the limits decide which attributes fail: an
	// evaluation killed under one memory bound is no result under another.
	sum := sha256.Sum256([]byte(ev.Key()))
	log.Debug().Str("nix", version).Msg("reviewer ready")
	return &Reviewer{
		cfg:       cfg,
		log:       log,
		store:     st,
		ws:        newWorkspace(cfg, log),
		ev:        ev,
		nix:       runner,
		pool:      pool,
		host:      host,
		evaluator: "walker-" + nix.WalkerHash() + "/nix-" + version,
		cfgHash:   hex.EncodeToString(sum[:8]),

		uploadKick: make(chan struct{}, 1),
	}, nil
}

// newWorkspace returns the git workspace of cfg.
func newWorkspace(cfg Config, log zerolog.Logger) *checkout.Workspace {
	ws := checkout.New(cfg.DataDir, log)
	ws.Keep = cfg.Git.Checkouts
	return ws
}

// newPool sets up the builder pool: the local machine as Nix describes it
// (unless the config says otherwise) and the configured remote machines.
func newPool(ctx context.Context, cfg Config, runner *nix.Runner, st *store.Store, log zerolog.Logger) (*build.Pool, *nix.Host, error) {
	host, err := runner.Host(ctx)
	if err != nil {
		return nil, nil, err
	}
	local := build.Machine{Systems: host.Systems, SupportedFeatures: host.Features, MaxJobs: cfg.Build.MaxJobs, SpeedFactor: 1,
		Cores: cmp.Or(cfg.Build.LocalSize.Cores, runtime.NumCPU()), MemoryMiB: cmp.Or(cfg.Build.LocalSize.MemoryMiB, build.MemTotalMiB())}
	if len(cfg.Build.LocalSystems) > 0 {
		local.Systems = cfg.Build.LocalSystems
	}
	if cfg.Build.LocalFeatures != nil {
		local.SupportedFeatures = *cfg.Build.LocalFeatures
	}
	machines, err := cfg.Machines()
	if err != nil {
		return nil, nil, err
	}
	pool, err := build.New(build.Options{
		Local:         local,
		Cores:         cfg.Build.Cores,
		Machines:      machines,
		SSHOptions:    cfg.Build.SSHOptions,
		BuildTimeout:  cfg.Build.BuildTimeout,
		MaxSilentTime: cfg.Build.MaxSilentTime,
		BatchSize:     cfg.Build.BatchSize,
		LogDir:        filepath.Join(cfg.DataDir, "logs"),
		LogMaxBytes:   cfg.Build.LogMaxKiB << 10,
		Cgroups:       cgroups(cfg.Build.Cgroups, log),
		Short:         shortOf(cfg.Build),
		JobMemoryMiB:  cfg.Build.Cgroups.MemoryMiB,
		JobCPUs:       cfg.Build.Cgroups.CPUs,
		FeatureLimits: featureLimits(cfg.Build.Cgroups.Features),
		RememberOOM:   cfg.Build.Cgroups.RememberOOM,
	}, runner, buildResults{st}, log)
	return pool, host, err
}

// Store is the reviewer's store, Pool its builder pool, Workspace its git
// workspace, Host the local Nix as it describes itself, Config its
// configuration (the data directory made absolute): the server shares
// them.
func (r *Reviewer) Store() *store.Store            { return r.store }
func (r *Reviewer) Pool() *build.Pool              { return r.pool }
func (r *Reviewer) Workspace() *checkout.Workspace { return r.ws }
func (r *Reviewer) Host() *nix.Host                { return r.host }
func (r *Reviewer) Config() Config                 { return r.cfg }
func (r *Reviewer) Evaluator() *eval.Evaluator     { return r.ev }

// Build builds wants (derivations already in the store) and returns their
// outcomes, trying again those that failed for the machine's fault.
func (r *Reviewer) Build(ctx context.Context, wants []build.Want) (map[string]build.Outcome, error) {
	return r.buildRetrying(ctx, wants, nil)
}

// Run runs the builder pool until ctx ends. Reviews that build need it
// running.
func (r *Reviewer) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.runUploads(ctx)
	}()
	defer func() { <-done }()
	return r.pool.Run(ctx)
}

// Close releases the store and temporary files.
func (r *Reviewer) Close() error {
	r.ev.Close()
	return r.store.Close()
}

// Request is one review: Head compared with Base in Repo.
type Request struct {
	Repo       string // local path, file:// or https:// URL
	Base, Head string // refs or commits
	Systems    []string
	// Build builds what changed; without it, build results stay pending.
	Build bool
	// RebuildFailed builds the head's derivations again whose failure is
	// remembered.
	RebuildFailed bool
	// Progress, when set, is called as builds progress (Pending.Progress
	// says the same to who asks).
	Progress func(build.Progress)
	// Priority is added to the builds' priorities: a review with a higher
	// one is built first.
	Priority int
	// FreshEval evaluates the merged head again even when it is cached
	// (and replaces the cached evaluation).
	FreshEval bool
	// FewerRebuildsFirst lowers the priority by the number of rebuilds, so
	// that small PRs are not stuck behind mass rebuilds.
	FewerRebuildsFirst bool
	// Select, when set, limits the review to the attributes it accepts
	// (basinix pr -p, -P, --package-regex): the others are neither built
	// nor reported, and the rebuild count is the selection's. Selection
	// says what was asked, for the report.
	Select    func(attr string) bool
	Selection string
	// Refs, when set, are the only refspecs fetched from Repo (basinix pr:
	// the PR's head and its base branch), instead of every branch, tag and
	// pull ref.
	Refs []string
}

// Review evaluates base and merged head for every system, diffs them,
// builds what changed when req.Build is set (builds pending otherwise) and
// returns the report. Evaluations come from the cache when this commit,
// system, config and evaluator were evaluated before; build results come
// from the pool's memory. It is Evaluate, then Pending.Build.
func (r *Reviewer) Review(ctx context.Context, req Request) (*report.Report, error) {
	p, err := r.Evaluate(ctx, req)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Build(ctx)
}

// Pending is a review evaluated and compared, its builds not done yet. It
// holds the review's checkouts until Build returns or Close.
type Pending struct {
	r      *Reviewer
	req    Request
	rep    *report.Report
	trees  *worktrees
	evals  map[evalID]*evalResult
	merge  checkout.Merge
	start  time.Time
	phases [3]time.Time // git, evaluation and comparison done

	progress atomic.Pointer[build.Progress]
	once     sync.Once
}

// Evaluate runs a review's first phase: fetch, merge the head onto the
// base, evaluate both for every system and compare them. The report it
// holds has every build pending: publish it, then Build.
func (r *Reviewer) Evaluate(ctx context.Context, req Request) (_ *Pending, err error) {
	start := time.Now()
	m, err := r.fetch(ctx, req.Repo, req.Refs...)
	if err != nil {
		return nil, err
	}
	base, head, merge, err := merged(ctx, m, req.Base, req.Head)
	if err != nil {
		return nil, err
	}
	rep := &report.Report{
		Base:      report.Ref{Ref: req.Base, Commit: base},
		Head:      report.Ref{Ref: req.Head, Commit: head, Merged: merge.Commit},
		Systems:   map[string]*report.System{},
		Selection: req.Selection,
	}
	if merge.Conflict {
		rep.Conflict = &report.Conflict{BaseTip: base, MergeBase: merge.Base, Files: merge.Files}
		r.log.Warn().Str("base", base).Str("head", head).Msg("head does not merge onto base: comparing with the merge-base")
	}
	for _, c := range []string{merge.Base, merge.Commit} {
		// A bad .basinix.toml is the evaluation's error, not the request's.
		if lay, err := r.layout(ctx, m, c); err == nil && !m.HasFile(ctx, c, lay.Entry()) {
			return nil, fmt.Errorf("%w: no %s at %s in %s", ErrInput, lay.Entry(), c, m.URL)
		}
	}
	rep.Jobs = r.isFlake(ctx, m, merge.Commit)

	p := &Pending{r: r, req: req, rep: rep, trees: &worktrees{m: m}, merge: merge, start: start}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	p.phases[0] = time.Now()
	var opts evalOpts
	if merge.Commit != merge.Base {
		if req.FreshEval {
			opts.fresh = []string{merge.Commit}
		}
		if !req.Build {
			// The head's details are asked of its own processes. (A build
			// needs them written as .drv files, which these read-only
			// processes cannot.)
			opts.hold = merge.Commit
		}
	}
	evals, err := r.evaluateAll(ctx, m.URL, p.trees, req.Systems, []string{merge.Base, merge.Commit}, opts)
	if err != nil {
		return nil, err
	}
	p.evals = evals
	p.phases[1] = time.Now()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, system := range req.Systems {
		g.Go(func() error {
			base, head := evals[evalID{merge.Base, system}], evals[evalID{merge.Commit, system}]
			sys, err := r.compare(gctx, m.URL, p.trees, base.ev, head, req.Build, rep.Jobs, req.Select)
			if err != nil {
				return err
			}
			mu.Lock()
			rep.Systems[system] = sys
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_ = waitStored(evals)
		return nil, err
	}
	closeSessions(evals)
	p.phases[2] = time.Now()
	for _, system := range req.Systems {
		rep.Evaluations = append(rep.Evaluations, evals[evalID{merge.Base, system}].info)
		if merge.Commit != merge.Base {
			rep.Evaluations = append(rep.Evaluations, evals[evalID{merge.Commit, system}].info)
		}
	}
	return p, nil
}

// Report is the review as evaluated: every build pending. Read it before
// Build, which fills it in.
func (p *Pending) Report() *report.Report { return p.rep }

// Progress is the builds' progress while Build runs; false before.
func (p *Pending) Progress() (build.Progress, bool) {
	pr := p.progress.Load()
	if pr == nil {
		return build.Progress{}, false
	}
	return *pr, true
}

// Build builds what the review's request asks (nothing without
// Request.Build: the results stay pending), fills the results and
// verdicts in, and returns the report. It releases the checkouts.
func (p *Pending) Build(ctx context.Context) (*report.Report, error) {
	defer p.Close()
	r, req, rep := p.r, p.req, p.rep
	var instantiate, buildTime time.Duration
	if req.Build {
		r2 := req
		r2.Progress = func(pr build.Progress) {
			p.progress.Store(&pr)
			if req.Progress != nil {
				req.Progress(pr)
			}
		}
		var err error
		instantiate, buildTime, err = r.buildAll(ctx, r2, p.trees, rep, p.merge.Base, p.merge.Commit)
		if err != nil {
			return nil, err
		}
	}
	if err := waitStored(p.evals); err != nil {
		return nil, err
	}
	now := time.Now()
	rep.Timings = &report.Timings{
		Git:         p.phases[0].Sub(p.start).Seconds(),
		Evaluate:    p.phases[1].Sub(p.phases[0]).Seconds(),
		Compare:     p.phases[2].Sub(p.phases[1]).Seconds(),
		Instantiate: instantiate.Seconds(),
		Build:       buildTime.Seconds(),
		Total:       now.Sub(p.start).Seconds(),
	}
	r.log.Info().Float64("git", rep.Timings.Git).Float64("evaluate", rep.Timings.Evaluate).
		Float64("compare", rep.Timings.Compare).Float64("instantiate", rep.Timings.Instantiate).
		Float64("build", rep.Timings.Build).Float64("total", rep.Timings.Total).Msg("review done (seconds)")
	return rep, nil
}

// Close releases the review's checkouts and evaluation processes; Build
// does it too.
func (p *Pending) Close() {
	p.once.Do(func() {
		if p.evals != nil {
			closeSessions(p.evals)
		}
		p.trees.removeAll(p.r.log)
	})
}

// fetch returns repo's mirror, fetched. A repository that is not one is
// ErrInput.
func (r *Reviewer) fetch(ctx context.Context, repo string, refs ...string) (*checkout.Mirror, error) {
	m, err := r.ws.Mirror(repo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	err = retryMachineFaults(ctx, r.log, "fetch "+repo, func() error {
		err := m.FetchRefs(ctx, refs)
		switch {
		case err == nil || ctx.Err() != nil:
			return err
		case errors.Is(err, checkout.ErrNoRepository):
			return fmt.Errorf("%w: %w", ErrInput, err)
		}
		// git failing on the mirror (the disk, the network, GitHub down)
		// is not the change's doing.
		return fmt.Errorf("%w: %w", ErrInfrastructure, err)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// merged resolves the base and head refs (unknown ones are ErrInput) and
// merges the head onto the base.
func merged(ctx context.Context, m *checkout.Mirror, baseRef, headRef string) (base, head string, merge checkout.Merge, err error) {
	if base, err = m.Resolve(ctx, baseRef); err != nil {
		return "", "", merge, fmt.Errorf("%w: base: %w", ErrInput, err)
	}
	if head, err = m.Resolve(ctx, headRef); err != nil {
		return "", "", merge, fmt.Errorf("%w: head: %w", ErrInput, err)
	}
	merge, err = m.Merge(ctx, base, head)
	return base, head, merge, err
}

type evalID struct{ commit, system string }

// job is one evaluation a review needs, and whether it is in the store.
type job struct {
	id     evalID
	cached bool
}

type evalResult struct {
	ev   *eval.Evaluation
	info report.EvalInfo
	// stored says when the record of an evaluation made now (not
	// info.Cached) is stored, and how that went.
	stored func() error
	// session, for an evaluation asked to be held, answers questions
	// about its attributes without a new import of the set; release gives
	// its checkout back once it is closed.
	session *eval.Session
	release func()
}

// evalOpts says how evaluateAll treats some commits: fresh ones are
// evaluated even when cached; a held one keeps its processes (see
// eval.Evaluator.Open) when it is evaluated now.
type evalOpts struct {
	fresh []string
	hold  string
}

// evaluateAll returns the evaluation of every commit for every system: from
// the store where it is there (except for the fresh commits), else
// evaluated, the missing ones each with its share of the evaluator's
// workers: all at once when each commit finds a kept checkout, else one
// commit after the other. Fresh evaluations are stored in the background:
// waitStored waits for that.
func (r *Reviewer) evaluateAll(ctx context.Context, repo string, trees *worktrees, systems, commits []string, opts evalOpts) (map[evalID]*evalResult, error) {
	var jobs []job
	seen := map[evalID]bool{}
	for _, system := range systems {
		for _, commit := range commits {
			id := evalID{commit, system}
			if seen[id] {
				continue
			}
			seen[id] = true
			cached := false
			if !slices.Contains(opts.fresh, commit) {
				var err error
				if cached, err = r.store.HasEvaluation(ctx, r.key(repo, commit, system)); err != nil {
					return nil, err
				}
			}
			jobs = append(jobs, job{id, cached})
		}
	}
	// Commits to evaluate whose checkout would have to be written anew are
	// evaluated one after the other, through one checkout moved from one
	// to the next: on a large tree, writing a second checkout costs more
	// (seconds of system time for nixpkgs' 45,000 files) than evaluating
	// the two at once gains over evaluating each with all workers.
	var rounds [][]job
	commitsToEvaluate := map[string]bool{}
	for _, j := range jobs {
		if !j.cached {
			commitsToEvaluate[j.id.commit] = true
		}
	}
	if len(commitsToEvaluate) > 1 && trees.m.FreeCheckouts() < len(commitsToEvaluate) {
		for _, commit := range commits {
			var round []job
			for _, j := range jobs {
				if j.id.commit == commit {
					round = append(round, j)
				}
			}
			rounds = append(rounds, round)
		}
		r.log.Debug().Int("commits", len(commitsToEvaluate)).Msg("evaluating one commit after the other, through one moved checkout")
	} else {
		rounds = [][]job{jobs}
	}
	out := map[evalID]*evalResult{}
	for _, round := range rounds {
		if err := r.evaluateRound(ctx, repo, trees, round, opts, out); err != nil {
			closeSessions(out)
			_ = waitStored(out)
			return nil, err
		}
	}
	return out, nil
}

// evaluateRound evaluates jobs at once (each loaded from the store when
// cached), into out.
func (r *Reviewer) evaluateRound(ctx context.Context, repo string, trees *worktrees, jobs []job, opts evalOpts, out map[evalID]*evalResult) error {
	missing := 0
	for _, j := range jobs {
		if !j.cached {
			missing++
		}
	}
	// Each chunk process imports the whole set, so chunks only pay when
	// cores would otherwise idle: split the workers among the evaluations.
	chunks := max(1, r.ev.Workers()/max(1, missing))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, j := range jobs {
		g.Go(func() error {
			var res *evalResult
			if j.cached {
				start := time.Now()
				ev, err := r.cached(gctx, r.key(repo, j.id.commit, j.id.system))
				if err != nil {
					return err
				}
				if ev != nil {
					res = &evalResult{ev: ev, stored: func() error { return nil }, info: report.EvalInfo{Commit: j.id.commit, System: j.id.system, Cached: true, Attrs: len(ev.Attrs), Seconds: time.Since(start).Seconds()}}
					r.log.Info().Str("commit", j.id.commit).Str("system", j.id.system).Int("attrs", len(ev.Attrs)).Msg("evaluation cached")
				}
			}
			if res == nil {
				var err error
				if res, err = r.evaluate(ctx, gctx, repo, trees, j.id.commit, j.id.system, chunks, opts.hold == j.id.commit); err != nil {
					return err
				}
			}
			mu.Lock()
			out[j.id] = res
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// waitStored waits until every fresh evaluation is stored.
func waitStored(evals map[evalID]*evalResult) error {
	var errs []error
	for _, e := range evals {
		if e != nil {
			errs = append(errs, e.stored())
		}
	}
	return errors.Join(errs...)
}

// closeSessions ends the processes held for the evaluations.
func closeSessions(evals map[evalID]*evalResult) {
	for _, e := range evals {
		if e != nil && e.session != nil {
			e.session.Close()
			e.release()
		}
	}
}

// cached returns the stored evaluation under key, nil when there is none.
func (r *Reviewer) cached(ctx context.Context, key store.EvalKey) (*eval.Evaluation, error) {
	rec, err := r.store.Evaluation(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev, err := fromRecord(rec)
	if err != nil {
		r.log.Warn().Err(err).Str("commit", key.Commit).Msg("cached evaluation unreadable: evaluating again")
		return nil, nil
	}
	return ev, nil
}

// evaluate evaluates commit for system in a worktree and starts storing the
// result. A held evaluation's processes live until its session is closed or
// life ends.
func (r *Reviewer) evaluate(life, ctx context.Context, repo string, trees *worktrees, commit, system string, chunks int, hold bool) (*evalResult, error) {
	start := time.Now()
	wt, release, err := trees.get(ctx, commit)
	if err != nil {
		return nil, err
	}
	var ev *eval.Evaluation
	var session *eval.Session
	defer func() {
		if session == nil { // a held session keeps the checkout until it is closed
			release()
		}
	}()
	err = retryMachineFaults(ctx, r.log, "evaluate "+report.Short(commit)+" for "+system, func() error {
		var err error
		if hold {
			// The session outlives this evaluation's errgroup.
			if session, err = r.ev.Open(life, wt.Path, system, chunks); err == nil {
				ev = session.Evaluation()
			}
		} else {
			ev, err = r.ev.Evaluate(ctx, wt.Path, system, chunks)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate %s for %s: %w", commit, system, err)
	}
	ev.Commit = commit
	took := time.Since(start)
	key := r.key(repo, commit, system)
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		rec, err := toRecord(key, ev)
		if err == nil {
			err = r.store.PutEvaluation(context.WithoutCancel(life), rec)
		}
		r.log.Debug().Err(err).Str("commit", commit).Str("system", system).Dur("took", time.Since(start)).Msg("evaluation stored")
		done <- err
	}()
	r.log.Info().Str("commit", commit).Str("system", system).Int("attrs", len(ev.Attrs)).
		Int("processes", ev.Processes).Dur("took", took).Msg("evaluated")
	return &evalResult{
		ev: ev, session: session, release: release,
		stored: sync.OnceValue(func() error { return <-done }),
		info:   report.EvalInfo{Commit: commit, System: system, Attrs: len(ev.Attrs), Processes: ev.Processes, Retired: ev.Retired, Seconds: took.Seconds()},
	}, nil
}

// compare diffs two evaluations of one system and learns what the report
// needs of the head's touched attributes: details (meta, outputs, tests) of
// those to build, and the messages of throws that newly break evaluation.
// With instantiate, the details pass also writes the .drv files to build.
func (r *Reviewer) compare(ctx context.Context, repo string, trees *worktrees, base *eval.Evaluation, headRes *evalResult, instantiate, jobs bool, keep func(string) bool) (*report.System, error) {
	head := headRes.ev
	d := eval.Compare(base, head)
	if jobs {
		d.WithUnchanged(base, head)
	}
	if keep != nil {
		d.Keep(keep)
	}
	key := r.key(repo, head.Commit, head.System)
	cache := extrasCache{st: r.store, key: key, stored: headRes.stored, fresh: !headRes.info.Cached}

	var build, buildAliased, unexplained []eval.Path
	for _, a := range d.Attrs {
		switch {
		case a.Head == nil:
		case a.Head.AliasError:
			buildAliased = append(buildAliased, a.Head.Path)
		case a.Head.Evaluable():
			build = append(build, a.Head.Path)
		case a.Head.Error != nil && a.Head.Error.Message == eval.Unexplained:
			unexplained = append(unexplained, a.Head.Path)
		}
	}
	for _, a := range d.AliasErrors {
		if a.Error != nil && a.Error.Message == eval.Unexplained {
			unexplained = append(unexplained, a.Path)
		}
	}
	details := map[string]*eval.Details{}
	for _, aliases := range []bool{false, true} {
		paths := build
		if aliases {
			paths = buildAliased
		}
		got, err := cachedExtras(ctx, cache, "details", paths, func(paths []eval.Path) (map[string]*eval.Details, error) {
			if s := headRes.session; s != nil && !instantiate {
				return s.Details(ctx, paths, aliases)
			}
			wt, release, err := trees.get(ctx, head.Commit)
			defer release()
			if err != nil {
				return nil, err
			}
			return r.ev.Details(ctx, wt.Path, head.System, paths, aliases, instantiate)
		})
		if err != nil {
			return nil, err
		}
		maps.Copy(details, got)
	}
	explained, err := cachedExtras(ctx, cache, "explain", unexplained, func(paths []eval.Path) (map[string]*eval.Error, error) {
		wt, release, err := trees.get(ctx, head.Commit)
		defer release()
		if err != nil {
			return nil, err
		}
		return r.ev.Explain(ctx, wt.Path, head.System, paths)
	})
	if err != nil {
		return nil, err
	}
	explain := func(a *eval.Attr) *eval.Attr {
		if e := explained[a.Path.String()]; e != nil {
			c := *a
			c.Error = e
			return &c
		}
		return a
	}
	for i, a := range d.Attrs {
		if a.Head != nil {
			d.Attrs[i].Head = explain(a.Head)
		}
	}
	for i, a := range d.AliasErrors {
		d.AliasErrors[i] = explain(a)
	}
	return report.FromDiff(d, details), nil
}

// worktrees makes at most one worktree per commit for a review, on demand:
// a cached evaluation needs none.
// worktrees leases the checkouts one review uses, one per commit, shared
// by the steps that need the same commit and counted: a checkout goes back
// to the mirror as soon as no step uses it, so that a later step moves it
// to its own commit instead of writing a whole new tree.
type worktrees struct {
	m      *checkout.Mirror
	mu     sync.Mutex
	leases map[string]*lease // guarded by mu
}

type lease struct {
	ready chan struct{} // closed once wt and err are set
	wt    *checkout.Worktree
	err   error
	refs  int // guarded by worktrees.mu
}

// get returns commit's checkout, leased until release is called (once; it
// may be called more often, and must be called on error too).
func (t *worktrees) get(ctx context.Context, commit string) (wt *checkout.Worktree, release func(), err error) {
	t.mu.Lock()
	if t.leases == nil {
		t.leases = map[string]*lease{}
	}
	l, shared := t.leases[commit]
	if !shared {
		l = &lease{ready: make(chan struct{})}
		t.leases[commit] = l
	}
	l.refs++
	t.mu.Unlock()
	release = sync.OnceFunc(func() { t.release(commit, l) })
	if !shared {
		l.wt, l.err = t.m.Worktree(ctx, commit)
		close(l.ready)
	} else {
		select {
		case <-l.ready:
		case <-ctx.Done():
			release()
			return nil, func() {}, ctx.Err()
		}
	}
	if l.err != nil {
		release()
		return nil, func() {}, l.err
	}
	return l.wt, release, nil
}

func (t *worktrees) release(commit string, l *lease) {
	t.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last && t.leases[commit] == l {
		delete(t.leases, commit)
	}
	t.mu.Unlock()
	if last && l.wt != nil {
		l.wt.Release()
	}
}

// removeAll gives back what is still leased (a step that failed early).
func (t *worktrees) removeAll(log zerolog.Logger) {
	t.mu.Lock()
	leases := t.leases
	t.leases = nil
	t.mu.Unlock()
	for _, l := range leases {
		<-l.ready
		if l.wt != nil {
			if err := l.wt.Release(); err != nil {
				log.Warn().Err(err).Msg("release worktree")
			}
		}
	}
}

// Cached returns the evaluation of commit of repo (a mirror's URL) for
// system that the cache holds under this reviewer's config and
// evaluator; nil when it holds none.
func (r *Reviewer) Cached(ctx context.Context, repo, commit, system string) (*eval.Evaluation, error) {
	return r.cached(ctx, r.key(repo, commit, system))
}

func (r *Reviewer) key(repo, commit, system string) store.EvalKey {
	return store.EvalKey{Repo: repo, Commit: commit, System: system, ConfigHash: r.cfgHash, Evaluator: r.evaluator}
}

// cgroups finds the cgroups local builds run in when the config limits
// them, saying in one line what the builds get.
func cgroups(c CgroupsConfig, log zerolog.Logger) *nix.Cgroups {
	if c.MemoryMiB <= 0 && c.CPUs <= 0 {
		return nil
	}
	cg, why := nix.DetectCgroups(cmp.Or(c.Root, "/sys/fs/cgroup"), "basinix")
	if cg == nil {
		log.Warn().Str("why", why).Msg("no usable cgroups: local builds run without build.cgroups' memory and CPU limits")
		return nil
	}
	log.Info().Int("cgroup_version", cg.Version).Int("memory_mib", c.MemoryMiB).Float64("cpus", c.CPUs).Msg("local builds run in cgroups: these limits for each build at once")
	return cg
}

// shortOf is the pool's check of the machine's free memory and disk, nil
// when none is configured.
func shortOf(b BuildConfig) func() string {
	if b.MinFreeMemoryMiB <= 0 && b.MinFreeDiskMiB <= 0 && b.MaxMemoryPressure <= 0 {
		return nil
	}
	return build.Pressure{MinMemoryMiB: b.MinFreeMemoryMiB, MinDiskMiB: b.MinFreeDiskMiB, MaxMemoryPressure: b.MaxMemoryPressure,
		StoreDir: cmp.Or(os.Getenv("NIX_STORE_DIR"), "/nix/store")}.Short
}

func featureLimits(fs map[string]JobLimitsConfig) map[string]build.JobLimits {
	out := make(map[string]build.JobLimits, len(fs))
	for f, l := range fs {
		out[f] = build.JobLimits{MemoryMiB: l.MemoryMiB, CPUs: l.CPUs}
	}
	return out
}
