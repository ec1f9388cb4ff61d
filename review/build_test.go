package review

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// buildFixture is a sample set whose builds append their output path to
// a file, and a reviewer whose pool runs.
type buildFixture struct {
	rv       *Reviewer
	repo     *sampleset.Repo
	buildLog string
}

func newBuildFixture(t *testing.T) *buildFixture {
	t.Helper()
	testenv.RequireNix(t)
	f := &buildFixture{buildLog: filepath.Join(t.TempDir(), "builds")}
	f.repo = testenv.Sample(t, sampleset.Options{Bulk: 20, BuildLog: f.buildLog})
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Eval.Workers = 2
	cfg.Build.MaxJobs = 4
	// aarch64-linux derivations of the sample run /bin/sh: the local
	// machine builds them when Nix is told it may.
	cfg.Nix.Options = map[string]string{"extra-platforms": "aarch64-linux"}
	cfg.Build.LocalSystems = []string{"x86_64-linux", "aarch64-linux"}
	f.rv = runningReviewer(t, cfg, testenv.Logger(t))
	return f
}

// runningReviewer opens a reviewer whose builder pool runs until the test
// ends.
func runningReviewer(tb testing.TB, cfg Config, log zerolog.Logger) *Reviewer {
	tb.Helper()
	rv, err := New(context.Background(), cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		rv.Close()
	})
	return rv
}

// builds returns the outputs Nix built so far, in build order.
func (f *buildFixture) builds(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.buildLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

type verdictBrief struct {
	Verdict   report.Verdict
	Head      build.Result
	Base      build.Result
	FailedDep string
}

func verdicts(s *report.System) map[string]verdictBrief {
	out := map[string]verdictBrief{}
	for a, e := range s.Attrs {
		out[a] = verdictBrief{e.Verdict, e.Head, e.Base, report.DrvName(e.FailedDependency)}
	}
	return out
}

// Every attribute of the sample PR gets its exact verdict on both systems,
// failed dependencies named and tests built.
func TestReviewBuildVerdicts(t *testing.T) {
	f := newBuildFixture(t)
	rep := review(t, f.rv, Request{Repo: f.repo.Dir, Base: f.repo.Base, Head: f.repo.Head, Systems: []string{"x86_64-linux", "aarch64-linux"}, Build: true})

	ok := verdictBrief{report.StillSucceeding, build.Success, build.Success, ""}
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		want := map[string]verdictBrief{
			"armonly":     ok,
			"bigpkg":      ok,
			"brokenpkg":   {report.SkippedBroken, build.SkippedBroken, build.Unknown, ""},
			"depfails":    {report.NewlyFailing, build.DependencyFailed, build.Success, "willfail-2.0"},
			"evalbreaks":  {report.EvalBroken, "", build.Unknown, ""},
			"evalfixed":   {report.NewlySucceeding, build.Success, "", ""},
			"failing":     {report.StillFailing, build.Failure, build.Failure, ""},
			"hello":       ok,
			"libmid":      ok,
			"newpkg":      {report.NewSucceeding, build.Success, "", ""},
			"oldpkg":      {report.Removed, "", "", ""},
			"usesalias":   ok,
			"willfail":    {report.NewlyFailing, build.Failure, build.Success, ""},
			"willsucceed": {report.NewlySucceeding, build.Success, build.Failure, ""},
			"withtests":   ok,
		}
		if system == "x86_64-linux" {
			want["armonly"] = verdictBrief{report.SkippedUnsupported, build.SkippedUnsupported, build.Unknown, ""}
		}
		got := verdicts(rep.Systems[system])
		for a := range got {
			if strings.HasPrefix(a, "pkg") {
				want[a] = ok // generated packages depending on libmid
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s verdicts (-want +got):\n%s", system, diff)
		}
		tests := map[string]build.Result{}
		for name, te := range rep.Systems[system].Attrs["withtests"].Tests {
			tests[name] = te.Head
		}
		if diff := cmp.Diff(map[string]build.Result{"basic": build.Success, "fails": build.Failure}, tests); diff != "" {
			t.Errorf("%s withtests tests (-want +got):\n%s", system, diff)
		}
		dep := rep.Systems[system].Attrs["depfails"]
		if log, err := readLog(dep.Log); err != nil || !strings.Contains(string(log), "willfail: test suite failed") {
			t.Errorf("%s depfails: log %q does not explain the failure (%v)", system, dep.Log, err)
		}
	}
	if !rep.Breaks() {
		t.Error("the report says nothing is newly failing")
	}
}

// A second review builds nothing; --rebuild-failed builds exactly the
// head's failed derivations again.
func TestReviewReusesBuildResults(t *testing.T) {
	f := newBuildFixture(t)
	req := Request{Repo: f.repo.Dir, Base: f.repo.Base, Head: f.repo.Head, Build: true}
	first := review(t, f.rv, req)
	n := len(f.builds(t))
	if n == 0 {
		t.Fatal("the first review built nothing")
	}
	again := review(t, f.rv, req)
	if got := len(f.builds(t)); got != n {
		t.Errorf("the same review again ran %d builds, want none", got-n)
	}
	if diff := cmp.Diff(verdicts(first.Systems["x86_64-linux"]), verdicts(again.Systems["x86_64-linux"])); diff != "" {
		t.Errorf("verdicts from remembered results differ (-first +again):\n%s", diff)
	}

	req.RebuildFailed = true
	review(t, f.rv, req)
	var rebuilt []string
	for _, out := range f.builds(t)[n:] {
		rebuilt = append(rebuilt, report.DrvName(out+".drv")) // output names end like their derivations'
	}
	sort.Strings(rebuilt)
	if diff := cmp.Diff([]string{"failing-2.0", "willfail-2.0", "withtests-test-fails-1.1"}, rebuilt); diff != "" {
		t.Errorf("--rebuild-failed built (-want +got):\n%s", diff)
	}
}

// Two reviews at once that share derivations (two pushes of one PR) build
// each shared derivation once.
func TestConcurrentReviewsShareBuilds(t *testing.T) {
	f := newBuildFixture(t)
	var wg sync.WaitGroup
	reps := make([]*report.Report, 2)
	for i, head := range []string{f.repo.Pushes[0], f.repo.Head} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := f.rv.Review(context.Background(), Request{Repo: f.repo.Dir, Base: f.repo.Base, Head: head, Systems: []string{"x86_64-linux"}, Build: true})
			if err != nil {
				t.Error(err)
			}
			reps[i] = rep
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]int{}
	for _, out := range f.builds(t) {
		seen[out]++
	}
	for out, n := range seen {
		if n > 1 {
			t.Errorf("%s built %d times", out, n)
		}
	}
	// Both reviews saw libmid's new version built.
	for i, rep := range reps {
		if e := rep.Systems["x86_64-linux"].Attrs["libmid"]; e == nil || e.Head != build.Success {
			t.Errorf("review %d: libmid %+v", i, e)
		}
	}
	if reps[0].Systems["x86_64-linux"].Attrs["libmid"].DrvPath != reps[1].Systems["x86_64-linux"].Attrs["libmid"].DrvPath {
		t.Fatal("the two pushes do not share libmid: the test proves nothing")
	}
}

func readLog(path string) ([]byte, error) {
	f, err := build.OpenLog(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
