package app

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

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
	p := &pipeline{st: st, log: zerolog.Nop()}
	rep := &report.Report{Systems: map[string]*report.System{"x86_64-linux": {Attrs: map[string]*report.AttrEntry{
		"pkg":   {Verdict: report.StillFailing},
		"other": {Verdict: report.StillFailing},
	}}}}
	p.branchFailingSince(ctx, &store.Revision{Repo: "o/r", BaseRef: "main"}, rep)
	if got := rep.Systems["x86_64-linux"].Attrs["pkg"].FailingSince; got != "c2 \"pkg: 1.1, breaking it\" on main" {
		t.Errorf("pkg failing since %q", got)
	}
	if got := rep.Systems["x86_64-linux"].Attrs["other"].FailingSince; got != "" {
		t.Errorf("an attribute without history: %q", got)
	}
}
