package eval_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
)

// These tests run the evaluator's scheduling (culprits, deaths, hand-overs,
// memory bounds, sessions) against scripted walkers (see scripted_test.go):
// no Nix, a few milliseconds each. The same behaviour against real Nix is
// in errors_test.go, session_test.go and memory_test.go.

const mib = 1 << 20

// scriptedSet is a set of n derivations p0000…, with the given attributes
// beside or instead of them.
func scriptedSet(n int, extra map[string]eval.ScriptedAttr) *eval.ScriptedSet {
	attrs := map[string]eval.ScriptedAttr{}
	for i := range n {
		attrs[fmt.Sprintf("p%04d", i)] = eval.ScriptedAttr{}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	return &eval.ScriptedSet{Attrs: attrs}
}

// scriptedEval evaluates set with opt; Workers defaults to 1.
func scriptedEval(t *testing.T, set *eval.ScriptedSet, opt eval.Options) (*eval.Evaluator, *eval.Session) {
	t.Helper()
	if opt.Workers == 0 {
		opt.Workers = 1
	}
	opt.TempDir = t.TempDir()
	ev, err := eval.New(nil, opt, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	eval.UseScripted(ev, set)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := ev.Open(ctx, t.TempDir(), "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return ev, s
}

// wantAllOK checks that every attribute of set but the failing ones is a
// derivation with its drvPath, and returns the failing ones' errors.
func wantAllOK(t *testing.T, set *eval.ScriptedSet, ev *eval.Evaluation, failing ...string) map[string]string {
	t.Helper()
	if ev.Error != nil {
		t.Fatalf("the set does not evaluate: %v", ev.Error)
	}
	errs := map[string]string{}
	for name := range set.Attrs {
		a := ev.Attrs[name]
		switch {
		case a == nil:
			t.Errorf("%s: no result", name)
		case a.Error != nil:
			errs[name] = a.Error.Message
		case a.DrvPath != eval.ScriptedDrv(eval.Path{name}):
			t.Errorf("%s: drvPath %q", name, a.DrvPath)
		}
	}
	var got []string
	for n := range errs {
		got = append(got, n)
	}
	slices.Sort(got)
	slices.Sort(failing)
	if diff := cmp.Diff(failing, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("failing attributes (-want +got):\n%s", diff)
	}
	return errs
}

// An abort the walker's error context names is charged to its attribute
// at once: one process dies, one carries on with the rest.
func TestScriptedNamedDeathIsChargedAtOnce(t *testing.T) {
	set := scriptedSet(1000, map[string]eval.ScriptedAttr{"p0500": {Abort: "evaluation aborted with the following error message: 'p0500'"}})
	_, s := scriptedEval(t, set, eval.Options{})
	errs := wantAllOK(t, set, s.Evaluation(), "p0500")
	if !strings.Contains(errs["p0500"], "'p0500'") {
		t.Errorf("p0500: %q", errs["p0500"])
	}
	if n := set.Processes(); n != 2 {
		t.Errorf("%d processes, want 2 (the one that died, the one that went on)", n)
	}
}

// A kill names nobody: the group it came in is walked again one record at
// a time, which finds the attribute; the rest goes on after it.
func TestScriptedKillInAGroupIsFoundByAFineWalk(t *testing.T) {
	set := scriptedSet(1000, map[string]eval.ScriptedAttr{"p0600": {Hang: true}})
	_, s := scriptedEval(t, set, eval.Options{AttrTimeout: 5 * time.Millisecond})
	errs := wantAllOK(t, set, s.Evaluation(), "p0600")
	if !strings.Contains(errs["p0600"], "without progress") {
		t.Errorf("p0600: %q", errs["p0600"])
	}
	// The walk, the fine walk of p0600's group that dies on it, the rest.
	if n := set.Processes(); n != 3 {
		t.Errorf("%d processes, want 3", n)
	}
}

// A process killed for the memory it gathered over many attributes blames
// none of them: the suspect is tried alone and evaluates. One that eats
// memory by itself is blamed.
func TestScriptedMemoryKillTriesTheSuspectAlone(t *testing.T) {
	attrs := map[string]eval.ScriptedAttr{"hog": {Memory: 900 * mib}}
	for i := range 1000 {
		attrs[fmt.Sprintf("p%04d", i)] = eval.ScriptedAttr{Memory: mib}
	}
	set := &eval.ScriptedSet{Attrs: attrs, Import: 10 * mib, NoPipes: true}
	_, s := scriptedEval(t, set, eval.Options{MaxMemory: 600 * mib})
	errs := wantAllOK(t, set, s.Evaluation(), "hog")
	if !strings.Contains(errs["hog"], "memory limit of 600 MiB") {
		t.Errorf("hog: %q", errs["hog"])
	}
}

// Past max_deaths the evaluation gives up on what is left, and says so.
func TestScriptedMaxDeaths(t *testing.T) {
	extra := map[string]eval.ScriptedAttr{}
	for i := range 10 {
		extra[fmt.Sprintf("bad%d", i)] = eval.ScriptedAttr{Abort: "evaluation aborted with the following error message: 'bad'"}
	}
	set := scriptedSet(100, extra)
	_, s := scriptedEval(t, set, eval.Options{MaxDeaths: 3})
	given := 0
	for name, a := range s.Evaluation().Attrs {
		if a.Error != nil && strings.HasPrefix(a.Error.Message, "not evaluated: more than 3 attributes") {
			given++
			if !strings.HasPrefix(name, "bad") && name < "bad3" {
				t.Errorf("%s given up before the deaths", name)
			}
		}
	}
	if given == 0 {
		t.Error("nothing was given up after 3 deaths")
	}
	if n := set.Processes(); n != 4 {
		t.Errorf("%d processes, want 4 (3 deaths and the one that gave up)", n)
	}
}

// A walker that is done takes over half of what a slow one has left (here
// one that cannot go on before some walker is cut short): the evaluation
// is the one a single process makes.
func TestScriptedHandOver(t *testing.T) {
	extra := map[string]eval.ScriptedAttr{"bad": {Abort: "evaluation aborted: bad"}}
	// One walker is held up early in its chunk; the other is done first
	// and takes over from it (waiting for the gated one's list if it has
	// not told it yet: see TestScriptedHandOverWaitsForALateList).
	set := scriptedSet(4000, extra)
	set.Attrs["p0001"] = eval.ScriptedAttr{Gated: true}
	two := gatedHandOver(t, set)
	oneSet := scriptedSet(4000, extra)
	_, one := scriptedEval(t, oneSet, eval.Options{Workers: 1})
	if diff := cmp.Diff(one.Evaluation().Attrs, two.Evaluation().Attrs); diff != "" {
		t.Errorf("with hand-overs (-one process +two):\n%s", diff)
	}
	wantAllOK(t, set, two.Evaluation(), "bad")
}

// A walker that is done waits for the list of one still importing the set
// (here one that tells it 300 ms late, and then cannot go on before some
// walker is cut short), and takes over half of it.
func TestScriptedHandOverWaitsForALateList(t *testing.T) {
	set := scriptedSet(4000, nil)
	set.Attrs["p0001"] = eval.ScriptedAttr{Gated: true}
	set.LateList = "p0001"
	two := gatedHandOver(t, set)
	wantAllOK(t, set, two.Evaluation())
}

// gatedHandOver evaluates set, which has a gated attribute, with two
// walkers, and checks that one took over from the other, which opens the
// gate (it would open by itself after 10 s).
func gatedHandOver(t *testing.T, set *eval.ScriptedSet) *eval.Session {
	t.Helper()
	start := time.Now()
	_, two := scriptedEval(t, set, eval.Options{Workers: 2})
	if n := eval.Handovers(two); n == 0 {
		t.Error("the walker that was done did not take over from the gated one")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s: the gate was not opened by a hand-over", took)
	}
	return two
}

// A walker past the soft memory bound hands the rest of its list to a new
// process at the next group: every process but the last retires, nothing
// is killed, every attribute has its result.
func TestScriptedSoftMemoryBound(t *testing.T) {
	attrs := map[string]eval.ScriptedAttr{}
	// A group's memory is small beside the room the bound leaves, as a
	// real set's is: a retiring walker goes on for up to two groups.
	for i := range 10000 {
		attrs[fmt.Sprintf("p%05d", i)] = eval.ScriptedAttr{Memory: 20 << 10}
	}
	set := &eval.ScriptedSet{Attrs: attrs, Import: 100 * mib}
	_, s := scriptedEval(t, set, eval.Options{MaxMemory: 200 * mib})
	ev := s.Evaluation()
	wantAllOK(t, set, ev)
	if ev.Retired < 2 || ev.Processes != ev.Retired+1 {
		t.Errorf("%d processes, %d retired: want every process but the last retired", ev.Processes, ev.Retired)
	}
}

// Past the walkers' shared budget the largest hands over (here a budget
// one walker passes alone, so that it does not hang on timing).
func TestScriptedMemoryBudget(t *testing.T) {
	attrs := map[string]eval.ScriptedAttr{}
	// A walker alone passes the budget after 1,536 attributes (100 MiB of
	// import and 20 KiB each), and a list is cut two groups past where its
	// walker is: each walker's share (about 4,000) must reach beyond that,
	// or a walker that runs before the others start ends its list first.
	for i := range 12000 {
		attrs[fmt.Sprintf("p%05d", i)] = eval.ScriptedAttr{Memory: 20 << 10}
	}
	set := &eval.ScriptedSet{Attrs: attrs, Import: 100 * mib}
	_, s := scriptedEval(t, set, eval.Options{Workers: 3, MemoryBudget: 130 * mib})
	ev := s.Evaluation()
	wantAllOK(t, set, ev)
	if ev.Retired == 0 {
		t.Error("no walker handed over past the budget")
	}
}

// Details are asked of the walkers that wait, not of new processes; where
// walkers cannot wait, new processes give the same answers.
func TestScriptedSessionDetails(t *testing.T) {
	var answers []map[string]*eval.Details
	for _, noPipes := range []bool{false, true} {
		set := scriptedSet(600, map[string]eval.ScriptedAttr{"nested": {Children: map[string]eval.ScriptedAttr{"a": {}, "b": {}}}})
		set.NoPipes = noPipes
		_, s := scriptedEval(t, set, eval.Options{Workers: 2})
		walked := set.Processes()
		var paths []eval.Path
		for k, a := range s.Evaluation().Attrs {
			if a.OK() {
				paths = append(paths, a.Path)
			} else {
				t.Errorf("%s: %+v", k, a)
			}
		}
		d, err := s.Details(context.Background(), paths, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != 602 || d["nested.a"] == nil || d["nested.a"].Name != "nested.a" {
			t.Errorf("pipes %v: %d details, nested.a %+v", !noPipes, len(d), d["nested.a"])
		}
		switch {
		case !noPipes && (set.Processes() != walked || set.Requests() == 0):
			t.Errorf("details took %d new processes and %d requests: want only requests to the waiting walkers", set.Processes()-walked, set.Requests())
		case noPipes && set.Processes() == walked:
			t.Error("without pipes, no new process gave the details")
		}
		answers = append(answers, d)
	}
	if diff := cmp.Diff(answers[0], answers[1]); diff != "" {
		t.Errorf("details from waiting walkers (-) and new processes (+):\n%s", diff)
	}
}

// A set that does not evaluate at all is the evaluation's error; an
// attribute that fails only without aliases is an alias error; the
// machine's fault is no result at all.
func TestScriptedSetErrorsAliasesAndFaults(t *testing.T) {
	t.Run("broken set", func(t *testing.T) {
		set := scriptedSet(10, nil)
		set.Broken = "undefined variable 'oops'"
		_, s := scriptedEval(t, set, eval.Options{})
		if e := s.Evaluation().Error; e == nil || !strings.Contains(e.Message, "oops") {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("alias through a callPackage argument", func(t *testing.T) {
		set := scriptedSet(300, map[string]eval.ScriptedAttr{"usesalias": {Abort: "anonymous function called without required argument 'libfoo_old'", OnlyWithAliases: true}})
		_, s := scriptedEval(t, set, eval.Options{})
		a := s.Evaluation().Attrs["usesalias"]
		if a == nil || !a.AliasError || a.DrvPath != eval.ScriptedDrv(eval.Path{"usesalias"}) {
			t.Errorf("usesalias: %+v", a)
		}
	})
	t.Run("nested death", func(t *testing.T) {
		set := scriptedSet(300, map[string]eval.ScriptedAttr{"set": {Children: map[string]eval.ScriptedAttr{"ok": {}, "bad": {Abort: "evaluation aborted: nested"}, "zz": {}}}})
		_, s := scriptedEval(t, set, eval.Options{})
		attrs := s.Evaluation().Attrs
		if a := attrs["set.bad"]; a == nil || a.Error == nil || !strings.Contains(a.Error.Message, "nested") {
			t.Errorf("set.bad: %+v", a)
		}
		for _, k := range []string{"set.ok", "set.zz", "p0299"} {
			if a := attrs[k]; a == nil || !a.OK() {
				t.Errorf("%s: %+v", k, a)
			}
		}
	})
	t.Run("machine fault", func(t *testing.T) {
		set := scriptedSet(300, map[string]eval.ScriptedAttr{"p0100": {Fault: "SQLite database '/nix/var/nix/db/db.sqlite' is busy"}})
		opt := eval.Options{Workers: 1, TempDir: t.TempDir()}
		ev, err := eval.New(nil, opt, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		eval.UseScripted(ev, set)
		_, err = ev.Evaluate(context.Background(), t.TempDir(), "x86_64-linux", 0)
		if !errors.Is(err, eval.ErrInfrastructure) || !strings.Contains(err.Error(), "store database is busy") {
			t.Errorf("error %v, want the infrastructure's", err)
		}
	})
}
