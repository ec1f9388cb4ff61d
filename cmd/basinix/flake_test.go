package main

import (
	"cmp"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// sampleFlake generates the sample flake and a configuration that lets
// basinix fetch its local input.
func sampleFlake(t *testing.T, opt sampleset.FlakeOptions) (*sampleset.FlakeRepo, string) {
	t.Helper()
	testenv.RequireNix(t)
	repo, err := sampleset.GenerateFlake(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return repo, writeConfig(t, fmt.Sprintf("eval:\n  flake_local_inputs: [%s]\n", repo.Inputs))
}

// basinix review on a flake repository: its basinixJobs are reviewed as a
// package set's packages, each job with its verdict, the failed dependency
// named, and the job whose evaluation breaks at its file and line; the
// same for a flake in a directory that the repository's .basinix.toml
// names (with its jobs in an output of its own).
func TestReviewFlake(t *testing.T) {
	for _, dir := range []string{"", "ci"} {
		// The subtests' names put "=" in their data directories: Nix's -I
		// must still take them whole.
		t.Run("dir="+cmp.Or(dir, "."), func(t *testing.T) { reviewFlake(t, dir) })
	}

	// An input the lock does not have: the flake does not evaluate, and the
	// report says to lock it.
	unlocked, err := sampleset.GenerateFlake(t.TempDir(), sampleset.FlakeOptions{Unlocked: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("eval:\n  flake_local_inputs: [%s]\n", unlocked.Inputs))
	code, stdout, stderr := basinix(t, "review", "--no-build", "--config", cfg, "--data-dir", t.TempDir(), "--repo", unlocked.Dir, "--base", "master", "--head", "pr")
	if code != 1 || !strings.Contains(stdout, "the package set does not evaluate: basinix: input unlocked of the flake not locked in flake.lock") {
		t.Errorf("unlocked input: exit %d, want 1 and the flake refused:\n%s\n%s", code, stdout, stderr)
	}
}

func reviewFlake(t *testing.T, dir string) {
	repo, cfg := sampleFlake(t, sampleset.FlakeOptions{Dir: dir})
	js := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := basinix(t, "review", "--config", cfg, "--data-dir", t.TempDir(), "--repo", repo.Dir, "--base", "master", "--head", "pr", "--json", js)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the PR breaks jobs):\n%s\n%s", code, stdout, stderr)
	}
	rep := readReport(t, js)
	s := rep.Systems["x86_64-linux"]
	want := map[string]report.Verdict{
		"changes":  report.NewlyFailing,
		"depfails": report.NewlyFailing,
		"fixed":    report.NewlySucceeding,
		"newjob":   report.NewSucceeding,
		"oldjob":   report.Removed,
	}
	for job, v := range want {
		if e := s.Attrs[job]; e == nil || e.Verdict != v {
			t.Errorf("%s: %+v, want %s", job, e, v)
		}
	}
	if e := s.Attrs["depfails"]; e == nil || report.DrvName(e.FailedDependency) != "brokendep" {
		t.Errorf("depfails: want the failed dependency brokendep, got %+v", e)
	}
	// A flake is a CI: its unchanged jobs get their verdicts too.
	if !rep.Jobs {
		t.Errorf("the report does not say it reviews a flake's jobs")
	}
	for job, v := range map[string]report.Verdict{"passing": report.StillSucceeding, "group.nested": report.StillSucceeding, "failing": report.StillFailing} {
		if e := s.Attrs[job]; e == nil || e.Change != "unchanged" || e.Verdict != v {
			t.Errorf("%s: %+v, want unchanged and %s", job, e, v)
		}
	}
	file := path.Join(dir, "jobs/evalbreaks.nix")
	if len(s.EvalErrors) != 1 || s.EvalErrors[0].Attr != "evalbreaks" || s.EvalErrors[0].File != file || s.EvalErrors[0].Line != 3 {
		t.Errorf("eval errors: %+v, want evalbreaks at %s:3", s.EvalErrors, file)
	}
	if strings.Contains(stdout, "-source/") {
		t.Errorf("the report names the flake's store path instead of the repository's:\n%s", stdout)
	}
}

// basinix bisect pinpoints the commit that broke a flake's job: on the
// sample flake's PR branch (master's commit, then the PR's), the job
// `changes` fails since the PR's commit.
func TestBisectFlakeJob(t *testing.T) {
	repo, cfg := sampleFlake(t, sampleset.FlakeOptions{})
	code, stdout, stderr := basinix(t, "bisect", "--config", cfg, "--data-dir", t.TempDir(), "--repo", repo.Dir, "--branch", "pr", "--attr", "changes")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "fails since") || !strings.Contains(stdout, `"jobs: the PR's changes"`) || !strings.Contains(stdout, `"init: sample flake"`) {
		t.Errorf("bisect of the job changes:\n%s", stdout)
	}
}
