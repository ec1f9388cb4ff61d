package eval_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// The sample's attributes are found as nix-env -qaP finds them: top-level
// derivations and the insides of recurseForDerivations sets, nothing else.
func TestEvaluateFindsWhatNixEnvFinds(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{Bulk: 12, NoPR: true})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")

	var got []string
	for k := range res.Attrs {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{
		"armonly", "bigpkg", "brokenpkg", "depfails", "evalbreaks", "evalfixed", "failing", "fixedsrc",
		"hello", "libbase", "libmid", "oldpkg",
	}
	for i := 0; i < 12; i++ {
		want = append(want, sampleset.BulkName(i))
	}
	want = append(want, "python3Packages.requests", "python3Packages.six", "throwing", "usesalias",
		`weird."$(touch /tmp/basinix-pwned)"`, `weird."foo.bar"`, "weird.it's", "willfail", "willsucceed", "withtests")
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}

	if a := res.Attrs["throwing"]; a == nil || a.Error == nil || a.Error.Message != eval.Unexplained {
		t.Errorf("throwing: want an unexplained throw, got %+v", a)
	}
	explained, err := ev.Explain(context.Background(), repo.Dir, "x86_64-linux", []eval.Path{{"throwing"}, {"hello"}})
	if err != nil {
		t.Fatal(err)
	}
	wantExplained := map[string]*eval.Error{"throwing": {Message: "throwing: this package was removed on purpose", File: "pkgs/top-level/all-packages.nix", Line: 30}}
	if diff := cmp.Diff(wantExplained, explained); diff != "" {
		t.Errorf("Explain (-want +got):\n%s", diff)
	}

	tests := []struct {
		attr string
		want eval.Details
	}{
		{"brokenpkg", eval.Details{Name: "brokenpkg-1.0", Position: "pkgs/by-name/brokenpkg/default.nix:4", Broken: true, Supported: true}},
		{"armonly", eval.Details{Name: "armonly-1.0", Position: "pkgs/by-name/armonly/default.nix:4", Supported: false}},
		{"bigpkg", eval.Details{Name: "bigpkg-1.0", Position: "pkgs/by-name/bigpkg/default.nix:4", Supported: true, Features: []string{"big-parallel"}}},
		{"python3Packages.six", eval.Details{Name: "python3.10-six-1.0", Position: "pkgs/top-level/all-packages.nix:34", Supported: true}},
	}
	var paths []eval.Path
	for _, tc := range tests {
		paths = append(paths, res.Attrs[tc.attr].Path)
	}
	details, err := ev.Details(context.Background(), repo.Dir, "x86_64-linux", paths, false, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.attr, func(t *testing.T) {
			d := details[tc.attr]
			if d == nil {
				t.Fatal("no details")
			}
			if d.Outputs["out"] == "" {
				t.Errorf("want an out path, got %v", d.Outputs)
			}
			got := *d
			got.Outputs = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := os.Stat(repo.Dir + "/result"); err == nil {
		t.Error("evaluation wrote a result link")
	}
}

// Attribute names with quotes, dots and "$(…)" reach Nix only as JSON data:
// they evaluate, and no shell ever runs them.
func TestAttributeNamesAreNeverShellText(t *testing.T) {
	const pwned = "/tmp/basinix-pwned"
	os.Remove(pwned)
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	for _, p := range []eval.Path{{"weird", "$(touch /tmp/basinix-pwned)"}, {"weird", "foo.bar"}, {"weird", "it's"}} {
		a := res.Attrs[p.String()]
		if a == nil || !a.OK() {
			t.Errorf("%s: want a derivation, got %+v", p, a)
		}
		back, err := eval.ParsePath(p.String())
		if err != nil || !cmp.Equal(back, p) {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", p.String(), back, err, p)
		}
	}
	// Their details too go to Nix as data.
	if _, err := ev.Details(context.Background(), repo.Dir, "x86_64-linux", []eval.Path{{"weird", "$(touch /tmp/basinix-pwned)"}}, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("%s exists: an attribute name reached a shell", pwned)
	}
}

func TestDetailsAreEvaluatedOnDemand(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"badtests": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"badtests\";\n  passthru.tests = abort \"no tests here\";\n}\n",
	}})
	sets, err := ev.Details(context.Background(), repo.Dir, "x86_64-linux", []eval.Path{{"withtests"}, {"badtests"}, {"hello"}}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	wt := sets["withtests"]
	if wt == nil || len(wt.Tests) != 2 || wt.Tests["basic"].DrvPath == "" || wt.Tests["fails"].DrvPath == "" {
		t.Errorf("withtests: want basic and fails with drvPaths, got %+v", wt)
	}
	if bt := sets["badtests"]; bt == nil || bt.Error == nil || !strings.Contains(bt.Error.Message, "no tests here") {
		t.Errorf("badtests: want the abort as error, got %+v", bt)
	}
	if h := sets["hello"]; h == nil || len(h.Tests) != 0 {
		t.Errorf("hello: want no tests, got %+v", h)
	}
}

// Evaluation is read-only; details with instantiate write the .drv files of
// the attributes and their tests, so they can be built.
func TestDetailsInstantiate(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1})
	// A package of its own, so its derivations are new to the store.
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, BuildLog: t.TempDir() + "/builds"})
	ctx := context.Background()
	drvs := func(instantiate bool) []string {
		sets, err := ev.Details(ctx, repo.Dir, "x86_64-linux", []eval.Path{{"withtests"}}, false, instantiate)
		if err != nil {
			t.Fatal(err)
		}
		d := sets["withtests"]
		if d == nil || len(d.Tests) != 2 {
			t.Fatalf("withtests details: %+v", d)
		}
		res, err := ev.Evaluate(ctx, repo.Dir, "x86_64-linux", 1)
		if err != nil {
			t.Fatal(err)
		}
		return []string{res.Attrs["withtests"].DrvPath, d.Tests["basic"].DrvPath, d.Tests["fails"].DrvPath}
	}
	for _, p := range drvs(false) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written by a read-only evaluation", p)
		}
	}
	for _, p := range drvs(true) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not instantiated: %v", err)
		}
	}
}

