package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
)

// Local builds in cgroups (real ones: this machine's v1 or v2): a build
// that allocates past its memory limit fails "out of memory (limit N
// MiB)", in its log too, and is not remembered (more memory may build
// it); the same build as big-parallel gets that feature class's larger
// share, and so does one known to need more; one that spins gets its CPU
// quota, not the machine; others build.
// Where no cgroup is usable the test says so and checks the builds go on.
func TestCgroupLimits(t *testing.T) {
	cg, why := nix.DetectCgroups("/sys/fs/cgroup", "basinix-test")
	if cg == nil {
		t.Logf("no usable cgroups here (%s): builds run without limits", why)
		f := newFixture(t, Options{})
		if got := f.build(false, "good"); got["good"].Result != Success {
			t.Errorf("good: %+v", got["good"])
		}
		return
	}
	t.Logf("cgroup v%d", cg.Version)
	f := newFixture(t, Options{Cgroups: cg, JobMemoryMiB: 64, JobCPUs: 0.25, FeatureLimits: map[string]JobLimits{"big-parallel": {MemoryMiB: 1024}},
		Local: Machine{Systems: []string{"x86_64-linux"}, SupportedFeatures: []string{"big-parallel"}, MaxJobs: 2}})

	got := f.build(false, "hungry")
	h := got["hungry"]
	if h.Result != Failure || h.Message != "out of memory (limit 64 MiB)" || h.MachineFault != "" {
		t.Errorf("hungry: %+v, want a failure out of memory (limit 64 MiB)", h)
	}
	if log, err := os.ReadFile(h.Log); err != nil || !strings.Contains(string(log), "basinix: the build was killed: out of memory (limit 64 MiB)") {
		t.Errorf("hungry's log does not say it ran out of memory (%v):\n%s", err, log)
	}
	if kept, _ := f.results.Results(context.Background(), []string{f.drvs["hungry"]}); len(kept) > 0 {
		t.Errorf("hungry's out of memory is remembered: %+v", kept)
	}
	// The same build as big-parallel gets that class's share, and builds.
	if o := f.build(false, "hungrybig")["hungrybig"]; o.Result != Success {
		t.Errorf("hungrybig with big-parallel's 1024 MiB: %+v", o)
	}
	if h.MemoryLimitMiB != 64 {
		t.Errorf("hungry: memory limit %d, want 64 (it needs more)", h.MemoryLimitMiB)
	}
	// Known to need more, it gets it: the group's limit is its need.
	tk, err := f.pool.Submit(context.Background(), []Want{{Drv: f.drvs["hungry"], MemoryMiB: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	if o := f.wait(tk)["hungry"]; o.Result != Success {
		t.Errorf("hungry with 1024 MiB: %+v", o)
	}

	start := time.Now()
	got = f.build(false, "spin", "good")
	wall := time.Since(start)
	if got["spin"].Result != Success || got["good"].Result != Success {
		t.Fatalf("spin %+v, good %+v", got["spin"], got["good"])
	}
	out, err := os.ReadFile(outPath(t, f, "spin"))
	if err != nil {
		t.Fatal(err)
	}
	cpu := shellTimes(t, string(out))
	// Its slot has a quarter of a CPU (good builds in the other slot);
	// without the quota it would use a whole one, 2 s.
	if cpu > time.Second || cpu < 100*time.Millisecond {
		t.Errorf("spin used %s of CPU in 2 s of wall time (batch %s): want about a quarter of a CPU's worth", cpu, wall.Round(time.Millisecond))
	}
	t.Logf("spin: %s of CPU in 2 s", cpu)
}

// outPath is the output of the fixture's attribute name.
func outPath(t *testing.T, f *fixture, name string) string {
	t.Helper()
	res, err := f.runner.Run(context.Background(), nix.Cmd{Program: "nix-store", Args: []string{"--query", "--outputs", f.drvs[name]}})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// shellTimes adds up the user and system times `times` printed (the
// shell's line and its children's).
func shellTimes(t *testing.T, out string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, f := range strings.Fields(out) {
		d, err := time.ParseDuration(f)
		if err != nil {
			t.Fatalf("times printed %q", out)
		}
		total += d
	}
	return total
}

// While the machine is short (of memory or disk), no local build starts;
// once it is not, the waiting build starts (within the pool's 5 s check).
func TestShortMachineWaits(t *testing.T) {
	var short atomic.Bool
	short.Store(true)
	f := newFixture(t, Options{Short: func() string {
		if short.Load() {
			return "free memory 1 MiB is below build.min_free_memory_mib 2048"
		}
		return ""
	}})
	tk, err := f.pool.Submit(context.Background(), f.wants(false, "good"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if b := f.builds(); len(b) > 0 {
		t.Fatalf("built while short: %v", b)
	}
	short.Store(false)
	start := time.Now()
	if got := f.wait(tk); got["good"].Result != Success {
		t.Errorf("good after the machine recovered: %+v", got["good"])
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the build started %s after the machine recovered", d)
	}
}

// The real measurement: thresholds no machine meets are short, naming
// what; none set is never short.
func TestPressure(t *testing.T) {
	if s := (Pressure{MinMemoryMiB: 1 << 30}).Short(); !strings.Contains(s, "free memory") {
		t.Errorf("memory: %q", s)
	}
	if s := (Pressure{MinDiskMiB: 1 << 40, StoreDir: t.TempDir()}).Short(); !strings.Contains(s, "free disk") {
		t.Errorf("disk: %q", s)
	}
	if s := (Pressure{StoreDir: t.TempDir()}).Short(); s != "" {
		t.Errorf("no thresholds: %q", s)
	}
	// PSI: this machine's, which no task waits 100% of the time on, and
	// a file as Linux writes it under pressure.
	if _, err := os.Stat("/proc/pressure/memory"); err == nil {
		if s := (Pressure{MaxMemoryPressure: 100}).Short(); s != "" {
			t.Errorf("real PSI past 100%%: %q", s)
		}
	}
	psi := filepath.Join(t.TempDir(), "memory")
	os.WriteFile(psi, []byte("some avg10=42.50 avg60=30.00 avg300=10.00 total=123\nfull avg10=20.00 avg60=1.00 avg300=0.50 total=45\n"), 0o644)
	if s := (Pressure{MaxMemoryPressure: 10, PSIFile: psi}).Short(); !strings.Contains(s, "memory pressure 42.5%") {
		t.Errorf("PSI 42.5 past 10: %q", s)
	}
	if s := (Pressure{MaxMemoryPressure: 50, PSIFile: psi}).Short(); s != "" {
		t.Errorf("PSI 42.5 under 50: %q", s)
	}
}

// A ticket's progress estimates the building left from its wants'
// estimates: the longest build left, or all of them over the pool's
// slots (2 here), whichever is longer; nothing once all are done.
func TestProgressLeft(t *testing.T) {
	f := newFixture(t, Options{})
	for _, tc := range []struct {
		ests []time.Duration
		want time.Duration
	}{
		{[]time.Duration{40 * time.Minute, 6 * time.Minute, 6 * time.Minute}, 40 * time.Minute},   // the longest
		{[]time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, 30 * time.Minute}, // spread over 2 slots
	} {
		ws := f.wants(false, "silent", "chatty", "usesbad")
		for i := range ws {
			ws[i].Est = tc.ests[i]
		}
		tk, err := f.pool.Submit(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		if p := tk.Progress(); p.Left != tc.want {
			t.Errorf("estimates %v: left %s, want %s", tc.ests, p.Left, tc.want)
		}
		tk.Cancel()
		f.wait(tk)
	}
	ws := f.wants(false, "good")
	ws[0].Est = time.Hour
	tk, err := f.pool.Submit(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	f.wait(tk)
	if p := tk.Progress(); p.Left != 0 {
		t.Errorf("left once built: %s", p.Left)
	}
}

// Machines of different sizes: a big-parallel build goes to the machine
// with the most cores, one known to need more memory than a machine has
// does not go there (the biggest gets it when none has enough), and the
// rest go where the load is least.
func TestRoutingBySize(t *testing.T) {
	f := newFixture(t, Options{})
	small := Machine{Systems: []string{"x86_64-linux"}, SupportedFeatures: []string{"big-parallel"}, MaxJobs: 2, SpeedFactor: 1, Cores: 4, MemoryMiB: 1024}
	big := &Machine{URI: "ssh-ng://builder@big", Systems: []string{"x86_64-linux"}, SupportedFeatures: []string{"big-parallel"}, MaxJobs: 2, SpeedFactor: 1, Cores: 64, MemoryMiB: 65536}
	p, err := New(Options{Local: small, Machines: []*Machine{big}, LogDir: t.TempDir()}, f.runner, &memResults{m: map[string]*Outcome{}}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	route := func(w Want) string {
		t.Helper()
		tk, err := p.Submit(context.Background(), []Want{w})
		if err != nil {
			t.Fatal(err)
		}
		defer tk.Cancel()
		for _, b := range p.schedule() {
			p.mu.Lock()
			b.m.busy = false
			for _, j := range b.jobs {
				j.batch = nil
			}
			p.mu.Unlock()
			for _, j := range b.jobs {
				if j.drv.Path == w.Drv {
					return b.m.Name()
				}
			}
		}
		return "nowhere"
	}
	if got := route(Want{Drv: f.drvs["big"]}); got != "ssh-ng://builder@big" {
		t.Errorf("big-parallel went to %s, want the 64-core machine", got)
	}
	if got := route(Want{Drv: f.drvs["good"], MemoryMiB: 4096}); got != "ssh-ng://builder@big" {
		t.Errorf("a build needing 4 GiB went to %s, want the machine that has it", got)
	}
	if got := route(Want{Drv: f.drvs["base"]}); got != "localhost" {
		t.Errorf("a plain build went to %s, want the local machine (first at equal load)", got)
	}
	if got := route(Want{Drv: f.drvs["shared1"], MemoryMiB: 1 << 20}); got != "ssh-ng://builder@big" {
		t.Errorf("a build needing 1 TiB (more than any machine) went to %s, want the biggest", got)
	}
}

// The building left counts the critical path: usesusesbad needs usesbad,
// which needs bad (all wanted), so their chain is what is left however
// many slots there are.
func TestProgressLeftCountsTheChain(t *testing.T) {
	f := newFixture(t, Options{})
	ws := f.wants(false, "bad", "usesbad", "usesusesbad", "chatty")
	for i, est := range []time.Duration{10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 2 * time.Minute} {
		ws[i].Est = est
	}
	tk, err := f.pool.Submit(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Cancel()
	// (Nix 2.8 tells a batch's outcomes when the batch ends, and chatty
	// never does: nothing is done yet.)
	if p := tk.Progress(); p.Done != 0 || p.Left != 30*time.Minute {
		t.Errorf("done %d, left %s; want 0 and the chain's 30m (the work over 2 slots is 16m)", p.Done, p.Left)
	}
}
