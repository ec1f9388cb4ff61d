package review

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
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
		if err := FailingSince(ctx, st, rev, rep); err != nil {
			t.Fatal(err)
		}
		if err := SaveReport(ctx, st, id, rep); err != nil {
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

	got, err := LoadReport(ctx, st, rev)
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

// A PR's still-failing package names the commit of the target branch since
// which it fails, from the branch's history.
func TestBranchFailingSince(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// History of pkg on main: c1 builds, c2 fails, c3 fails (another drv).
	for _, h := range []struct{ commit, title, drv, result string }{
		{"c1", "pkg: 1.0", "/nix/store/11111111111111111111111111111111-pkg-1.0.drv", "success"},
		{"c2", "pkg: 1.1, breaking it", "/nix/store/22222222222222222222222222222222-pkg-1.1.drv", "failure"},
		{"c3", "pkg: 1.2", "/nix/store/33333333333333333333333333333333-pkg-1.2.drv", "failure"},
	} {
		if err := st.PutTip(ctx, "o/r", "main", store.Tip{Commit: h.commit, Title: h.title}, []store.AttrChange{{System: "x86_64-linux", Attr: "pkg", DrvPath: h.drv}}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutBuilds(ctx, []*store.BuildRecord{{DrvPath: h.drv, Result: h.result}}); err != nil {
			t.Fatal(err)
		}
	}
	rep := &report.Report{Systems: map[string]*report.System{"x86_64-linux": {Attrs: map[string]*report.AttrEntry{
		"pkg":   {Verdict: report.StillFailing},
		"other": {Verdict: report.StillFailing},
	}}}}
	if err := BranchFailingSince(ctx, st, &store.Revision{Repo: "o/r", BaseRef: "main"}, rep); err != nil {
		t.Fatal(err)
	}
	if got := rep.Systems["x86_64-linux"].Attrs["pkg"].FailingSince; got != "c2 \"pkg: 1.1, breaking it\" on main" {
		t.Errorf("pkg failing since %q", got)
	}
	if got := rep.Systems["x86_64-linux"].Attrs["other"].FailingSince; got != "" {
		t.Errorf("an attribute without history: %q", got)
	}
}
