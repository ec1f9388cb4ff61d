package review

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/sampleset"
)

// BenchmarkReviewNoBuild measures `basinix review --no-build` against
// nixpkgs-review's method (nix-env -qaP --xml --out-path --drv-path on the
// base and on the merged head, one after the other) in the same run, on a
// generated package set:
//
//	go test ./review -run '^$' -bench ReviewNoBuild -benchtime 1x
//
// BASINIX_BENCH_ATTRS sets the size (default 20000), BASINIX_BENCH_ROUNDS
// the rounds (default 5). Reported ratios, each the median of the rounds'
// ratios:
// cold/nixenv (nothing cached: the PR's first push); warm/nixenv (a second
// PR against the same base, whose evaluation is cached: libmid 1.0 -> 1.2,
// about as many rebuilds as the first); warm-errors/nixenv (the first PR's
// last push against the same base: two attributes die of errors tryEval
// cannot catch, and one is an alias error; nix-env cannot evaluate it at
// all); error/clean (one evaluation with an attribute that aborts, against
// the same evaluation without it); and the peak resident memory of the
// whole process tree of each.
func BenchmarkReviewNoBuild(b *testing.B) {
	testenv.RequireNix(b)
	size := testenv.EnvInt("BASINIX_BENCH_ATTRS", 20000)
	rounds := testenv.EnvInt("BASINIX_BENCH_ROUNDS", 5)
	bulk := max(size-40, 0)
	dir := b.TempDir()
	repo, err := sampleset.Generate(filepath.Join(dir, "clean"), sampleset.Options{Bulk: bulk})
	if err != nil {
		b.Fatal(err)
	}
	broken, err := sampleset.Generate(filepath.Join(dir, "broken"), sampleset.Options{Bulk: bulk, NoPR: true,
		Extra: map[string]string{"bad": "{ stdenv }:\n\nabort \"bad: aborted on purpose\"\n"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	log := zerolog.Nop()
	second, err := secondPR(repo)
	if err != nil {
		b.Fatal(err)
	}

	// The baseline evaluates the same two commits basinix does. The head is
	// the PR's first push: nix-env dies on the later pushes, whose
	// evalbreaks has an undefined variable.
	ws := checkout.New(filepath.Join(dir, "baseline"), log)
	m, err := ws.Mirror(repo.Dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	base, _ := m.Resolve(ctx, repo.Base)
	head := repo.Pushes[0]
	merge, err := m.Merge(ctx, base, head)
	if err != nil {
		b.Fatal(err)
	}
	var trees []string
	for _, c := range []string{merge.Base, merge.Commit} {
		wt, err := m.Worktree(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		defer wt.Release()
		trees = append(trees, wt.Path)
	}

	cfg := DefaultConfig()
	var nixenv, cold, warm, warmErr, clean, withErr []time.Duration
	var memNixenv, memCold []int64
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		d, peak := measure(b, func() error {
			for _, tree := range trees {
				cmd := exec.Command("nix-env", "-f", tree, "-qaP", "--xml", "--out-path", "--drv-path", "--arg", "config", cfg.Eval.Config)
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("nix-env: %v: %s", err, out[:min(len(out), 500)])
				}
			}
			return nil
		})
		nixenv, memNixenv = append(nixenv, d), append(memNixenv, peak)

		c := cfg
		c.DataDir = filepath.Join(dir, fmt.Sprintf("data-%d", round))
		rv, err := New(ctx, c, log)
		if err != nil {
			b.Fatal(err)
		}
		d, peak = measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0], Systems: c.Systems})
			return err
		})
		cold, memCold = append(cold, d), append(memCold, peak)
		d, _ = measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: second, Systems: c.Systems})
			return err
		})
		warm = append(warm, d)
		d, _ = measure(b, func() error {
			_, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head, Systems: c.Systems})
			return err
		})
		warmErr = append(warmErr, d)
		rv.Close()

		ev, err := eval.New(nix.New("", nil, log), eval.Options{TempDir: b.TempDir()}, log)
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			src string
			out *[]time.Duration
		}{{trees[0], &clean}, {broken.Dir, &withErr}} {
			d, _ := measure(b, func() error {
				res, err := ev.Evaluate(ctx, tc.src, "x86_64-linux", 0)
				if err == nil && res.Error != nil {
					err = res.Error
				}
				return err
			})
			*tc.out = append(*tc.out, d)
		}
		ev.Close()
	}
	b.StopTimer()

	// The ratio of each round (its measurements run one after the other,
	// under the same load of a shared machine), then their median.
	ratio := func(a, b []time.Duration) float64 {
		rs := make([]float64, len(a))
		for i := range a {
			rs[i] = float64(a[i]) / float64(b[i])
		}
		return testenv.Median(rs)
	}
	b.ReportMetric(ratio(cold, nixenv), "cold/nixenv")
	b.ReportMetric(ratio(warm, nixenv), "warm/nixenv")
	b.ReportMetric(ratio(warmErr, nixenv), "warm-errors/nixenv")
	b.ReportMetric(ratio(withErr, clean), "error/clean")
	b.ReportMetric(float64(testenv.Median(memCold))/(1<<20), "peak-MiB")
	b.ReportMetric(float64(testenv.Median(memNixenv))/(1<<20), "nixenv-peak-MiB")
	b.Logf("%d attributes, medians of %d rounds: nix-env base+head %s (peak %d MiB); basinix cold %s (peak %d MiB), warm %s, warm with errors %s; evaluation clean %s, with an abort %s",
		size, rounds, testenv.Median(nixenv), testenv.Median(memNixenv)>>20, testenv.Median(cold), testenv.Median(memCold)>>20, testenv.Median(warm), testenv.Median(warmErr), testenv.Median(clean), testenv.Median(withErr))
}

// measure runs f and returns its wall time and the peak resident memory of
// this process and all its descendants while it ran, sampled every 100 ms.
// (Sampling every 20 ms took 7% of a core: nothing to a single-threaded
// baseline with a core to spare, 3–4% of the time of a side that keeps both
// cores busy.)
func measure(b *testing.B, f func() error) (time.Duration, int64) {
	var peak int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if rss := treeRSS(os.Getpid()); rss > peak {
				peak = rss
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	err := f()
	d := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	return d, peak
}

// treeRSS sums the resident memory of pid and its descendants, found
// through /proc/PID/task/*/children (reading every process's stat 50 times
// a second would take CPU from what is measured).
func treeRSS(root int) int64 {
	var total int64
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += nix.ResidentBytes(pid)
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(b)) {
				if child, err := strconv.Atoi(c); err == nil {
					stack = append(stack, child)
				}
			}
		}
	}
	return total
}
