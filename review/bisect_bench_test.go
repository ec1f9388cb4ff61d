package review

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
)

// BenchmarkBisect: a 200-commit history whose package breaks at commit
// 137, bisected, against building the package at every commit, in the same
// run (each on a history of its own, so both build fresh derivations):
//
//	go test ./review -run '^$' -bench Bisect -benchtime 1x
func BenchmarkBisect(b *testing.B) {
	testenv.RequireNix(b)
	const n, breakAt = 200, 137
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	rv := runningReviewer(b, cfg, zerolog.Nop())

	every, everyShas := historyRepo(b, n, breakAt, 1000, 1000, filepath.Join(b.TempDir(), "builds"))
	bis, _ := historyRepo(b, n, breakAt, 1000, 1000, filepath.Join(b.TempDir(), "builds"))
	runner := nix.New("", nil, zerolog.Nop())
	b.ResetTimer()

	start := time.Now()
	m, err := rv.Workspace().Mirror(every)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	trees := &worktrees{m: m}
	for _, sha := range everyShas {
		wt, release, err := trees.get(ctx, sha)
		if err != nil {
			b.Fatal(err)
		}
		a, err := rv.Evaluator().Attribute(ctx, wt.Path, "x86_64-linux", eval.Path{"pkg"})
		release()
		if err != nil || !a.OK() {
			b.Fatalf("evaluate at %s: %v %+v", sha, err, a)
		}
		runner.Run(ctx, nix.Cmd{Program: "nix-store", Args: []string{"--realise", a.DrvPath}}) // fails from 137 on, as it should
	}
	trees.removeAll(zerolog.Nop())
	everyTime := time.Since(start)

	start = time.Now()
	res, err := rv.Bisect(ctx, BisectRequest{Repo: bis, Branch: "main", Attr: "pkg", System: "x86_64-linux"})
	if err != nil {
		b.Fatal(err)
	}
	bisectTime := time.Since(start)
	b.StopTimer()
	if res.FirstBad.Title != "commit 137" {
		b.Fatalf("first bad %q", res.FirstBad.Title)
	}
	b.ReportMetric(bisectTime.Seconds()/everyTime.Seconds(), "bisect/every-commit")
	b.ReportMetric(float64(res.Builds), "builds")
	b.ReportMetric(float64(res.Evaluations), "evaluations")
	b.Logf("%d commits, break at %d: bisect %s (%d evaluations, %d builds) against building at every commit %s (%d evaluations, %d builds)",
		n, breakAt, bisectTime, res.Evaluations, res.Builds, everyTime, n, n)
}
