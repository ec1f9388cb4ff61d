package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// benchFlake runs a server on a sample flake with BASINIX_BENCH_JOBS
// bulk jobs (default 2,000, one file each).
func benchFlake(b *testing.B) (*appFixture, *sampleset.FlakeRepo, int) {
	testenv.RequireNix(b)
	jobs := testenv.EnvInt("BASINIX_BENCH_JOBS", 2000)
	flake, err := sampleset.GenerateFlake(b.TempDir(), sampleset.FlakeOptions{Bulk: jobs})
	if err != nil {
		b.Fatal(err)
	}
	return newAppRepo(b, &flake.Repo, func(c *Config) { c.Eval.FlakeLocalInputs = []string{flake.Inputs} }), flake, jobs
}

// BenchmarkFlakeEval compares basinix's evaluation of a flake's jobs
// (walkers, Nix's flakes feature off) with `nix eval` of the same jobs'
// drvPaths with Nix's own flakes, in one run, both cold for the commit
// (the first of three rounds, which fetches and copies, is not counted):
//
//	go test ./app -run '^$' -bench FlakeEval -benchtime 1x
func BenchmarkFlakeEval(b *testing.B) {
	f, flake, jobs := benchFlake(b)
	ctx := context.Background()
	testenv.Git(b, flake.Dir, "checkout", "--quiet", "master")
	ev := f.srv.Reviewer().Evaluator()
	var basinixEval, nixEval time.Duration
	for round := range 3 {
		start := time.Now()
		res, err := ev.Evaluate(ctx, flake.Dir, "x86_64-linux", 0)
		if err != nil || res.Error != nil {
			b.Fatalf("evaluate: %v %v", err, res.Error)
		}
		d := time.Since(start)
		if len(res.Attrs) < jobs {
			b.Fatalf("%d jobs evaluated, want %d or more", len(res.Attrs), jobs)
		}
		start = time.Now()
		ref := "git+file://" + flake.Dir + "?rev=" + strings.TrimSpace(testenv.Git(b, flake.Dir, "rev-parse", "HEAD"))
		out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json", ref+"#basinixJobs.x86_64-linux",
			"--apply", `let drvs = v: if v ? drvPath then v.drvPath else builtins.mapAttrs (_: drvs) v; in drvs`).CombinedOutput()
		if err != nil {
			b.Fatalf("nix eval: %v: %s", err, out)
		}
		n := time.Since(start)
		if round > 0 { // the first round fetches and copies
			basinixEval += d
			nixEval += n
		}
	}
	figure(b, "evaluation of %d jobs: basinix %s, nix eval %s: %.2fx", jobs, basinixEval/2, nixEval/2, float64(basinixEval)/float64(nixEval))

}

// BenchmarkFlakeJobs gates a PR of a flake with BASINIX_BENCH_JOBS jobs
// through the server and the fake GitHub:
//
//	go test ./app -run '^$' -bench FlakeJobs -benchtime 1x -timeout 30m
//
// It reports, for the PR opened, the time from the webhook to each job's
// check run being created (p50, p99, all); for a second push that changes
// one job, the GitHub requests per job (every other job unchanged, its
// result known).
func BenchmarkFlakeJobs(b *testing.B) {
	f, flake, jobs := benchFlake(b)
	b.ResetTimer()
	head := f.sha(b, "pr")
	sent := time.Now()
	resp, err := f.gh.Deliver(f.url, "pull_request", "bench-open", f.prEvent(b, "opened", head))
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	var created []time.Duration
	testenv.Eventually(b, 20*time.Minute, func() bool {
		created = created[:0]
		completed := 0
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.HeadSHA == head && strings.HasPrefix(c.Name, "basinix / bulk.") {
				created = append(created, c.Created.Sub(sent))
				if c.Status == "completed" {
					completed++
				}
			}
		}
		return completed == jobs
	}, func() string { return fmt.Sprintf("%d job check runs", len(created)) })
	slices.Sort(created)
	figure(b, "PR opened: %d job check runs created after p50 %s, p99 %s, all %s", len(created),
		created[len(created)/2].Round(time.Millisecond), created[len(created)*99/100].Round(time.Millisecond), created[len(created)-1].Round(time.Millisecond))
	f.waitJobsSummary(b, head)

	// The second push: one job changes.
	testenv.Git(b, flake.Dir, "checkout", "--quiet", "pr")
	os.WriteFile(filepath.Join(flake.Dir, "jobs/newjob.nix"), []byte("{ mk, mkWith }:\n\nmk \"newjob\" \"echo newer > $out\"\n"), 0o644)
	testenv.Git(b, flake.Dir, "commit", "--quiet", "-am", "newjob: newer")
	testenv.Git(b, flake.Dir, "checkout", "--quiet", "master")
	head2 := f.sha(b, "pr")
	before := f.gh.Requests()
	sent = time.Now()
	resp, err = f.gh.Deliver(f.url, "pull_request", "bench-sync", f.prEvent(b, "synchronize", head2))
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	f.waitJobsSummary(b, head2)
	took := time.Since(sent)
	after := f.gh.Requests()
	total := 0
	for op, n := range after {
		total += n - before[op]
	}
	all := jobs + 9 // the bulk and the sample's jobs (oldjob removed)
	figure(b, "second push: all %d job check runs completed after %s; %d GitHub requests, %.2f a job (checks/create %d, checks/update %d, checks/list-for-ref %d)",
		all, took.Round(time.Millisecond), total, float64(total)/float64(all), after["checks/create"]-before["checks/create"],
		after["checks/update"]-before["checks/update"], after["checks/list-for-ref"]-before["checks/list-for-ref"])
}

// waitJobsSummary waits until the jobs summary check run of head is completed.
func (f *appFixture) waitJobsSummary(b testing.TB, head string) {
	testenv.Eventually(b, 20*time.Minute, func() bool {
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.HeadSHA == head && c.Name == "basinix / jobs" && c.Status == "completed" {
				return true
			}
		}
		return false
	}, func() string { return "basinix / jobs not completed on " + head })
}

// figure reports a benchmark's figure on stderr too: the test logger's
// lines would bury it in the benchmark's log.
func figure(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, "FIGURE "+format+"\n", args...)
}
