package app

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
	"github.com/rs/zerolog"

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
//	go test ./app -run '^$' -bench NixpkgsReview -benchtime 1x -timeout 60m
//
// BASINIX_BENCH_ATTRS sets the size (default 20000), BASINIX_BENCH_ROUNDS
// the rounds (default 3). Each ratio is the median of the rounds' own
// ratios (a round's measurements run one after the other, under the same
// load of a shared machine):
//
//   - cold/nixpkgs-review: the PR's first push, nothing cached, a new data
//     directory;
//   - warm/nixpkgs-review: a second PR against the same base, by a new
//     Reviewer on the same data directory (as a second `basinix review`
//     process would run it): the base's evaluation and the checkouts kept;
//   - the peak resident memory of each side's process tree, and the system
//     time basinix's checkouts took (cold and warm);
//   - with BASINIX_BENCH_MEMORY_MIB set, bounded/unbounded: the cold review
//     again with eval.max_memory_mib at that value (so that walkers are
//     killed and restarted), its report checked equal to the unbounded one.
func BenchmarkNixpkgsReview(b *testing.B) {
	testenv.RequireNix(b)
	size := envInt("BASINIX_BENCH_ATTRS", 20000)
	rounds := envInt("BASINIX_BENCH_ROUNDS", 3)
	memLimit := envInt("BASINIX_BENCH_MEMORY_MIB", 0)
	dir := b.TempDir()
	ctx := context.Background()
	log := zerolog.Nop()
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
	var reviewCold, reviewWarm, cold, warm, bounded, unboundedAgain []time.Duration
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
		// Which side goes first alternates: on these disks a step can pay
		// for the writes the one before it left pending.
		if round%2 == 0 {
			baselineRound()
		}
		syscall.Sync()

		c := cfg
		c.DataDir = filepath.Join(dir, fmt.Sprintf("data-%d", round))
		var first *report.Report
		rv, err := NewReviewer(ctx, c, log)
		if err != nil {
			b.Fatal(err)
		}
		d, peak := measure(b, func() error {
			first, err = rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0], Systems: c.Systems})
			return err
		})
		cold, memCold = append(cold, d), append(memCold, peak)
		_, sys := rv.ws.CheckoutTime()
		sysCold = append(sysCold, sys)
		rv.Close()

		rv, err = NewReviewer(ctx, c, log) // a second process, the same data directory
		if err != nil {
			b.Fatal(err)
		}
		syscall.Sync()
		d, _ = measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: second, Systems: c.Systems})
			return err
		})
		warm = append(warm, d)
		_, sys = rv.ws.CheckoutTime()
		sysWarm = append(sysWarm, sys)
		rv.Close()
		if round%2 == 1 {
			baselineRound()
		}

		if memLimit > 0 {
			for _, limit := range []int64{int64(memLimit), 0} {
				c := cfg
				c.DataDir = filepath.Join(dir, fmt.Sprintf("data-%d-mem-%d", round, limit))
				if limit > 0 {
					c.Eval.MaxMemoryMiB = limit
				}
				rv, err := NewReviewer(ctx, c, log)
				if err != nil {
					b.Fatal(err)
				}
				syscall.Sync()
				var rep *report.Report
				d, _ := measure(b, func() error {
					rep, err = rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0], Systems: c.Systems})
					return err
				})
				rv.Close()
				if limit > 0 {
					bounded = append(bounded, d)
				} else {
					unboundedAgain = append(unboundedAgain, d)
				}
				if diff := cmp.Diff(first.Systems, rep.Systems); diff != "" {
					b.Fatalf("the review with max_memory_mib %d differs (-unbounded +this):\n%s", limit, diff)
				}
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(ratios(cold, reviewCold), "cold/nixpkgs-review")
	b.ReportMetric(ratios(warm, reviewWarm), "warm/nixpkgs-review")
	b.ReportMetric(float64(median(memCold))/(1<<20), "peak-MiB")
	b.ReportMetric(float64(median(memReview))/(1<<20), "nixpkgs-review-peak-MiB")
	b.ReportMetric(median(sysCold).Seconds(), "checkout-sys-s-cold")
	b.ReportMetric(median(sysWarm).Seconds(), "checkout-sys-s-warm")
	if memLimit > 0 {
		b.ReportMetric(ratios(bounded, unboundedAgain), "bounded/unbounded")
	}
	b.Logf("%d attributes (nixpkgs' shape), medians of %d rounds: nixpkgs-review's method %s for the first PR (peak %d MiB), %s for the second; basinix cold %s (peak %d MiB, checkouts %s of system time), warm %s (checkouts %s)",
		size, rounds, median(reviewCold), median(memReview)>>20, median(reviewWarm), median(cold), median(memCold)>>20, median(sysCold), median(warm), median(sysWarm))
	if memLimit > 0 {
		b.Logf("cold with max_memory_mib %d: %s, without: %s (same report)", memLimit, median(bounded), median(unboundedAgain))
	}
}

// ratios returns the median of a[i]/b[i].
func ratios(a, b []time.Duration) float64 {
	rs := make([]float64, len(a))
	for i := range a {
		rs[i] = float64(a[i]) / float64(b[i])
	}
	return median(rs)
}

// nixpkgsReview does what nixpkgs-review does to evaluate a PR: a worktree
// of each commit, nix-env over it, the worktree removed.
func nixpkgsReview(gitDir, under string, commits []string, config string) error {
	for i, c := range commits {
		wt := fmt.Sprintf("%s-%d", under, i)
		steps := [][]string{
			{"git", "-C", gitDir, "worktree", "add", "--quiet", "--detach", wt, c},
			{"nix-env", "-f", wt, "-qaP", "--xml", "--out-path", "--drv-path", "--arg", "config", config},
			{"git", "-C", gitDir, "worktree", "remove", "--force", wt},
		}
		for _, s := range steps {
			cmd := exec.Command(s[0], s[1:]...)
			cmd.Stdout = nil
			if out, err := cmd.CombinedOutput(); err != nil && s[0] != "nix-env" {
				return fmt.Errorf("%s: %v: %s", strings.Join(s[:4], " "), err, out)
			} else if err != nil {
				return fmt.Errorf("nix-env: %v: %.500s", err, out)
			}
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
