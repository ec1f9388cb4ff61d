package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// writeConfig writes a configuration file for review and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A read-only Nix store is the machine's fault: the review fails with an
// error that says so (exit 2), nothing of it is remembered, and the review
// run again once the store is writable gives the right report. Before,
// "opening lock file … big-lock: Read-only file system" was stored as the
// evaluation of base and head, and every rerun printed it.
func TestReviewReadOnlyStoreIsNotRemembered(t *testing.T) {
	bin := testenv.FaultyNix(t, testenv.Fault{Program: "nix-instantiate", When: "--eval", Count: 1000,
		Stderr: "error: opening lock file '/nix/var/nix/db/big-lock': Read-only file system"})
	cfg := writeConfig(t, fmt.Sprintf("nix:\n  bin_dir: %s\n", bin))
	data := t.TempDir()
	args := []string{"review", "--sample", "--sample-size", "10", "--no-build", "--config", cfg, "--data-dir", data}
	code, stdout, stderr := basinix(t, args...)
	if code != 2 || !strings.Contains(stderr, "read-only file system") || strings.Contains(stdout, "does not evaluate") {
		t.Fatalf("with a read-only store: exit %d, want 2 naming the read-only store\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	testenv.ClearFaults(t, bin)
	code, stdout, stderr = basinix(t, args...)
	if code != 1 || !strings.Contains(stdout, "added (1): newpkg") || strings.Contains(stdout, "read-only") {
		t.Fatalf("once the store is writable: exit %d, want 1 and the sample's report\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// The limits decide which attributes fail, so they are part of an
// evaluation's cache key: an attribute killed under attr_timeout 1s is
// evaluated again, and evaluates, under 1m.
func TestReviewLimitsAreInTheCacheKey(t *testing.T) {
	testenv.RequireNix(t)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 2, PRExtra: map[string]string{
		"slowish": "{ stdenv }:\n\nlet n = builtins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 2000); in\nstdenv.mkDerivation { pname = \"slowish\"; version = toString n; }\n",
	}})
	data := t.TempDir()
	review := func(timeout string) *report.Report {
		t.Helper()
		js := filepath.Join(t.TempDir(), "r.json")
		cfg := writeConfig(t, "eval:\n  attr_timeout: "+timeout+"\n")
		code, _, stderr := basinix(t, "review", "--no-build", "--config", cfg, "--data-dir", data, "--repo", repo.Dir, "--base", "master", "--head", "pr", "--json", js)
		if code == 2 {
			t.Fatalf("attr_timeout %s: exit 2:\n%s", timeout, stderr)
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var r report.Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	killed := func(r *report.Report) bool {
		for _, e := range r.Systems["x86_64-linux"].EvalErrors {
			if e.Attr == "slowish" && strings.Contains(e.Message, "without progress") {
				return true
			}
		}
		return false
	}
	if r := review("1s"); !killed(r) {
		t.Fatal("slowish evaluated within 1s (it takes 3-5 s here): make it slower, or the test proves nothing")
	}
	if r := review("1m"); killed(r) || r.Systems["x86_64-linux"].Attrs["slowish"] == nil {
		t.Errorf("under attr_timeout 1m, slowish is still killed or missing: the 1s result was reused")
	}
}

// A relative --data-dir works: Nix is given absolute paths only (a
// relative one was read relative to the walker and refused in restricted
// mode, and that refusal was stored as the result).
func TestReviewRelativeDataDir(t *testing.T) {
	testenv.RequireNix(t)
	t.Chdir(t.TempDir())
	code, stdout, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--no-build", "--data-dir", "rel/data")
	if code != 1 || !strings.Contains(stdout, "added (1): newpkg") || strings.Contains(stdout+stderr, "forbidden") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// Faults that pass (the store database busy for two evaluations, the
// build's nix-store killed once by a signal basinix did not send) are
// retried after a short wait: the review gives the sample's right report.
// A fault that lasts ends it with exit 2, naming the fault.
func TestReviewRetriesMachineFaults(t *testing.T) {
	busy := testenv.Fault{Program: "nix-instantiate", When: "--eval", Count: 2, Stderr: "error: SQLite database '/nix/var/nix/db/db.sqlite' is busy"}
	t.Run("faults that pass", func(t *testing.T) {
		bin := testenv.FaultyNix(t, busy, testenv.Fault{Program: "nix-store", When: "--realise", Count: 1, Signal: 9})
		cfg := writeConfig(t, fmt.Sprintf("nix:\n  bin_dir: %s\n", bin))
		code, stdout, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--config", cfg, "--data-dir", t.TempDir())
		if code != 1 || !strings.Contains(stdout, "- `willfail`: failure") || !strings.Contains(stdout, "- `depfails`: dependency-failed") {
			t.Fatalf("exit %d, want 1 and the sample's verdicts\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		for _, prog := range []string{"nix-instantiate", "nix-store"} {
			if n := testenv.FaultsLeft(t, bin, prog); n != 0 {
				t.Errorf("%s: %d faults never reached: the test proves nothing", prog, n)
			}
		}
	})
	t.Run("a build fault that lasts", func(t *testing.T) {
		bin := testenv.FaultyNix(t, testenv.Fault{Program: "nix-store", When: "--realise", Count: 100, Signal: 9})
		cfg := writeConfig(t, fmt.Sprintf("nix:\n  bin_dir: %s\n", bin))
		code, stdout, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--config", cfg, "--data-dir", t.TempDir())
		if code != 2 || !strings.Contains(stderr, "machine's fault") || !strings.Contains(stderr, "signal 9") || strings.Contains(stdout, "newly failing") {
			t.Fatalf("exit %d, want 2 naming the fault and no verdict\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

// git failing on the mirror (the disk full while fetching) is the
// machine's fault too: retried, and the review gives its report.
func TestReviewRetriesGitFaults(t *testing.T) {
	testenv.RequireNix(t)
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	counter := filepath.Join(dir, "left")
	os.WriteFile(counter, []byte("1"), 0o600)
	wrapper := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in *clone*|*fetch*)\n  n=$(cat '%s')\n  if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > '%s'; echo 'fatal: write error: No space left on device' >&2; exit 128; fi;;\nesac\nexec '%s' \"$@\"\n", counter, counter, real)
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	code, stdout, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--no-build", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stdout, "added (1): newpkg") {
		t.Fatalf("exit %d, want 1 and the report\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(counter); strings.TrimSpace(string(b)) != "0" {
		t.Error("git never failed: the test proves nothing")
	}
}
