package eval_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/basinix/basinix/eval"
)

// growingSet writes a package set whose evaluation keeps what each
// attribute computed, so that a walker's memory grows with what it walked,
// as nixpkgs' does.
func growingSet(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	set := `{ system ? builtins.currentSystem, config ? { } }:
builtins.listToAttrs (builtins.genList (i: {
  name = "p${toString i}";
  value = derivation {
    name = "p${toString i}";
    inherit system;
    builder = "/bin/sh";
    # kept by the set once evaluated: what makes the walker grow
    payload = builtins.concatStringsSep "," (builtins.genList (j: toString (i * j)) 4000);
  };
}) ` + strconv.Itoa(n) + `)
`
	if err := os.WriteFile(filepath.Join(dir, "default.nix"), []byte(set), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A walker whose memory passes three quarters of max_memory hands the rest
// of its list to a new process at its next group: the evaluation gives
// the unbounded one's result, with more processes and no attribute lost
// to a kill; so do the details asked of the walkers that wait.
func TestSoftMemoryBoundHandsOver(t *testing.T) {
	src := growingSet(t, 6000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	free := newEvaluator(t, eval.Options{Workers: 1})
	want, err := free.Evaluate(ctx, src, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	bounded := newEvaluator(t, eval.Options{Workers: 1, MaxMemory: 200 << 20})
	session, err := bounded.Open(ctx, src, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	got := session.Evaluation()
	t.Logf("unbounded: %d processes; bounded: %d processes, %d retired", want.Processes, got.Processes, got.Retired)
	if len(got.Attrs) != 6000 || len(got.Attrs) != len(want.Attrs) {
		t.Fatalf("%d attributes bounded, %d unbounded", len(got.Attrs), len(want.Attrs))
	}
	for name, a := range want.Attrs {
		if b := got.Attrs[name]; b == nil || b.DrvPath != a.DrvPath || b.Error != nil {
			t.Fatalf("%s: bounded %+v, unbounded %+v", name, b, a)
		}
	}
	// One worker: every process but the last retired; a kill would have
	// added a process to try its suspect alone.
	if got.Retired < 1 || got.Processes != got.Retired+1 {
		t.Errorf("the bounded evaluation took %d processes, %d retired: want every process but the last retired, none killed", got.Processes, got.Retired)
	}
	var paths []eval.Path
	for _, a := range got.Attrs {
		paths = append(paths, a.Path)
	}
	details, err := session.Details(ctx, paths, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if d := details[p.String()]; d == nil || d.Name != p.String() || d.Outputs["out"] == "" {
			t.Fatalf("details of %s: %+v", p, d)
		}
	}
}

// The walkers' memory together is budgeted: past the budget, the largest
// walker hands its list over (here with a budget any walker passes): the
// evaluation gives the unbudgeted one's result, with walkers retired.
func TestMemoryBudgetSharedByWalkers(t *testing.T) {
	src := growingSet(t, 3000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	free := newEvaluator(t, eval.Options{Workers: 3})
	want, err := free.Evaluate(ctx, src, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	budgeted := newEvaluator(t, eval.Options{Workers: 3, MemoryBudget: 1 << 20})
	got, err := budgeted.Evaluate(ctx, src, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unbudgeted: %d processes; budgeted: %d processes, %d retired", want.Processes, got.Processes, got.Retired)
	if got.Retired == 0 {
		t.Errorf("no walker handed over past the budget")
	}
	if len(got.Attrs) != len(want.Attrs) {
		t.Fatalf("%d attributes budgeted, %d not", len(got.Attrs), len(want.Attrs))
	}
	for name, a := range want.Attrs {
		if b := got.Attrs[name]; b == nil || b.DrvPath != a.DrvPath {
			t.Errorf("%s: %+v budgeted, %+v not", name, b, a)
		}
	}
}
