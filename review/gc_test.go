package review

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/store"
)

// gcFixture is a store with a tracked branch of two tips, an open PR, a
// PR closed now and a remembered failure, over real derivations built in
// the real store: src is a fixed-output derivation app needs.
type gcFixture struct {
	drv, out map[string]string // by name: src, app1, app2, open, closed, bad
}

func nixStore(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(string(mustOutput(t, "nix-store", args...)))
}

func newGCFixture(t *testing.T, rv *Reviewer) *gcFixture {
	t.Helper()
	ctx := context.Background()
	nonce := filepath.Base(t.TempDir())
	content := "source of " + nonce + "\n"
	sum := sha256.Sum256([]byte(content))
	expr := fmt.Sprintf(`let
  mk = name: script: extra: derivation ({
    inherit name;
    system = builtins.currentSystem;
    nonce = %q;
    builder = "/bin/sh";
    args = [ "-c" script ];
  } // extra);
  src = mk "src-1.0.tar" "printf %%s \"$content\" > $out" { content = %q; outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = %q; };
in {
  inherit src;
  app1 = mk "app-1.0" "read x < ${src}; echo 1 > $out" { };
  app2 = mk "app-2.0" "read x < ${src}; echo 2 > $out" { };
  open = mk "open-1.0" "echo open > $out" { };
  closed = mk "closed-1.0" "echo closed > $out" { };
  bad = mk "bad-1.0" "exit 1" { };
}
`, nonce, content, hex.EncodeToString(sum[:]))
	file := filepath.Join(t.TempDir(), "set.nix")
	if err := os.WriteFile(file, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &gcFixture{drv: map[string]string{}, out: map[string]string{}}
	var recs []*store.BuildRecord
	for _, name := range []string{"src", "app1", "app2", "open", "closed", "bad"} {
		drv := strings.TrimSpace(string(mustOutput(t, "nix-instantiate", file, "-A", name)))
		f.drv[name] = drv
		res := build.Success
		if name == "bad" {
			res = build.Failure
		} else {
			f.out[name] = nixStore(t, "--realise", drv)
		}
		recs = append(recs, &store.BuildRecord{DrvPath: drv, Result: string(res)})
	}
	st := rv.Store()
	if err := st.PutBuilds(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i, app := range []string{"app1", "app2"} {
		if err := st.PutTip(ctx, "o/r", "main", store.Tip{Commit: fmt.Sprintf("c%d", i)}, []store.AttrChange{{System: "x86_64-linux", Attr: "app", DrvPath: f.drv[app]}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for pr, name := range map[int]string{1: "open", 2: "closed"} {
		id, _, _, err := st.AddRevision(ctx, store.Revision{Repo: "o/r", InstallationID: 1, CloneURL: "file:///r", PR: pr, HeadSHA: "h" + name, BaseRef: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PublishRevision(ctx, id, []byte(`{}`), []store.Verdict{{System: "x86_64-linux", Attr: name, Change: "added", DrvPath: f.drv[name], Verdict: "new-succeeding"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ClosePR(ctx, "o/r", 2, false); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustOutput(t *testing.T, program string, args ...string) []byte {
	t.Helper()
	out, err := execOutput(program, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", program, args, err)
	}
	return out
}

// rootsOf names each root's paths by the fixture's names.
func (f *gcFixture) rootsOf(rep *GCReport) map[string][]string {
	byPath := map[string]string{}
	for n, p := range f.out {
		byPath[p] = n
	}
	for n, p := range f.drv {
		byPath[p] = n + ".drv"
	}
	out := map[string][]string{}
	for _, r := range rep.Roots {
		names := []string{}
		for _, p := range r.paths {
			if n, ok := byPath[p]; ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		label := r.Name + " (" + r.Policy
		if r.Until != nil {
			label += ", until"
		}
		out[label+")"] = names
	}
	return out
}

// Each policy keeps what it says: fixed-output the sources of the latest
// tip, all the outputs of the latest N tips, archive every one; an open
// PR's outputs are kept, a closed one's until pr_keep has passed; the
// .drv of a remembered failure is kept. A dry run changes no root.
func TestGCPolicies(t *testing.T) {
	testenv.RequireNix(t)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	rv := runningReviewer(t, cfg, testenv.Logger(t))
	f := newGCFixture(t, rv)
	ctx := context.Background()

	prs := map[string][]string{
		"pr o/r#1 (pr)":        {"open"},
		"pr o/r#2 (pr, until)": {"closed"},
		"failures (failures)":  {"bad.drv"},
	}
	for _, c := range []struct {
		policy      string
		evaluations int
		branch      []string
		unkept      int
	}{
		{GCFixedOutput, 3, []string{"src"}, 2},
		{GCAll, 1, []string{"app2"}, 2}, // app1 and src
		{GCAll, 2, []string{"app1", "app2"}, 1},
		{GCArchive, 1, []string{"app1", "app2"}, 1},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.policy, c.evaluations), func(t *testing.T) {
			rv.cfg.GC.Branches = map[string]string{"main": c.policy}
			rv.cfg.GC.Evaluations = c.evaluations
			rep, err := rv.GC(ctx, GCOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"branch o/r main (" + c.policy + ")": c.branch}
			for k, v := range prs {
				want[k] = v
			}
			if d := cmp.Diff(want, f.rootsOf(rep)); d != "" {
				t.Errorf("roots (-want +got):\n%s", d)
			}
			if rep.Unkept != c.unkept {
				t.Errorf("%d outputs unkept, want %d: %v", rep.Unkept, c.unkept, rep.UnkeptSample)
			}
			for _, r := range rep.Roots {
				if r.Paths > 0 && r.NarSize == 0 {
					t.Errorf("%s: no size", r.Name)
				}
			}
		})
	}
	if _, err := os.Stat(rv.rootsDir()); !os.IsNotExist(err) {
		t.Errorf("a dry run made roots: %v", err)
	}
	// After pr_keep, the closed PR's outputs are no longer kept.
	rep, err := rv.GC(ctx, GCOptions{DryRun: true, Now: time.Now().Add(cfg.GC.PRKeep + time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.rootsOf(rep)["pr o/r#2 (pr, until)"]; ok {
		t.Errorf("the closed PR is kept past pr_keep: %v", f.rootsOf(rep))
	}
	// Rooted for real: each root is a link whose target references the paths.
	rv.cfg.GC.Branches = map[string]string{"*": GCFixedOutput}
	if rep, err = rv.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Roots {
		target, err := os.Readlink(r.Link)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		refs, err := rv.nix.References(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(refs, r.paths) {
			t.Errorf("%s roots %v, want %v", r.Name, refs, r.paths)
		}
	}
}

// Collecting garbage removes what no policy keeps and nothing else. The
// collector runs on a store of its own (local?root=…), never on the
// machine's: the fixture's paths are copied there.
func TestGCCollectSeparateStore(t *testing.T) {
	testenv.RequireNix(t)
	root := filepath.Join(t.TempDir(), "store")
	storeURL := "local?root=" + root
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Nix.Options = map[string]string{"store": storeURL}
	rv := runningReviewer(t, cfg, testenv.Logger(t))
	f := newGCFixture(t, rv)
	var drvs, outs []string
	for _, d := range f.drv {
		drvs = append(drvs, d)
	}
	for _, o := range f.out {
		outs = append(outs, o)
	}
	mustOutput(t, "nix", append([]string{"copy", "--no-check-sigs", "--derivation", "--to", storeURL}, drvs...)...)
	mustOutput(t, "nix", append([]string{"copy", "--no-check-sigs", "--to", storeURL}, outs...)...)

	rep, err := rv.GC(context.Background(), GCOptions{Collect: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Collected == nil || rep.Collected.Paths == 0 {
		t.Fatalf("nothing collected: %+v", rep.Collected)
	}
	valid := func(p string) bool {
		return exec.Command("nix-store", "--option", "store", storeURL, "--check-validity", p).Run() == nil
	}
	for name, keep := range map[string]bool{"src": true, "open": true, "closed": true, "app1": false, "app2": false} {
		if valid(f.out[name]) != keep {
			t.Errorf("%s: valid %v after the collection, want %v", name, !keep, keep)
		}
		// The machine's own store is untouched.
		if exec.Command("nix-store", "--check-validity", f.out[name]).Run() != nil {
			t.Errorf("%s was collected from the machine's store", name)
		}
	}
	if !valid(f.drv["bad"]) {
		t.Error("the remembered failure's .drv was collected")
	}
}

// A branch's policy is looked up by repository and branch, then branch,
// then "*"; an unknown policy is a configuration error.
func TestGCConfig(t *testing.T) {
	c := DefaultConfig().GC
	c.Branches = map[string]string{"*": GCNone, "master": GCAll, "o/r:master": GCArchive}
	for _, tc := range []struct{ repo, branch, want string }{
		{"o/r", "master", GCArchive}, {"o/x", "master", GCAll}, {"o/r", "staging", GCNone},
	} {
		if got := c.Policy(tc.repo, tc.branch); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.repo, tc.branch, got, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.GC.Branches = map[string]string{"master": "forever"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `gc.branches["master"] is "forever"`) {
		t.Errorf("validate: %v", err)
	}
}

func execOutput(program string, args ...string) ([]byte, error) {
	out, err := exec.Command(program, args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return out, fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return out, err
}
