package review

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// BenchmarkNixpkgsReview measures `basinix review --no-build` on a package
// set of nixpkgs' shape (sampleset.Options.Nixpkgs: one file per package
// under pkgs/by-name/XX/NAME/package.nix, callPackage with function
// arguments, a heavy mkDerivation) against nixpkgs-review's method, in the
// same run: a worktree of the base and one of the merged head, `nix-env
// -qaP --xml --out-path --drv-path` on each, the worktrees removed.
//
//	go test ./review -run '^$' -bench NixpkgsReview -benchtime 1x -timeout 60m
//
// BASINIX_BENCH_ATTRS sets the size (default 20000), BASINIX_BENCH_ROUNDS
// the rounds (default 3), BASINIX_BENCH_BASELINE=moved the baseline of
// nixpkgs-review's own code (one worktree, moved; see nixpkgsReview),
// BASINIX_BENCH_DIR where its files go (a journaled file system: see
// testenv.BenchDir), BASINIX_BENCH_LOG=1 the reviews' debug logs on
// stderr. Each ratio is the median of the rounds' own
// ratios (a round's measurements run one after the other, under the same
// load of a shared machine):
//
//   - cold/nixpkgs-review: the PR's first push, nothing cached, a new data
//     directory;
//   - warm/nixpkgs-review: a second PR against the same base, by a new
//     Reviewer on the same data directory (as a second `basinix review`
//     process would run it): the base's evaluation and the checkouts kept;
//   - the peak resident memory of each side's process tree, and the system
//     time basinix's checkouts took (cold and warm).
//
// BenchmarkNixpkgsMemoryBound measures eval.max_memory_mib's cost.
func BenchmarkNixpkgsReview(b *testing.B) {
	testenv.RequireNix(b)
	size := testenv.EnvInt("BASINIX_BENCH_ATTRS", 20000)
	rounds := testenv.EnvInt("BASINIX_BENCH_ROUNDS", 3)
	dir := testenv.BenchDir(b)
	ctx := context.Background()
	log := testenv.BenchLogger()
	repo, err := sampleset.Generate(filepath.Join(dir, "nixpkgs"), sampleset.Options{Bulk: max(size-40, 0), Nixpkgs: true})
	if err != nil {
		b.Fatal(err)
	}
	second, err := secondPR(repo)
	if err != nil {
		b.Fatal(err)
	}
	// The commits both sides evaluate: the base tip and the PR's first
	// push merged onto it (nix-env dies on the later pushes, whose
	// evalbreaks has an undefined variable), then the second PR's.
	baseline := checkout.New(filepath.Join(dir, "baseline"), log)
	m, err := baseline.Mirror(repo.Dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	base, _ := m.Resolve(ctx, repo.Base)
	merge, err := m.Merge(ctx, base, repo.Pushes[0])
	if err != nil {
		b.Fatal(err)
	}
	head2, _ := m.Resolve(ctx, second)
	merge2, err := m.Merge(ctx, base, head2)
	if err != nil {
		b.Fatal(err)
	}

	cfg := DefaultConfig()
	var reviewCold, reviewWarm, cold, warm []time.Duration
	var memReview, memCold []int64
	var sysCold, sysWarm []time.Duration
	b.ResetTimer()
	for round := range rounds {
		// nixpkgs-review's method, on the first PR and on the second.
		baselineRound := func() {
			for _, pr := range []*[]time.Duration{&reviewCold, &reviewWarm} {
				commits := []string{merge.Base, merge.Commit}
				if pr == &reviewWarm {
					commits = []string{merge2.Base, merge2.Commit}
				}
				syscall.Sync()
				d, peak := measure(b, func() error { return nixpkgsReview(m.Dir, filepath.Join(dir, "wt"), commits, cfg.Eval.Config) })
				*pr = append(*pr, d)
				if pr == &reviewCold {
					memReview = append(memReview, peak)
				}
			}
		}
		// Which side goes first alternates: a step can pay for the
		// writes the one before it left pending.
		if round%2 == 0 {
			baselineRound()
		}
		syscall.Sync()

		c := cfg
		c.DataDir = filepath.Join(dir, fmt.Sprintf("data-%d", round))
		rv, err := New(ctx, c, log)
		if err != nil {
			b.Fatal(err)
		}
		d, peak := measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0], Systems: c.Systems})
			return err
		})
		cold, memCold = append(cold, d), append(memCold, peak)
		_, sys := rv.Workspace().CheckoutTime()
		sysCold = append(sysCold, sys)
		rv.Close()

		rv, err = New(ctx, c, log) // a second process, the same data directory
		if err != nil {
			b.Fatal(err)
		}
		syscall.Sync()
		d, _ = measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: second, Systems: c.Systems})
			return err
		})
		warm = append(warm, d)
		_, sys = rv.Workspace().CheckoutTime()
		sysWarm = append(sysWarm, sys)
		rv.Close()
		if round%2 == 1 {
			baselineRound()
		}

	}
	b.StopTimer()
	b.ReportMetric(ratios(cold, reviewCold), "cold/nixpkgs-review")
	b.ReportMetric(ratios(warm, reviewWarm), "warm/nixpkgs-review")
	b.ReportMetric(float64(testenv.Median(memCold))/(1<<20), "peak-MiB")
	b.ReportMetric(float64(testenv.Median(memReview))/(1<<20), "nixpkgs-review-peak-MiB")
	b.ReportMetric(testenv.Median(sysCold).Seconds(), "checkout-sys-s-cold")
	b.ReportMetric(testenv.Median(sysWarm).Seconds(), "checkout-sys-s-warm")
	b.Logf("%d attributes (nixpkgs' shape), medians of %d rounds: nixpkgs-review's method %s for the first PR (peak %d MiB), %s for the second; basinix cold %s (peak %d MiB, checkouts %s of system time), warm %s (checkouts %s); the rounds' ratios: cold %s, warm %s",
		size, rounds, testenv.Median(reviewCold), testenv.Median(memReview)>>20, testenv.Median(reviewWarm), testenv.Median(cold), testenv.Median(memCold)>>20, testenv.Median(sysCold), testenv.Median(warm), testenv.Median(sysWarm),
		spread(cold, reviewCold), spread(warm, reviewWarm))
}