// Each system is its own evaluation: platforms decide what is supported.
func TestSystems(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	x86 := evaluate(t, ev, repo.Dir, "x86_64-linux")
	arm := evaluate(t, ev, repo.Dir, "aarch64-linux")
	supported := func(system string) bool {
		d, err := ev.Details(context.Background(), repo.Dir, system, []eval.Path{{"armonly"}}, false, false)
		if err != nil {
			t.Fatal(err)
		}
		return d["armonly"].Supported
	}
	if x, a := supported("x86_64-linux"), supported("aarch64-linux"); x || !a {
		t.Errorf("armonly supported: x86_64-linux %v, aarch64-linux %v; want false, true", x, a)
	}
	if x86.Attrs["hello"].DrvPath == arm.Attrs["hello"].DrvPath {
		t.Error("hello has the same drvPath on both systems")
	}
}

// A package set that does not evaluate at all is an Evaluation with Error,
// pinned to the file, not a failure of basinix.
func TestBrokenPackageSet(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	if err := os.WriteFile(repo.Dir+"/pkgs/top-level/all-packages.nix", []byte("{ lib, stdenv, callPackage, pkgs }:\n\n{\n  oops = ;\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || res.Error.File != "pkgs/top-level/all-packages.nix" || res.Error.Line != 4 {
		t.Errorf("want a syntax error at pkgs/top-level/all-packages.nix:4, got %+v", res.Error)
	}
}

// A package set that loops before any attribute is bounded too, and is a
// broken set, not a failure of basinix.
func TestLoopingPackageSet(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1, AttrTimeout: 2 * time.Second, MaxMemory: 1 << 30})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	loop := "{ system ? builtins.currentSystem, config ? { } }:\n\nbuiltins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 1000000)\n"
	if err := os.WriteFile(repo.Dir+"/default.nix", []byte(loop), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, "without progress") {
		t.Errorf("want the set to fail with a time-limit error, got %+v", res.Error)
	}
}

// A fast walk (a group of attributes under one tryEval) finds what the exact
// walk (each attribute under its own) finds, whichever part of an attribute
// fails: its value, an assertion, its drvPath, only its outPath, its
// recurseForDerivations, or a child of a recursed set, in groups early and
// late in the list.
func TestFastWalkFindsWhatTheExactWalkFinds(t *testing.T) {
	drv := func(n, extra string) string {
		return "{ stdenv }:\n\n" + extra + "stdenv.mkDerivation {\n  pname = \"" + n + "\";\n  version = \"1.0\";\n}\n"
	}
	extra := map[string]string{
		"aathrows":    "{ stdenv }:\n\nthrow \"aathrows: removed\"\n",
		"asserts":     drv("asserts", "assert 1 == 2;\n"),
		"drvthrows":   "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"drvthrows\";\n  version = \"1.0\";\n  buildInputs = [ (throw \"drvthrows: no input\") ];\n}\n",
		"outthrows":   "{ stdenv }:\n\n" + "(stdenv.mkDerivation {\n  pname = \"outthrows\";\n  version = \"1.0\";\n}) // { outPath = throw \"outthrows: no out\"; }\n",
		"recthrows":   "{ stdenv }:\n\n{ recurseForDerivations = throw \"recthrows: no flag\"; a = " + "stdenv.mkDerivation { pname = \"a\"; version = \"1\"; }; }\n",
		"nested":      "{ stdenv }:\n\n{\n  recurseForDerivations = true;\n  ok = stdenv.mkDerivation { pname = \"nested-ok\"; version = \"1\"; };\n  bad = throw \"nested.bad: removed\";\n}\n",
		"zzthrows":    "{ stdenv }:\n\nthrow \"zzthrows: removed\"\n",
		"zzdrvthrows": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"zzdrvthrows\";\n  version = \"1.0\";\n  src = throw \"zzdrvthrows: no src\";\n}\n",
	}
	repo := testenv.Sample(t, sampleset.Options{Bulk: 600, NoPR: true, Extra: extra})
	fast := evaluate(t, newEvaluator(t, eval.Options{Workers: 2}), repo.Dir, "x86_64-linux")
	if fast.Processes != 2 {
		// A death would turn the fast walk off for what follows it.
		t.Fatalf("%d processes: want one a worker, none dead", fast.Processes)
	}
	exactEv := newEvaluator(t, eval.Options{Workers: 2})
	eval.WalkExactly(exactEv)
	exact := evaluate(t, exactEv, repo.Dir, "x86_64-linux")

	if diff := cmp.Diff(exact.Attrs, fast.Attrs); diff != "" {
		t.Errorf("fast walk (-exact +fast):\n%s", diff)
	}
	for _, n := range []string{"aathrows", "asserts", "drvthrows", "nested.bad", "zzthrows", "zzdrvthrows"} {
		if a := fast.Attrs[n]; a == nil || a.Error == nil {
			t.Errorf("%s: want an evaluation error, got %+v", n, a)
		}
	}
	for _, n := range []string{"outthrows", "nested.ok", sampleset.BulkName(599)} {
		if a := fast.Attrs[n]; a == nil || !a.OK() {
			t.Errorf("%s: want a derivation, got %+v", n, a)
		}
	}
	if a := fast.Attrs["recthrows.a"]; a != nil {
		t.Errorf("recthrows is not a recursed set, yet its child was walked: %+v", a)
	}
}
