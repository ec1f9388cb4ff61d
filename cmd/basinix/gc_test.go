package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/review"
)

// After a review, `basinix gc --dry-run` names what it would keep (the
// failures' .drv files, so they can be rebuilt) and what it would not
// (the outputs built), and roots nothing; `basinix gc` roots, and a
// second dry run has no root to drop.
func TestGCCommand(t *testing.T) {
	testenv.RequireNix(t)
	data := t.TempDir()
	if code, _, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--data-dir", data); code != 1 {
		t.Fatalf("review: exit %d: %s", code, stderr)
	}
	dryRun := func() review.GCReport {
		t.Helper()
		code, stdout, stderr := basinix(t, "gc", "--dry-run", "--json", "--data-dir", data)
		if code != 0 {
			t.Fatalf("gc --dry-run: exit %d: %s", code, stderr)
		}
		var rep review.GCReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		return rep
	}
	rep := dryRun()
	if len(rep.Roots) != 1 || rep.Roots[0].Name != "failures" || rep.Roots[0].Paths == 0 || rep.Unkept == 0 || !rep.DryRun {
		t.Fatalf("dry run: %+v", rep)
	}
	link := filepath.Join(data, "gcroots", "failures")
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("a dry run made %s: %v", link, err)
	}
	code, stdout, stderr := basinix(t, "gc", "--data-dir", data)
	if code != 0 || !strings.Contains(stdout, "failures (failures) keeps ") || !strings.Contains(stdout, "not kept by any policy: ") {
		t.Fatalf("gc: exit %d\n%s%s", code, stdout, stderr)
	}
	if target, err := os.Readlink(link); err != nil || !strings.HasSuffix(target, "-basinix-gcroot") {
		t.Fatalf("%s → %q: %v", link, target, err)
	}
	if rep := dryRun(); len(rep.Dropped) != 0 {
		t.Errorf("roots to drop right after gc: %v", rep.Dropped)
	}
	for _, bad := range [][]string{{"gc", "--max-freed", "lots"}, {"gc", "--dry-run", "--collect"}, {"gc", "extra"}} {
		if code, _, _ := basinix(t, append(bad, "--data-dir", data)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// `basinix review --diffoscope ATTR` writes diffoscope's report of the
// attribute's outputs and lists it in the JSON report.
func TestReviewDiffoscope(t *testing.T) {
	testenv.RequireNix(t)
	testenv.RequireDiffoscope(t)
	dir := filepath.Join(t.TempDir(), "repo")
	nonce := filepath.Base(t.TempDir())
	set := func(v string) map[string]string {
		return map[string]string{"default.nix": `{ system ? builtins.currentSystem, config ? { } }:
{ pkg = derivation { name = "pkg-` + v + `"; inherit system; nonce = "` + nonce + `"; builder = "/bin/sh";
    args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/share; echo version ` + v + ` > $out/share/VERSION" ]; }; }
`}
	}
	base := testenv.Commit(t, dir, set("1.0"), "base")
	head := testenv.Commit(t, dir, set("1.1"), "head")
	data, js := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
	code, _, stderr := basinix(t, "review", "--repo", dir, "--base", base, "--head", head, "--diffoscope", "pkg", "--json", js, "--data-dir", data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rep := readReport(t, js)
	runs := rep.Systems["x86_64-linux"].Attrs["pkg"].Outputs.Diffoscope
	if len(runs) != 1 || !runs[0].Differs {
		t.Fatalf("diffoscope runs: %+v", runs)
	}
	html := filepath.Join(review.DiffoscopeDir(data), runs[0].File)
	if !strings.Contains(stderr, "diffoscope of pkg (x86_64-linux, out): "+html) {
		t.Errorf("stderr does not say where the report is:\n%s", stderr)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "VERSION") {
		t.Errorf("report: %v", err)
	}
	for _, bad := range []string{"a;b", "nosuch"} {
		if code, _, _ := basinix(t, "review", "--repo", dir, "--base", base, "--head", head, "--diffoscope", bad, "--data-dir", data); code != 2 {
			t.Errorf("--diffoscope %q: exit %d, want 2", bad, code)
		}
	}
}
