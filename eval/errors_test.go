package eval_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// Each kind of error that builtins.tryEval cannot catch kills the Nix
// process; the failing attribute must get the message and the line, and every
// other attribute must still get its result.
func TestUncatchableErrorIsPinnedToItsAttribute(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2, AttrTimeout: 5 * time.Second, MaxMemory: 1 << 30})
	clean := evaluate(t, ev, testenv.Sample(t, sampleset.Options{Bulk: 30, NoPR: true}).Dir, "x86_64-linux")

	tests := []struct {
		name    string
		body    string
		wantMsg string
		// wantLines are the lines Nix may name: Nix 2.8 names no position
		// for abort and throw, so the innermost frame (the file's
		// function) is what it tells; newer Nix names the call.
		wantLines []int
	}{
		{
			name:      "abort",
			body:      "{ stdenv }:\n\nabort \"bad: aborted on purpose\"\n",
			wantMsg:   "evaluation aborted with the following error message: 'bad: aborted on purpose'",
			wantLines: []int{1, 3},
		},
		{
			name:      "undefined variable",
			body:      "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"bad\";\n  deps = [ notDefined ];\n}\n",
			wantMsg:   "undefined variable 'notDefined'",
			wantLines: []int{5},
		},
		{
			name:      "missing attribute",
			body:      "{ stdenv, pkgs }:\n\nstdenv.mkDerivation {\n  pname = \"bad\";\n  deps = [ pkgs.doesNotExist ];\n}\n",
			wantMsg:   "attribute 'doesNotExist' missing",
			wantLines: []int{5},
		},
		{
			name:      "type error",
			body:      "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"bad\";\n  version = 1 + \"a\";\n}\n",
			wantMsg:   "cannot add a string to an integer",
			wantLines: []int{5},
		},
		{
			name:      "infinite recursion",
			body:      "{ stdenv }:\n\nlet x = x; in\nx\n",
			wantMsg:   "infinite recursion encountered",
			wantLines: []int{3},
		},
		{
			name:      "throw (caught by tryEval; Explain fetches the message)",
			body:      "{ stdenv }:\n\nthrow \"bad: removed\"\n",
			wantMsg:   "bad: removed",
			wantLines: []int{1, 3},
		},
		{
			name:    "loops",
			body:    "{ stdenv }:\n\nbuiltins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 1000000)\n",
			wantMsg: "evaluation killed after 5s without progress (time limit)",
		},
		{
			name:    "eats memory",
			body:    "{ stdenv }:\n\nbuiltins.length (builtins.genList (x: [ x x ]) 200000000)\n",
			wantMsg: "evaluation killed for using more than the memory limit of 1024 MiB",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := testenv.Sample(t, sampleset.Options{Bulk: 30, NoPR: true, Extra: map[string]string{"bad": tc.body}})
			res := evaluate(t, ev, repo.Dir, "x86_64-linux")
			bad := res.Attrs["bad"]
			if bad == nil || bad.Error == nil {
				t.Fatalf("bad: want an error, got %+v", bad)
			}
			if bad.Error.Message == eval.Unexplained {
				explained, err := ev.Explain(context.Background(), repo.Dir, "x86_64-linux", []eval.Path{{"bad"}})
				if err != nil {
					t.Fatal(err)
				}
				bad = &eval.Attr{Path: bad.Path, Error: explained["bad"]}
				if bad.Error == nil {
					t.Fatal("Explain gave no error for bad")
				}
			}
			if !strings.Contains(bad.Error.Message, tc.wantMsg) {
				t.Errorf("bad: message %q does not contain %q", bad.Error.Message, tc.wantMsg)
			}
			if len(tc.wantLines) > 0 {
				if bad.Error.File != "pkgs/by-name/bad/default.nix" || !slices.Contains(tc.wantLines, bad.Error.Line) {
					t.Errorf("bad: error at %s:%d, want pkgs/by-name/bad/default.nix at a line of %v", bad.Error.File, bad.Error.Line, tc.wantLines)
				}
			}
			got := okAttrs(res)
			if diff := cmp.Diff(okAttrs(clean), got); diff != "" {
				t.Errorf("the other attributes (-want +got):\n%s", diff)
			}
		})
	}
}

// An error deep in a recurseForDerivations set is pinned to that attribute;
// its siblings and everything after it still evaluate.
func TestUncatchableErrorInNestedSet(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	path := repo.Dir + "/pkgs/top-level/all-packages.nix"
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(body), "    six = ", "    aaa = abort \"nested\";\n    six = ", 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	bad := res.Attrs["python3Packages.aaa"]
	if bad == nil || bad.Error == nil || !strings.Contains(bad.Error.Message, "nested") || bad.Error.Line != 34 {
		t.Fatalf("python3Packages.aaa: want the abort at all-packages.nix:34, got %+v", bad)
	}
	for _, k := range []string{"python3Packages.requests", "python3Packages.six", "weird.it's", "withtests", "hello"} {
		if a := res.Attrs[k]; a == nil || !a.OK() {
			t.Errorf("%s: want a derivation, got %+v", k, a)
		}
	}
}
