package review

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// What the pool builds first, as a reviewer expects it: every PR before
// branch builds, a small PR before a mass rebuild, a PR's head before its
// base, a request with the head of the smallest PR.
func TestSchedulingPolicy(t *testing.T) {
	const branch = -1_000_000
	wants := []struct {
		name     string
		w        work
		rebuilds int
	}{
		{"branch tip", branchTip, 0},
		{"mass rebuild head", prHead, 40_000},
		{"mass rebuild base", prBase, 40_000},
		{"huge PR head", prHead, 5_000_000},
		{"one-package fix head", prHead, 1},
		{"one-package fix base", prBase, 1},
		{"requested build", requested, 0},
	}
	sort.SliceStable(wants, func(i, j int) bool {
		return priority(wants[i].w, wants[i].rebuilds, branch) > priority(wants[j].w, wants[j].rebuilds, branch)
	})
	var order []string
	for _, w := range wants {
		order = append(order, w.name)
	}
	want := "requested build, one-package fix head, one-package fix base, mass rebuild head, mass rebuild base, huge PR head, branch tip"
	if got := strings.Join(order, ", "); got != want {
		t.Errorf("build order:\n got %s\nwant %s", got, want)
	}
	if p := priority(prHead, 5_000_000, branch); p <= branch {
		t.Errorf("a huge PR's priority %d is not above branch builds' %d", p, branch)
	}
}

// Without usable cgroups (here: a root with no hierarchy), limits asked
// for are not applied, and one log line says so; without limits asked,
// nothing is looked for.
func TestCgroupsUnavailable(t *testing.T) {
	var buf strings.Builder
	log := zerolog.New(&buf)
	if cg := cgroups(CgroupsConfig{MemoryMiB: 64, CPUs: 1, Root: t.TempDir()}, log); cg != nil {
		t.Fatalf("cgroups found in an empty directory: %+v", cg)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "no usable cgroups: local builds run without") {
		t.Errorf("log: %q, want one line saying builds run without limits", buf.String())
	}
	buf.Reset()
	if cg := cgroups(CgroupsConfig{}, log); cg != nil || buf.Len() > 0 {
		t.Errorf("no limits asked: %+v, log %q", cg, buf.String())
	}
}

// A PR's cost from its build graph: all its work, and its critical path
// (the longest chain of derivations each needing the one before), what is
// built already counting for nothing.
func TestGraphCost(t *testing.T) {
	m := time.Minute
	// libbase ← libmid ← {hello, app}; docs alone.
	nodes := []Node{{Est: 10 * m}, {Est: 20 * m, Deps: []int{0}}, {Est: 5 * m, Deps: []int{1}}, {Est: 30 * m, Deps: []int{1}}, {Est: 1 * m}}
	for _, tc := range []struct {
		name  string
		built []int
		want  Cost
	}{
		{"nothing built", nil, Cost{Work: 66 * m, Path: 60 * m}},
		{"libbase built", []int{0}, Cost{Work: 56 * m, Path: 50 * m}},
		{"all but docs", []int{0, 1, 2, 3}, Cost{Work: 1 * m, Path: 1 * m}},
	} {
		got := GraphCost(nodes, func(i int) bool { return slices.Contains(tc.built, i) })
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := (Cost{Work: 66 * m, Path: 60 * m}).TimeToVerdict(2); got != 60*m {
		t.Errorf("time to verdict on 2 slots: %s, want the critical path 60m", got)
	}
	if got := (Cost{Work: 66 * m, Path: 60 * m}).TimeToVerdict(1); got != 66*m {
		t.Errorf("time to verdict on 1 slot: %s, want all the work 66m", got)
	}
	if got := costUnits(Cost{Work: 61 * time.Second}); got != 2 {
		t.Errorf("cost units of 61 s: %d, want 2 (minutes, rounded up)", got)
	}
}
