package review

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
)

// outputsSet is a package set whose app's files and closure are written
// by script; a nonce makes its derivations new to the store.
func outputsSet(nonce, version, script string) string {
	return fmt.Sprintf(`{ system ? builtins.currentSystem, config ? { } }:
let
  mk = name: script: derivation {
    inherit name system;
    nonce = %q;
    builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; set -e; " + script) ];
  };
in rec {
  libdep = mk "libdep-1.0" "mkdir -p $out/lib; head -c 5000 /dev/zero > $out/lib/libdep.so";
  newdep = mk "newdep-2.0" "mkdir -p $out/share; head -c 7000 /dev/zero > $out/share/big";
  app = mk "app-%s" ''
    mkdir -p $out/bin $out/share
    printf '#!/bin/sh\nexec ${libdep}/lib/libdep.so\n' > $out/bin/app-wrapper
    chmod +x $out/bin/app-wrapper
    %s
  '';
}
`, nonce, version, script)
}

// A change that adds, removes, changes and grows files of an output, and
// adds a dependency to its closure, is told file by file, in NAR and
// closure sizes, and as the closure's packages; the Markdown report
// lists it.
func TestOutputDiffs(t *testing.T) {
	f := newBuildFixture(t)
	dir, base, head := outputsRepo(t)
	rep := review(t, f.rv, Request{Repo: dir, Base: base, Head: head, Build: true})
	e := rep.Systems["x86_64-linux"].Attrs["app"]
	if e == nil || e.Verdict != report.StillSucceeding {
		t.Fatalf("app: %+v", e)
	}
	o := e.Outputs
	if o == nil || o.Error != "" || o.Files == nil {
		t.Fatalf("outputs: %+v", o)
	}
	got := map[string]string{}
	for _, c := range o.Files.Entries {
		got[c.Output+"/"+c.Path] = fmt.Sprintf("%s %s %d→%d", c.Change, c.Kind, c.BaseSize, c.HeadSize)
	}
	want := map[string]string{
		"out/bin/app":        "changed file 4→4",
		"out/share/old":      "removed file 4→0",
		"out/share/new":      "added file 0→9",
		"out/share/data.bin": "changed file 1000→3000",
		"out/share/deps":     "added file 0→55",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	// The wrapper names libdep, the same on both sides; share/same is equal.
	if o.Files.Added != 2 || o.Files.Removed != 1 || o.Files.Changed != 2 || o.Files.Unchanged < 5 {
		t.Errorf("counts: %+v", o.Files)
	}
	if o.Files.Entries[0].Path != "share/data.bin" {
		t.Errorf("the biggest change is not first: %+v", o.Files.Entries)
	}
	if d := o.NarSize.Delta(); d < 2000 || d > 2600 {
		t.Errorf("NAR size %+v: grew by %d, want about 2,000 + two small files", o.NarSize, d)
	}
	if d := o.ClosureSize.Delta() - o.NarSize.Delta(); d < 7000 || d > 7600 {
		t.Errorf("closure %+v grew by %d beyond the NAR, want newdep's 7,000 bytes and its NAR framing", o.ClosureSize, d)
	}
	closure := map[string]string{}
	for _, c := range o.Closure {
		closure[c.Name] = strings.Join(c.Before, ",") + "→" + strings.Join(c.After, ",")
	}
	if closure["newdep"] != "→2.0" || closure["app"] != "1.0→1.1" || closure["libdep"] != "" {
		t.Errorf("closure changes: %v", closure)
	}

	var md strings.Builder
	if err := report.WriteMarkdown(&md, rep, report.MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"output changes (1)", "| `app` |", "+2 / −1 / ~2", "`newdep: ∅ → 2.0`", "changed `out/share/data.bin` (+2.0 KiB)"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
}

// DiffOutputs bounds what it lists and refuses outputs with too many files.
func TestDiffOutputsLimits(t *testing.T) {
	base, head := t.TempDir(), t.TempDir()
	for i := range 30 {
		if err := os.WriteFile(filepath.Join(head, fmt.Sprintf("f%02d", i)), []byte(strings.Repeat("x", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := build.DiffOutputs(map[string]string{"out": base}, map[string]string{"out": head}, build.DiffLimits{MaxEntries: 10})
	if err != nil {
		t.Fatal(err)
	}
	if d.Added != 30 || len(d.Entries) != 10 || !d.Truncated || d.Entries[0].Path != "f29" {
		t.Errorf("diff: %+v", d)
	}
	if _, err := build.DiffOutputs(nil, map[string]string{"out": head}, build.DiffLimits{MaxFiles: 5}); err == nil {
		t.Error("31 files compared under a bound of 5")
	}
}

// outputsRepo is the repository of TestOutputDiffs: app's files change
// between base and head.
func outputsRepo(t *testing.T) (dir, base, head string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	nonce := filepath.Base(t.TempDir())
	base = testenv.Commit(t, dir, map[string]string{"default.nix": outputsSet(nonce, "1.0", `
    echo one > $out/bin/app
    echo old > $out/share/old
    head -c 1000 /dev/zero > $out/share/data.bin
    echo same > $out/share/same`)}, "base")
	head = testenv.Commit(t, dir, map[string]string{"default.nix": outputsSet(nonce, "1.1", `
    echo two > $out/bin/app
    echo new file > $out/share/new
    head -c 3000 /dev/zero > $out/share/data.bin
    echo same > $out/share/same
    echo ${newdep} > $out/share/deps`)}, "head")
	return dir, base, head
}

// diffoscope, on request, writes an HTML report of what differs in the
// outputs, once per pair of outputs; it is bounded in time, and refuses
// an attribute not built on both sides.
func TestDiffoscope(t *testing.T) {
	testenv.RequireDiffoscope(t)
	f := newBuildFixture(t)
	dir, base, head := outputsRepo(t)
	rep := review(t, f.rv, Request{Repo: dir, Base: base, Head: head, Build: true})
	sys := rep.Systems["x86_64-linux"]
	runs, err := f.rv.Diffoscope(context.Background(), sys.Attrs["app"])
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Output != "out" || !runs[0].Differs || !DiffoscopeName(runs[0].File) {
		t.Fatalf("runs: %+v", runs)
	}
	html, err := os.ReadFile(filepath.Join(DiffoscopeDir(f.rv.cfg.DataDir), runs[0].File))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<html", "bin/app", "share/data.bin"} {
		if !strings.Contains(string(html), s) {
			t.Errorf("the report does not name %q", s)
		}
	}
	again, err := f.rv.Diffoscope(context.Background(), sys.Attrs["app"])
	if err != nil || !cmp.Equal(again, runs) {
		t.Errorf("asked again: %+v %v", again, err)
	}
	if _, err := f.rv.Diffoscope(context.Background(), &report.AttrEntry{Change: "added", Head: build.Success}); err == nil || !strings.Contains(err.Error(), "built on both sides") {
		t.Errorf("an added attribute: %v", err)
	}
	if _, err := f.rv.Diffoscope(context.Background(), sys.Attrs["newdep"]); err == nil || !strings.Contains(err.Error(), "does not touch") {
		t.Errorf("newdep (unchanged): %v", err)
	}
	f.rv.cfg.Outputs.Diffoscope.Timeout = time.Millisecond
	os.RemoveAll(DiffoscopeDir(f.rv.cfg.DataDir))
	if _, err := f.rv.Diffoscope(context.Background(), sys.Attrs["app"]); err == nil || !strings.Contains(err.Error(), "stopped after 1ms") {
		t.Errorf("a 1 ms bound: %v", err)
	}
}
