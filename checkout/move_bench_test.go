package checkout_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// BenchmarkMove measures moving a kept checkout of the nixpkgs-shaped
// sample (one file per package, sampleset.Options.Nixpkgs) between the
// base and the PR's first push, as a review moves it from the base to the
// head: by the commits' difference (moveByDiff) against the two-tree
// `read-tree -u --reset FROM TO` it replaced, in one run, alternating which
// goes first.
//
//	BASINIX_BENCH_DIR=/mnt/benchfs go test ./checkout -run '^$' -bench Move -benchtime 1x
//
// BASINIX_BENCH_ATTRS sets the size (default 20000), BASINIX_BENCH_ROUNDS
// the moves each way takes (default 20). It reports the median move of
// each (wall time, leasing the checkout included) and their ratio.
func BenchmarkMove(b *testing.B) {
	size := testenv.EnvInt("BASINIX_BENCH_ATTRS", 20000)
	rounds := testenv.EnvInt("BASINIX_BENCH_ROUNDS", 20)
	dir := testenv.BenchDir(b)
	repo, err := sampleset.Generate(filepath.Join(dir, "nixpkgs"), sampleset.Options{Bulk: max(size-40, 0), Nixpkgs: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	m, err := checkout.New(filepath.Join(dir, "data"), testenv.BenchLogger()).Mirror(repo.Dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	base, _ := m.Resolve(ctx, repo.Base)
	head, _ := m.Resolve(ctx, repo.Pushes[0])
	wt, err := m.Worktree(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	// move takes the checkout to the other commit and back, and returns
	// the two moves' times.
	move := func() []time.Duration {
		var took []time.Duration
		for _, commit := range []string{head, base} {
			wt.Release()
			start := time.Now()
			if wt, err = m.Worktree(ctx, commit); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		return took
	}
	move() // the first move after a new tree dates its index (see checkout)
	var diff, readTree []time.Duration
	b.ResetTimer()
	for round := range rounds {
		ways := []func(){
			func() { diff = append(diff, move()...) },
			func() {
				restore := checkout.SetMoveByReadTree(true)
				defer restore()
				readTree = append(readTree, move()...)
			},
		}
		if round%2 == 1 {
			slices.Reverse(ways)
		}
		for _, way := range ways {
			way()
		}
	}
	b.StopTimer()
	wt.Release()
	d, r := testenv.Median(diff), testenv.Median(readTree)
	b.ReportMetric(d.Seconds()*1000, "diff-ms/move")
	b.ReportMetric(r.Seconds()*1000, "read-tree-ms/move")
	b.ReportMetric(float64(d)/float64(r), "diff/read-tree")
	b.Logf("the %d-attribute nixpkgs-shaped sample, %d moves each way: by the difference %v (%v-%v), by read-tree %v (%v-%v)",
		size, len(diff), d, slices.Min(diff), slices.Max(diff), r, slices.Min(readTree), slices.Max(readTree))
}
