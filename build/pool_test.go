package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
)

// memResults keeps results in memory, as the store does on disk.
type memResults struct {
	mu sync.Mutex
	m  map[string]*Outcome
}

func (r *memResults) Results(_ context.Context, drvs []string) (map[string]*Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*Outcome{}
	for _, d := range drvs {
		if o, ok := r.m[d]; ok {
			c := *o
			out[d] = &c
		}
	}
	return out, nil
}

func (r *memResults) PutResults(_ context.Context, outs []*Outcome) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range outs {
		c := *o
		r.m[o.Drv] = &c
	}
	return nil
}

// fixture is a fresh instantiation of testdata/dag.nix and a running pool.
type fixture struct {
	t       *testing.T
	runner  *nix.Runner
	pool    *Pool
	results *memResults
	counter string
	drvs    map[string]string // attribute → drv
}

func newFixture(t *testing.T, opt Options) *fixture {
	t.Helper()
	testenv.RequireNix(t)
	log := testenv.Logger(t)
	f := &fixture{t: t, runner: nix.New("", nil, log), results: &memResults{m: map[string]*Outcome{}},
		counter: filepath.Join(t.TempDir(), "counter"), drvs: map[string]string{}}
	f.instantiate("")
	if opt.Local.Systems == nil {
		opt.Local = Machine{Systems: []string{"x86_64-linux"}, MaxJobs: 2}
	}
	opt.LogDir = filepath.Join(t.TempDir(), "logs")
	p, err := New(opt, f.runner, f.results, log)
	if err != nil {
		t.Fatal(err)
	}
	f.pool = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return f
}

var attrs = []string{"base", "good", "bad", "usesbad", "usesusesbad", "silent", "chatty", "arm", "big", "shared1", "shared2", "longline", "killed", "diskfull", "fodmismatch", "hungry", "hungrybig", "spin"}

// instantiate writes the fixture's derivations with a new nonce.
func (f *fixture) instantiate(system string) {
	f.t.Helper()
	nonce := make([]byte, 8)
	rand.Read(nonce)
	args := []string{"testdata/dag.nix", "--argstr", "nonce", hex.EncodeToString(nonce), "--argstr", "counter", f.counter}
	if system != "" {
		args = append(args, "--argstr", "system", system)
	}
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	res, err := f.runner.Run(context.Background(), nix.Cmd{Program: "nix-instantiate", Args: args})
	if err != nil {
		f.t.Fatal(err)
	}
	lines := strings.Fields(string(res.Stdout))
	if len(lines) != len(attrs) {
		f.t.Fatalf("instantiate: %d paths for %d attributes", len(lines), len(attrs))
	}
	for i, a := range attrs {
		f.drvs[a] = lines[i]
	}
}

// build submits the attributes and waits for their outcomes, by attribute.
func (f *fixture) build(force bool, names ...string) map[string]Outcome {
	f.t.Helper()
	t, err := f.pool.Submit(context.Background(), f.wants(force, names...))
	if err != nil {
		f.t.Fatal(err)
	}
	return f.wait(t)
}

func (f *fixture) wants(force bool, names ...string) []Want {
	var ws []Want
	for _, n := range names {
		ws = append(ws, Want{Drv: f.drvs[n], Force: force})
	}
	return ws
}