// BenchmarkNixpkgsMemoryBound measures what eval.max_memory_mib costs on
// the nixpkgs-shaped sample: the review of the PR's first push with the
// bound (BASINIX_BENCH_MEMORY_MIB, default 900: on the 100,000-attribute
// sample walkers must hand over) and without, its report checked equal,
// which goes first alternating by round. The bound changes evaluation
// only: the checkouts are kept between the runs, and the evaluation cache
// is dropped before each.
//
//	BASINIX_BENCH_ATTRS=100000 go test ./review -run '^$' -bench NixpkgsMemoryBound -benchtime 1x -timeout 60m
func BenchmarkNixpkgsMemoryBound(b *testing.B) {
	testenv.RequireNix(b)
	size := testenv.EnvInt("BASINIX_BENCH_ATTRS", 20000)
	rounds := testenv.EnvInt("BASINIX_BENCH_ROUNDS", 2)
	limit := testenv.EnvInt("BASINIX_BENCH_MEMORY_MIB", 900)
	dir := testenv.BenchDir(b)
	ctx := context.Background()
	repo, err := sampleset.Generate(filepath.Join(dir, "nixpkgs"), sampleset.Options{Bulk: max(size-40, 0), Nixpkgs: true})
	if err != nil {
		b.Fatal(err)
	}
	var bounded, unbounded []time.Duration
	var processes, retired []int
	var want *report.Report
	run := func(maxMiB int) time.Duration {
		c := DefaultConfig()
		c.DataDir = filepath.Join(dir, "data")
		c.Eval.MaxMemoryMiB = int64(maxMiB)
		for _, f := range []string{"basinix.db", "basinix.db-wal", "basinix.db-shm"} {
			os.Remove(filepath.Join(c.DataDir, f))
		}
		rv, err := New(ctx, c, testenv.BenchLogger())
		if err != nil {
			b.Fatal(err)
		}
		defer rv.Close()
		syscall.Sync()
		var rep *report.Report
		d, _ := measure(b, func() error {
			rep, err = rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0], Systems: c.Systems})
			return err
		})
		if want == nil {
			want = rep
		} else if diff := cmp.Diff(want.Systems, rep.Systems); diff != "" {
			b.Fatalf("the review with max_memory_mib %d differs (-first +this):\n%s", maxMiB, diff)
		}
		if maxMiB > 0 {
			p, r := 0, 0
			for _, e := range rep.Evaluations {
				p, r = p+e.Processes, r+e.Retired
			}
			processes, retired = append(processes, p), append(retired, r)
		}
		return d
	}
	run(0) // the checkouts, made once
	b.ResetTimer()
	for round := range rounds {
		if round%2 == 0 {
			bounded = append(bounded, run(limit))
			unbounded = append(unbounded, run(0))
		} else {
			unbounded = append(unbounded, run(0))
			bounded = append(bounded, run(limit))
		}
	}
	b.StopTimer()
	b.ReportMetric(ratios(bounded, unbounded), "bounded/unbounded")
	b.Logf("%d attributes (nixpkgs' shape), checkouts kept, medians of %d rounds: max_memory_mib %d %s (walker processes %v, handed over %v), unbounded %s (same report)",
		size, rounds, limit, testenv.Median(bounded), processes, retired, testenv.Median(unbounded))
}

