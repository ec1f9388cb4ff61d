package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// ErrInput marks errors in what the user asked for (a missing repository,
// ref or default.nix), as opposed to failures of basinix or its tools.
var ErrInput = errors.New("bad input")

// Reviewer runs reviews: it owns the store, the git workspace and the evaluator.
type Reviewer struct {
	cfg       Config
	log       zerolog.Logger
	store     *store.Store
	ws        *checkout.Workspace
	ev        *eval.Evaluator
	evaluator string // the evaluator part of the cache key
	cfgHash   string
}

// NewReviewer opens the store under cfg.DataDir and checks that Nix is there.
func NewReviewer(ctx context.Context, cfg Config, log zerolog.Logger) (*Reviewer, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	runner := nix.New(cfg.Nix.BinDir, cfg.Nix.Options, log)
	version, err := runner.Version(ctx)
	if err != nil {
		return nil, err
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
	ev, err := eval.New(runner, eval.Options{
		Workers:      cfg.Eval.Workers,
		Config:       cfg.Eval.Config,
		AttrTimeout:  cfg.Eval.AttrTimeout,
		MaxMemory:    cfg.Eval.MaxMemoryMiB << 20,
		MaxExplained: cfg.Eval.MaxExplained,
		TempDir:      tmp,
	}, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	sum := sha256.Sum256([]byte(ev.ConfigExpr()))
	log.Debug().Str("nix", version).Msg("reviewer ready")
	return &Reviewer{
		cfg:       cfg,
		log:       log,
		store:     st,
		ws:        checkout.New(cfg.DataDir, log),
		ev:        ev,
		evaluator: "walker-" + nix.WalkerHash() + "/nix-" + version,
		cfgHash:   hex.EncodeToString(sum[:8]),
	}, nil
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
}

// Review evaluates base and merged head for every system, diffs them and
// returns the report with builds pending. Evaluations come from the cache
// when this commit, system, config and evaluator were evaluated before.
func (r *Reviewer) Review(ctx context.Context, req Request) (*report.Report, error) {
	m, err := r.ws.Mirror(req.Repo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if err := m.Fetch(ctx); err != nil {
		if errors.Is(err, checkout.ErrNoRepository) {
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
		return nil, err
	}
	base, err := m.Resolve(ctx, req.Base)
	if err != nil {
		return nil, fmt.Errorf("%w: base: %w", ErrInput, err)
	}
	head, err := m.Resolve(ctx, req.Head)
	if err != nil {
		return nil, fmt.Errorf("%w: head: %w", ErrInput, err)
	}
	merge, err := m.Merge(ctx, base, head)
	if err != nil {
		return nil, err
	}
	rep := &report.Report{
		Base:    report.Ref{Ref: req.Base, Commit: base},
		Head:    report.Ref{Ref: req.Head, Commit: head, Merged: merge.Commit},
		Systems: map[string]*report.System{},
	}
	if merge.Conflict {
		rep.Conflict = &report.Conflict{BaseTip: base, MergeBase: merge.Base, Files: merge.Files}
		r.log.Warn().Str("base", base).Str("head", head).Msg("head does not merge onto base: comparing with the merge-base")
	}
	for _, c := range []string{merge.Base, merge.Commit} {
		if !m.HasFile(ctx, c, "default.nix") {
			return nil, fmt.Errorf("%w: no default.nix at %s in %s", ErrInput, c, m.URL)
		}
	}

	trees := &worktrees{m: m}
	defer trees.removeAll(r.log)

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, system := range req.Systems {
		g.Go(func() error {
			var be, he *eval.Evaluation
			var bi, hi report.EvalInfo
			sg, sctx := errgroup.WithContext(gctx)
			sg.Go(func() (err error) { be, bi, err = r.evaluate(sctx, m.URL, trees, merge.Base, system); return })
			sg.Go(func() (err error) { he, hi, err = r.evaluate(sctx, m.URL, trees, merge.Commit, system); return })
			if err := sg.Wait(); err != nil {
				return err
			}
			mu.Lock()
			rep.Evaluations = append(rep.Evaluations, bi, hi)
			mu.Unlock()
			d := eval.Compare(be, he)
			tests, err := r.tests(gctx, m.URL, trees, merge.Commit, system, d)
			if err != nil {
				return err
			}
			sys := report.FromDiff(d, tests)
			mu.Lock()
			rep.Systems[system] = sys
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(rep.Evaluations, func(i, j int) bool {
		a, b := rep.Evaluations[i], rep.Evaluations[j]
		return a.System < b.System || a.System == b.System && a.Commit == merge.Base && b.Commit != merge.Base
	})
	return rep, nil
}

// worktrees makes at most one worktree per commit for a review, on demand:
// a cached evaluation needs none.
type worktrees struct {
	m     *checkout.Mirror
	mu    sync.Mutex
	trees map[string]*lazyTree
}

type lazyTree struct {
	once sync.Once
	wt   *checkout.Worktree
	err  error
}

func (t *worktrees) get(ctx context.Context, commit string) (*checkout.Worktree, error) {
	t.mu.Lock()
	if t.trees == nil {
		t.trees = map[string]*lazyTree{}
	}
	lt, ok := t.trees[commit]
	if !ok {
		lt = &lazyTree{}
		t.trees[commit] = lt
	}
	t.mu.Unlock()
	lt.once.Do(func() { lt.wt, lt.err = t.m.Worktree(ctx, commit) })
	return lt.wt, lt.err
}

func (t *worktrees) removeAll(log zerolog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, lt := range t.trees {
		if lt.wt != nil {
			if err := lt.wt.Remove(); err != nil {
				log.Warn().Err(err).Msg("remove worktree")
			}
		}
	}
}

func (r *Reviewer) key(repo, commit, system string) store.EvalKey {
	return store.EvalKey{Repo: repo, Commit: commit, System: system, ConfigHash: r.cfgHash, Evaluator: r.evaluator}
}

// evaluate returns the evaluation of commit for system, from the store when
// it is there, else by evaluating a worktree and storing the result.
func (r *Reviewer) evaluate(ctx context.Context, repo string, trees *worktrees, commit, system string) (*eval.Evaluation, report.EvalInfo, error) {
	start := time.Now()
	info := report.EvalInfo{Commit: commit, System: system}
	key := r.key(repo, commit, system)
	rec, err := r.store.Evaluation(ctx, key)
	if err == nil {
		ev, err := fromRecord(rec)
		if err == nil {
			info.Cached, info.Attrs, info.Seconds = true, len(ev.Attrs), time.Since(start).Seconds()
			r.log.Info().Str("commit", commit).Str("system", system).Int("attrs", len(ev.Attrs)).Msg("evaluation cached")
			return ev, info, nil
		}
		r.log.Warn().Err(err).Str("commit", commit).Msg("cached evaluation unreadable: evaluating again")
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, info, err
	}
	wt, err := trees.get(ctx, commit)
	if err != nil {
		return nil, info, err
	}
	ev, err := r.ev.Evaluate(ctx, wt.Path, system)
	if err != nil {
		return nil, info, fmt.Errorf("evaluate %s for %s: %w", commit, system, err)
	}
	ev.Commit = commit
	rec, err = toRecord(key, ev)
	if err != nil {
		return nil, info, err
	}
	if err := r.store.PutEvaluation(ctx, rec); err != nil {
		return nil, info, err
	}
	info.Attrs, info.Processes, info.Seconds = len(ev.Attrs), ev.Processes, time.Since(start).Seconds()
	r.log.Info().Str("commit", commit).Str("system", system).Int("attrs", len(ev.Attrs)).
		Int("processes", ev.Processes).Dur("took", time.Since(start)).Msg("evaluated")
	return ev, info, nil
}

// tests evaluates (or reads from the store) the passthru.tests of the head
// attributes that will be built: added, changed and eval-fixed ones.
func (r *Reviewer) tests(ctx context.Context, repo string, trees *worktrees, commit, system string, d *eval.Diff) (map[string]*eval.TestSet, error) {
	var want []eval.Path
	var names []string
	for _, a := range d.Attrs {
		if a.Head != nil && a.Head.Evaluable() && len(a.Head.Tests) > 0 {
			want = append(want, a.Head.Path)
			names = append(names, a.Attr)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	key := r.key(repo, commit, system)
	stored, err := r.store.Tests(ctx, key, names)
	if err != nil {
		return nil, err
	}
	out, missing, err := testsFromRows(stored, want)
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return out, nil
	}
	wt, err := trees.get(ctx, commit)
	if err != nil {
		return nil, err
	}
	fresh, err := r.ev.Tests(ctx, wt.Path, system, missing)
	if err != nil {
		return nil, fmt.Errorf("tests at %s for %s: %w", commit, system, err)
	}
	rows, err := testRows(fresh)
	if err != nil {
		return nil, err
	}
	if err := r.store.PutTests(ctx, key, rows); err != nil {
		return nil, err
	}
	for k, v := range fresh {
		out[k] = v
	}
	return out, nil
}