func (f *fixture) wait(t *Ticket) map[string]Outcome {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outs, err := t.Wait(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	byAttr := map[string]Outcome{}
	for a, drv := range f.drvs {
		if o, ok := outs[drv]; ok {
			byAttr[a] = o
		}
	}
	return byAttr
}

// builds returns the names of the builds Nix ran, sorted.
func (f *fixture) builds() []string {
	b, err := os.ReadFile(f.counter)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	l := strings.Fields(string(b))
	sort.Strings(l)
	return l
}

type brief struct {
	Result    Result
	FailedDep string
	Cached    bool
}

func briefs(f *fixture, outs map[string]Outcome) map[string]brief {
	attrOf := map[string]string{}
	for a, d := range f.drvs {
		attrOf[d] = a
	}
	out := map[string]brief{}
	for a, o := range outs {
		out[a] = brief{Result: o.Result, FailedDep: attrOf[o.FailedDep], Cached: o.Cached}
	}
	return out
}

func TestResults(t *testing.T) {
	f := newFixture(t, Options{BuildTimeout: 3 * time.Second, MaxSilentTime: 2 * time.Second})
	got := f.build(false, "good", "bad", "usesbad", "usesusesbad", "silent", "chatty")
	want := map[string]brief{
		"good":        {Result: Success},
		"bad":         {Result: Failure},
		"usesbad":     {Result: DependencyFailed, FailedDep: "bad"},
		"usesusesbad": {Result: DependencyFailed, FailedDep: "bad"},
		"silent":      {Result: Timeout},
		"chatty":      {Result: Timeout},
	}
	if diff := cmp.Diff(want, briefs(f, got)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bad", "base", "chatty", "good", "silent"}, f.builds()); diff != "" {
		t.Errorf("builds Nix ran (-want +got):\n%s", diff)
	}
	bad := got["bad"]
	if bad.Log == "" {
		t.Fatal("no log kept for bad")
	}
	log, err := readLog(bad.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "failing here") || !strings.Contains(string(log), "the end") {
		t.Errorf("log of bad = %q, want the builder's output", log)
	}
	if bad.Machine != "localhost" || bad.Started.IsZero() || !strings.Contains(bad.Message, "exit code 3") {
		t.Errorf("bad = %+v, want machine, start and the exit code", bad)
	}
}

func TestFailureNotRebuiltUnlessForced(t *testing.T) {
	f := newFixture(t, Options{})
	f.build(false, "bad", "usesbad")
	before := len(f.builds())

	got := f.build(false, "bad", "usesbad", "usesusesbad")
	want := map[string]brief{
		"bad":         {Result: Failure, Cached: true},
		"usesbad":     {Result: DependencyFailed, FailedDep: "bad", Cached: true},
		"usesusesbad": {Result: DependencyFailed, FailedDep: "bad", Cached: true},
	}
	if diff := cmp.Diff(want, briefs(f, got)); diff != "" {
		t.Errorf("second time (-want +got):\n%s", diff)
	}
	if n := len(f.builds()); n != before {
		t.Errorf("%d builds ran for known failures, want none", n-before)
	}

	got = f.build(true, "usesbad")
	if diff := cmp.Diff(map[string]brief{"usesbad": {Result: DependencyFailed, FailedDep: "bad"}}, briefs(f, got)); diff != "" {
		t.Errorf("forced (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bad", "bad", "base", "good"}, f.builds()); diff != "" {
		t.Errorf("builds after forcing (-want +got):\n%s", diff)
	}
}

func TestSharedDerivationsBuiltOnce(t *testing.T) {
	f := newFixture(t, Options{})
	// Two reviews at once, wanting overlapping derivations.
	t1, err := f.pool.Submit(context.Background(), f.wants(false, "shared1", "good"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, t1, func(p Progress) bool { return p.Building > 0 })
	t2, err := f.pool.Submit(context.Background(), f.wants(false, "shared2", "good", "shared1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []*Ticket{t1, t2} {
		for a, o := range f.wait(tk) {
			if o.Result != Success {
				t.Errorf("%s: %s, want success", a, o.Result)
			}
		}
	}
	if diff := cmp.Diff([]string{"base", "good", "shared1", "shared2"}, f.builds()); diff != "" {
		t.Errorf("builds Nix ran (-want +got):\n%s", diff)
	}
	// A third review of the same derivations builds nothing.
	for a, o := range f.build(false, "shared1", "shared2") {
		if !o.Cached {
			t.Errorf("%s: not taken from the results", a)
		}
	}
	if n := len(f.builds()); n != 4 {
		t.Errorf("%d builds after a repeated review, want 4", n)
	}
}

func TestCancelStopsBuild(t *testing.T) {
	f := newFixture(t, Options{})
	tk, err := f.pool.Submit(context.Background(), f.wants(false, "silent"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tk, func(Progress) bool { return len(f.builds()) > 0 })
	start := time.Now()
	tk.Cancel()
	got := f.wait(tk)
	if got["silent"].Result != Cancelled {
		t.Errorf("silent: %s, want cancelled", got["silent"].Result)
	}
	// The pool is free again soon: the next build does not wait for the
	// 60 seconds the cancelled one would have taken.
	if o := f.build(false, "good")["good"]; o.Result != Success {
		t.Errorf("good after cancel: %s", o.Result)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the pool was busy for %s after the cancel", took)
	}
}

// waitFor waits until cond holds for tk's progress, failing the test after
// a deadline.
func waitFor(t *testing.T, tk *Ticket, cond func(Progress) bool) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() bool { return cond(tk.Progress()) },
		func() string { return fmt.Sprintf("condition not met; progress %+v", tk.Progress()) })
}

func TestNoMachineForSystem(t *testing.T) {
	f := newFixture(t, Options{})
	got := f.build(false, "arm", "big")
	for _, a := range []string{"arm", "big"} {
		if o := got[a]; o.Result != Cancelled || !strings.Contains(o.Message, "no machine builds") {
			t.Errorf("%s: %+v, want not built, naming the missing machine", a, o)
		}
	}
	if n := len(f.builds()); n != 0 {
		t.Errorf("%d builds ran", n)
	}
	// Not remembered: a later pool with the right machine builds them.
	if r, _ := f.results.Results(context.Background(), []string{f.drvs["arm"]}); len(r) != 0 {
		t.Errorf("a missing machine was remembered as the derivation's failure: %v", r)
	}
}

func readLog(path string) ([]byte, error) {
	f, err := OpenLog(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// A running build's output can be followed while it runs, and is dropped
// once the build's log is kept.
func TestLiveLog(t *testing.T) {
	f := newFixture(t, Options{MaxSilentTime: 3 * time.Second})
	drv := f.drvs["silent"]
	tk, err := f.pool.Submit(context.Background(), f.wants(false, "silent"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tk, func(Progress) bool {
		b, _, _ := f.pool.Live(drv, 0)
		return strings.Contains(string(b), "going quiet")
	})
	if b, next, running := f.pool.Live(drv, 0); !running || next != len(b) {
		t.Errorf("live: %q next %d running %v", b, next, running)
	}
	o := f.wait(tk)["silent"]
	if o.Result != Timeout || o.Log == "" {
		t.Errorf("silent: %+v", o)
	}
	if _, _, running := f.pool.Live(drv, 0); running {
		t.Error("still live after the build")
	}
}
