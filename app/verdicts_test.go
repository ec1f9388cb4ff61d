package app

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// A review saved as verdict rows reads back as the report it was, and
// "failing since" follows one attribute's rows back through the PR's
// pushes, stopping at the first push where it did not fail.
func TestVerdictRows(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "basinix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reviewed := func(head string, results map[string]build.Result) (*store.Revision, *report.Report) {
		id, _, _, err := st.AddRevision(ctx, store.Revision{Repo: "o/r", InstallationID: 1, CloneURL: "file:///r", PR: 7, HeadSHA: head, BaseRef: "master"})
		if err != nil {
			t.Fatal(err)
		}
		rep := &report.Report{Base: report.Ref{Ref: "master", Commit: "b"}, Head: report.Ref{Ref: head, Commit: head},
			Evaluations: []report.EvalInfo{{Commit: head, System: "x86_64-linux", Attrs: 40}},
			Systems: map[string]*report.System{
				"x86_64-linux":  {RebuildLabel: "1-10", RebuildCount: 2, EvalErrors: []report.ErrorEntry{{Attr: "broken", Message: "oops", File: "pkgs/broken.nix", Line: 3}}, Attrs: map[string]*report.AttrEntry{}},
				"aarch64-linux": {RebuildLabel: "0", Attrs: map[string]*report.AttrEntry{}},
			}}
		for attr, res := range results {
			e := &report.AttrEntry{Change: "changed", DrvPath: "/nix/store/h-" + attr + ".drv", BaseDrvPath: "/nix/store/b-" + attr + ".drv",
				Head: res, Base: build.Success, Position: "pkgs/" + attr + ".nix:1", Log: "/log/x", Message: "m"}
			e.Verdict = report.StillSucceeding
			if res.Failed() {
				e.Verdict = report.NewlyFailing
			}
			if attr == "withtests" {
				e.Tests = map[string]*report.TestEntry{"basic": {DrvPath: "/nix/store/t.drv", Head: build.Failure, Log: "/log/t"}}
				e.Outputs = &build.OutputDiff{NarSize: build.SizeChange{Base: 100, Head: 120}, ClosureSize: build.SizeChange{Base: 300, Head: 900},
					Files:   &build.FileDiff{Added: 1, Unchanged: 4, Entries: []build.FileChange{{Output: "out", Path: "bin/x", Change: "added", Kind: "executable", HeadSize: 20}}},
					Closure: []build.ClosureChange{{Name: "dep", After: []string{"1.0"}, SizeDelta: 580}}}
			}
			rep.Systems["x86_64-linux"].Attrs[attr] = e
		}
		rev, err := st.Revision(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p := &pipeline{st: st, log: zerolog.Nop()}
		p.failingSince(ctx, rev, rep)
		if err := review.SaveReport(ctx, st, id, rep); err != nil {
			t.Fatal(err)
		}
		if rev, err = st.Revision(ctx, id); err != nil {
			t.Fatal(err)
		}
		return rev, rep
	}
	reviewed("h1", map[string]build.Result{"a": build.Success, "b": build.Failure})
	reviewed("h2", map[string]build.Result{"a": build.Failure, "b": build.Failure, "withtests": build.Success})
	rev, want := reviewed("h3", map[string]build.Result{"a": build.Failure, "b": build.Failure, "withtests": build.Success})

	got, err := review.LoadReport(ctx, st, rev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the review read back differs (-saved +read):\n%s", diff)
	}
	for attr, since := range map[string]string{"a": "push 2 (h2) of this PR", "b": "push 1 (h1) of this PR"} {
		if e := got.Systems["x86_64-linux"].Attrs[attr]; e.FailingSince != since {
			t.Errorf("%s failing since %q, want %q", attr, e.FailingSince, since)
		}
	}
}
