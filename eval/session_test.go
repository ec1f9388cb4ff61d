package eval_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// A session's waiting processes answer details exactly as new processes
// do, including an attribute whose details kill the process that asks them
// (the rest is then done by new processes); closing the session ends them.
func TestSessionDetailsAreTheDetailsOfNewProcesses(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{Bulk: 30, NoPR: true, Extra: map[string]string{
		"badtests": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"badtests\";\n  passthru.tests = abort \"no tests here\";\n}\n",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	plain := evaluate(t, ev, repo.Dir, "x86_64-linux")
	waitNoWalkers(t, "Evaluate")
	s, err := ev.Open(ctx, repo.Dir, "x86_64-linux", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := okAttrs(s.Evaluation()), okAttrs(plain); !cmp.Equal(got, want) {
		t.Fatalf("a held evaluation differs from a plain one:\n%s", cmp.Diff(want, got))
	}
	if n := walkers(t); n != 2 {
		t.Fatalf("%d walker processes wait after Open, want 2", n)
	}

	var paths []eval.Path
	for _, a := range s.Evaluation().Attrs {
		if a.OK() {
			paths = append(paths, a.Path)
		}
	}
	want, err := ev.Details(ctx, repo.Dir, "x86_64-linux", paths, false, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Details(ctx, paths, false)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got, want) {
		t.Errorf("details from the waiting processes differ:\n%s", cmp.Diff(want, got))
	}
	if bt := got["badtests"]; bt == nil || bt.Error == nil || !strings.Contains(bt.Error.Message, "no tests here") {
		t.Errorf("badtests: want the abort as its details' error, got %+v", bt)
	}
	if wt := got["withtests"]; wt == nil || len(wt.Tests) != 2 {
		t.Errorf("withtests: want its two tests, got %+v", wt)
	}

	s.Close()
	waitNoWalkers(t, "Close")
	// A closed session still answers, with new processes.
	again, err := s.Details(ctx, []eval.Path{{"hello"}}, false)
	if err != nil || again["hello"] == nil || again["hello"].Error != nil {
		t.Errorf("details after Close: %+v, %v", again["hello"], err)
	}
}

// The processes of a session end with its context.
func TestSessionEndsWithItsContext(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ev.Open(ctx, repo.Dir, "x86_64-linux", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := walkers(t); n != 1 {
		t.Fatalf("%d walker processes wait, want 1", n)
	}
	cancel()
	waitNoWalkers(t, "the end of its context")
}

// waitNoWalkers waits until no walker process is left.
func waitNoWalkers(t *testing.T, after string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() bool { return walkers(t) == 0 },
		func() string { return fmt.Sprintf("%d walker processes left after %s", walkers(t), after) })
}

// walkers counts this process's nix-instantiate children.
func walkers(t *testing.T) int {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	n := 0
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			if strings.TrimSpace(string(comm)) == "nix-instantiate" {
				n++
			}
		}
	}
	return n
}

// A walker that is done takes over half of what a slow one has left; the
// evaluation is exactly the one a single process makes, deaths included
// wherever they fall.
func TestWalkersTakeOverFromASlowOne(t *testing.T) {
	extra := map[string]string{
		// Sorts first, so it holds up the first group of its chunk, for
		// longer than the other chunk takes over its aborts.
		"aaslow": "{ stdenv }:\n\nlet\n  inner = i: builtins.foldl' (a: b: a + b) i (builtins.genList (x: x) 4000);\n" +
			"  spin = builtins.foldl' (a: b: inner a) 1 (builtins.genList (x: x) 3000);\nin\n" +
			"stdenv.mkDerivation {\n  pname = \"aaslow\";\n  version = toString (builtins.div spin spin);\n}\n",
	}
	for _, n := range []string{"bad1", "mmbad", "zzbad1", "zzbad2", "zzbad3"} {
		extra[n] = "{ stdenv }:\n\nabort \"" + n + ": aborted on purpose\"\n"
	}
	repo := testenv.Sample(t, sampleset.Options{Bulk: 2000, NoPR: true, Extra: extra})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	one, err := newEvaluator(t, eval.Options{Workers: 1}).Evaluate(ctx, repo.Dir, "x86_64-linux", 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newEvaluator(t, eval.Options{Workers: 2}).Open(ctx, repo.Dir, "x86_64-linux", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := eval.Handovers(s); n == 0 {
		t.Error("no walker took over from the slow one")
	}
	if !cmp.Equal(s.Evaluation().Attrs, one.Attrs) {
		t.Errorf("the evaluation with handovers differs from one process's:\n%s", cmp.Diff(one.Attrs, s.Evaluation().Attrs))
	}
	for _, n := range []string{"bad1", "mmbad", "zzbad1", "zzbad2", "zzbad3"} {
		if a := s.Evaluation().Attrs[n]; a == nil || a.Error == nil || !strings.Contains(a.Error.Message, n+": aborted on purpose") {
			t.Errorf("%s: want its abort, got %+v", n, a)
		}
	}
}

// Package code cannot list the directory of the walkers' files (where it
// would find the other walkers' request pipes): each walker may read only
// its own directory.
func TestPackageCodeCannotReachOtherWalkersFiles(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"snoop": `{ stdenv }:

let
  own = builtins.head (builtins.filter (e: builtins.match ".*/walk-[^/]*" e.path != null) builtins.nixPath);
  others = builtins.attrNames (builtins.readDir (dirOf own.path));
in
stdenv.mkDerivation {
  pname = "snoop";
  version = builtins.concatStringsSep "-" others;
}
`,
	}})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	a := res.Attrs["snoop"]
	if a == nil || a.Error == nil || !strings.Contains(a.Error.Message, "forbidden in restricted mode") {
		t.Fatalf("snoop: want access to the walkers' directory forbidden, got %+v", a)
	}
	if h := res.Attrs["hello"]; h == nil || !h.OK() {
		t.Errorf("hello: %+v", h)
	}
}
