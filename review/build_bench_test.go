package review

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
	"github.com/basinix/basinix/store"
)

// dagNix is a DAG of n trivial derivations: derivation i depends on i/2
// and i/3, so the DAG is deep (8 levels for 200) and wide.
const dagNix = `{ n, nonce }:
let
  mk = i: derivation {
    name = "dag-${toString i}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    inherit nonce;
    deps = if i == 0 then [ ] else [ (drv (i / 2)) (drv (i / 3)) ];
    args = [ "-c" "echo built ${toString i}; echo ${toString i} > $out" ];
  };
  drvs = builtins.genList mk n;
  drv = i: builtins.elemAt drvs i;
in drvs
`

// BenchmarkBuildDAG measures basinix's build phase (submit to the pool,
// build, decide each result, keep logs, remember results in SQLite)
// against `nix-store --realise --keep-going -j2` of the same number of
// fresh derivations, in the same run:
//
//	go test ./review -run '^$' -bench BuildDAG -benchtime 1x
//
// BASINIX_BENCH_DRVS sets the size (default 200), BASINIX_BENCH_ROUNDS the
// rounds whose medians are reported (default 3).
func BenchmarkBuildDAG(b *testing.B) {
	testenv.RequireNix(b)
	n := testenv.EnvInt("BASINIX_BENCH_DRVS", 200)
	rounds := testenv.EnvInt("BASINIX_BENCH_ROUNDS", 3)
	ctx := context.Background()
	log := zerolog.Nop()
	dir := b.TempDir()
	expr := filepath.Join(dir, "dag.nix")
	if err := os.WriteFile(expr, []byte(dagNix), 0o644); err != nil {
		b.Fatal(err)
	}
	runner := nix.New("", nil, log)
	instantiate := func() []string {
		nonce := make([]byte, 8)
		rand.Read(nonce)
		res, err := runner.Run(ctx, nix.Cmd{Program: "nix-instantiate", Args: []string{expr, "--arg", "n", fmt.Sprint(n), "--argstr", "nonce", hex.EncodeToString(nonce)}})
		if err != nil {
			b.Fatal(err)
		}
		return strings.Fields(string(res.Stdout))
	}
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pool, err := build.New(build.Options{Local: build.Machine{Systems: []string{"x86_64-linux"}, MaxJobs: 2}, LogDir: filepath.Join(dir, "logs")},
		runner, buildResults{st}, log)
	if err != nil {
		b.Fatal(err)
	}
	poolCtx, stop := context.WithCancel(ctx)
	defer stop()
	go pool.Run(poolCtx)

	var nixStore, basinix []time.Duration
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		drvs := instantiate()
		d, _ := measure(b, func() error {
			_, err := runner.Run(ctx, nix.Cmd{Program: "nix-store", Args: append([]string{"--realise", "--keep-going", "-j2"}, drvs...)})
			return err
		})
		nixStore = append(nixStore, d)

		drvs = instantiate()
		d, _ = measure(b, func() error {
			wants := make([]build.Want, len(drvs))
			for i, drv := range drvs {
				wants[i] = build.Want{Drv: drv}
			}
			t, err := pool.Submit(ctx, wants)
			if err != nil {
				return err
			}
			outs, err := t.Wait(ctx)
			for drv, o := range outs {
				if o.Result != build.Success && err == nil {
					err = fmt.Errorf("%s: %s %s", drv, o.Result, o.Message)
				}
			}
			return err
		})
		basinix = append(basinix, d)
	}
	b.StopTimer()
	b.ReportMetric(float64(testenv.Median(basinix))/float64(testenv.Median(nixStore)), "basinix/nix-store")
	b.Logf("%d derivations, medians of %d rounds: nix-store --realise -j2 %s, basinix build phase %s", n, rounds, testenv.Median(nixStore), testenv.Median(basinix))
}

// BenchmarkReviewBuild runs the full review of the sample PR (evaluate,
// instantiate, build, report), cold (nothing built or cached) and warm
// (the same review again), and reports where the time goes:
//
//	go test ./review -run '^$' -bench ReviewBuild -benchtime 1x
//
// BASINIX_BENCH_ATTRS sets the size of the sample (default 200).
func BenchmarkReviewBuild(b *testing.B) {
	testenv.RequireNix(b)
	size := testenv.EnvInt("BASINIX_BENCH_ATTRS", 200)
	ctx := context.Background()
	dir := b.TempDir()
	// A build log path of its own makes every derivation new to the store.
	repo, err := sampleset.Generate(filepath.Join(dir, "repo"), sampleset.Options{Bulk: max(size-40, 0), BuildLog: filepath.Join(dir, "builds")})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	rv := runningReviewer(b, cfg, zerolog.Nop())

	b.ResetTimer()
	for _, phase := range []string{"cold", "warm"} {
		start := time.Now()
		rep, err := rv.Review(ctx, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head, Systems: cfg.Systems, Build: true})
		if err != nil {
			b.Fatal(err)
		}
		var md strings.Builder
		if err := report.WriteMarkdown(&md, rep, report.MarkdownOptions{}); err != nil {
			b.Fatal(err)
		}
		total := time.Since(start).Seconds()
		tm := rep.Timings
		rendering := total - tm.Total
		b.ReportMetric(total, phase+"-s")
		b.Logf("%s review of %d attributes: %.2f s = git %.2f + evaluate %.2f + compare %.2f + instantiate %.2f + build %.2f + report %.3f",
			phase, size, total, tm.Git, tm.Evaluate, tm.Compare, tm.Instantiate, tm.Build, rendering)
	}
}