// ratios returns the median of a[i]/b[i].
func ratios(a, b []time.Duration) float64 { return testenv.Median(roundRatios(a, b)) }

// roundRatios returns a[i]/b[i], each round's ratio.
func roundRatios(a, b []time.Duration) []float64 {
	rs := make([]float64, len(a))
	for i := range a {
		rs[i] = float64(a[i]) / float64(b[i])
	}
	return rs
}

// spread formats each round's ratio, for the log: the median alone hides
// how noisy the machine was.
func spread(a, b []time.Duration) string {
	var parts []string
	for _, r := range roundRatios(a, b) {
		parts = append(parts, fmt.Sprintf("%.3f", r))
	}
	return strings.Join(parts, " ")
}

// nixpkgsReview does what the issue measures nixpkgs-review by: a
// worktree of each commit, nix-env over it, the worktree removed. With
// BASINIX_BENCH_BASELINE=moved it does what nixpkgs-review itself does
// (review.py's build_commit): one worktree at the base, nix-env, the same
// worktree moved to the merged head, nix-env, the worktree removed, which
// writes the tree once instead of twice.
func nixpkgsReview(gitDir, under string, commits []string, config string) error {
	nixEnv := func(wt string) []string {
		return []string{"nix-env", "-f", wt, "-qaP", "--xml", "--out-path", "--drv-path", "--arg", "config", config}
	}
	var steps [][]string
	if os.Getenv("BASINIX_BENCH_BASELINE") == "moved" {
		wt := under + "-moved"
		steps = append(steps, []string{"git", "-C", gitDir, "worktree", "add", "--quiet", "--detach", wt, commits[0]}, nixEnv(wt))
		for _, c := range commits[1:] {
			steps = append(steps, []string{"git", "-C", wt, "checkout", "--quiet", "--detach", c}, nixEnv(wt))
		}
		steps = append(steps, []string{"git", "-C", gitDir, "worktree", "remove", "--force", wt})
	} else {
		for i, c := range commits {
			wt := fmt.Sprintf("%s-%d", under, i)
			steps = append(steps,
				[]string{"git", "-C", gitDir, "worktree", "add", "--quiet", "--detach", wt, c},
				nixEnv(wt),
				[]string{"git", "-C", gitDir, "worktree", "remove", "--force", wt})
		}
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil && s[0] != "nix-env" {
			return fmt.Errorf("%s: %v: %s", strings.Join(s[:4], " "), err, out)
		} else if err != nil {
			return fmt.Errorf("nix-env: %v: %.500s", err, out)
		}
	}
	return nil
}

// secondPR adds a branch "pr2" to the sample, off master: libmid 1.0 ->
// 1.2, about as many rebuilds as the first PR. It returns the branch.
func secondPR(repo *sampleset.Repo) (string, error) {
	file := filepath.Join(repo.Dir, repo.Options.PackageFile("libmid"))
	git := func(args ...string) error {
		cmd := exec.Command("git", append([]string{"-C", repo.Dir, "-c", "user.name=bench", "-c", "user.email=bench@example.org"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git("checkout", "--quiet", "-b", "pr2", "master"); err != nil {
		return "", err
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	bumped := strings.Replace(string(body), `version = "1.0";`, `version = "1.2";`, 1)
	if bumped == string(body) {
		return "", fmt.Errorf("%s: no version 1.0 to bump", file)
	}
	if err := os.WriteFile(file, []byte(bumped), 0o644); err != nil {
		return "", err
	}
	if err := git("commit", "--quiet", "-am", "libmid: 1.0 -> 1.2"); err != nil {
		return "", err
	}
	return "pr2", git("checkout", "--quiet", "master")
}
