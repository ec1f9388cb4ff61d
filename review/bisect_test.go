package review

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/store"
)

// historyRepo makes a branch of n commits:
//   - pkg's version changes every 3rd commit (the commits between keep its
//     drvPath) and it fails to build from commit breakAt on;
//   - dep fails from commit depBreak to depFix-1, and usesdep depends on it;
//   - every commit also touches a README, which changes no derivation.
//
// Every build appends its name to the file builds. It returns the
// repository and its commits, oldest first.
func historyRepo(t testing.TB, n, breakAt, depBreak, depFix int, builds string) (string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "history")
	os.MkdirAll(dir, 0o755)
	testenv.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	var shas []string
	for i := 0; i < n; i++ {
		pkgScript := "echo ok > $out"
		if i >= breakAt {
			pkgScript = "echo pkg: tests fail >&2; exit 1"
		}
		depScript := "echo ok > $out"
		if i >= depBreak && i < depFix {
			depScript = "echo dep: broken >&2; exit 1"
		}
		nix := fmt.Sprintf(`{ system ? builtins.currentSystem, config ? { } }:
let
  mk = name: script: deps: derivation {
    inherit name system deps;
    builder = "/bin/sh";
    args = [ "-c" "echo ${name} >> %s; ${script}" ];
  };
in rec {
  pkg = mk "pkg-%d" %q [ ];
  dep = mk "dep-%d" %q [ ];
  usesdep = mk "usesdep-1.0" "echo ok > $out" [ dep ];
}
`, builds, i/3, pkgScript, i/5, depScript)
		os.WriteFile(filepath.Join(dir, "default.nix"), []byte(nix), 0o644)
		os.WriteFile(filepath.Join(dir, "README"), []byte(fmt.Sprintf("commit %d\n", i)), 0o644)
		testenv.Git(t, dir, "add", "-A")
		testenv.Git(t, dir, "commit", "--quiet", "-m", fmt.Sprintf("commit %d", i))
		shas = append(shas, strings.TrimSpace(testenv.Git(t, dir, "rev-parse", "HEAD")))
	}
	return dir, shas
}

func TestBisect(t *testing.T) {
	f := newBuildFixture(t)
	builds := filepath.Join(t.TempDir(), "builds")
	repo, shas := historyRepo(t, 40, 23, 10, 30, builds)
	count := func() int {
		b, _ := os.ReadFile(builds)
		return len(strings.Fields(string(b)))
	}
	distinct := func(from, to int, every int) int { return to/every - from/every + 1 }
	bound := func(k int) int { return int(math.Ceil(math.Log2(float64(k)))) + 1 }

	t.Run("the package itself breaks", func(t *testing.T) {
		before := count()
		res, err := f.rv.Bisect(context.Background(), BisectRequest{Repo: repo, Branch: "main", Attr: "pkg", System: "x86_64-linux"})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstBad.SHA != shas[23] || res.LastGood.SHA != shas[22] || res.FirstBad.Title != "commit 23" {
			t.Errorf("first bad %s (%s), last good %s; want commit 23", res.FirstBad.SHA, res.FirstBad.Title, res.LastGood.SHA)
		}
		// pkg's drvPath changes every 3rd commit and once more at 23.
		if max := bound(distinct(0, 39, 3) + 1); res.Builds > max || count()-before != res.Builds {
			t.Errorf("%d builds (Nix ran %d), want at most %d", res.Builds, count()-before, max)
		}
		if !strings.Contains(res.Cause, "the package itself changed") {
			t.Errorf("cause %q", res.Cause)
		}
	})
	t.Run("a dependency breaks and is fixed later", func(t *testing.T) {
		res, err := f.rv.Bisect(context.Background(), BisectRequest{Repo: repo, Branch: "main", Attr: "usesdep", System: "x86_64-linux", Bad: shas[20]})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstBad.SHA != shas[10] {
			t.Errorf("first bad %q, want commit 10", res.FirstBad.Title)
		}
		if !strings.Contains(res.Cause, "a dependency fails: dep-2") {
			t.Errorf("cause %q", res.Cause)
		}
	})
	t.Run("again: everything is remembered", func(t *testing.T) {
		before := count()
		res, err := f.rv.Bisect(context.Background(), BisectRequest{Repo: repo, Branch: "main", Attr: "pkg", System: "x86_64-linux"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Builds != 0 || count() != before {
			t.Errorf("%d builds the second time", res.Builds)
		}
	})
	t.Run("the branch history gives the bounds", func(t *testing.T) {
		// The history knows pkg built at commit 20 and failed at 30 (two
		// pushes of several commits): only 20..30 is searched.
		ctx := context.Background()
		for _, c := range []struct {
			i      int
			result string
		}{{20, "success"}, {30, "failure"}} {
			wt, err := f.rv.Workspace().Mirror(repo)
			if err != nil {
				t.Fatal(err)
			}
			trees := &worktrees{m: wt}
			tree, release, err := trees.get(ctx, shas[c.i])
			if err != nil {
				t.Fatal(err)
			}
			a, err := f.rv.Evaluator().Attribute(ctx, tree.Path, "x86_64-linux", eval.Path{"pkg"})
			release()
			if err != nil || !a.OK() {
				t.Fatal(err, a)
			}
			f.rv.Store().PutTip(ctx, "o/history", "main", store.Tip{Commit: shas[c.i], Title: fmt.Sprintf("commit %d", c.i)},
				[]store.AttrChange{{System: "x86_64-linux", Attr: "pkg", DrvPath: a.DrvPath}})
			f.rv.Store().PutBuilds(ctx, []*store.BuildRecord{{DrvPath: a.DrvPath, Result: c.result}})
		}
		res, err := f.rv.Bisect(ctx, BisectRequest{Repo: repo, Name: "o/history", Branch: "main", Attr: "pkg", System: "x86_64-linux"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.FromHistory || res.Commits != 11 || res.FirstBad.SHA != shas[23] {
			t.Errorf("from history %v, %d commits searched, first bad %q", res.FromHistory, res.Commits, res.FirstBad.Title)
		}
	})
	t.Run("nothing to bisect", func(t *testing.T) {
		_, err := f.rv.Bisect(context.Background(), BisectRequest{Repo: repo, Branch: "main", Attr: "usesdep", System: "x86_64-linux"})
		if err == nil || !strings.Contains(err.Error(), "does not fail") {
			t.Errorf("error %v, want: does not fail at the tip", err)
		}
	})
}
