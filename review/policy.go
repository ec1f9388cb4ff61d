package review

import "time"

// The scheduling policy: the priority of each derivation a piece of work
// wants (the builder pool builds the highest first). It is one pure
// function, so that what goes first is read and tested in one place.

// work is what wants a derivation built.
type work int

const (
	prHead    work = iota // a PR's merged head: its verdicts
	prBase                // a PR's base side of a changed attribute: verdicts made exact
	requested             // `@basinix build/test`, a bisection: someone waits
	branchTip             // a tracked branch's change: fills idle machines
)

// Build priorities: what decides a verdict's head side first, the base
// derivations that make it exact after.
const (
	priorityHead = 10
	priorityBase = 0
)

// priority is the policy. A PR's head derivations come before its base
// ones; a PR that costs less comes before one that costs more (cost, when
// its review asks for that: the estimated minutes of building its
// changes, costUnits; a one-package fix does not wait behind a mass
// rebuild); every PR and request comes before branch builds, which run at
// branch (server.branch_priority) whatever a PR's size.
func priority(w work, cost, branch int) int {
	switch w {
	case branchTip:
		return branch
	case requested:
		return max(priorityHead, branch+1)
	}
	p := priorityHead
	if w == prBase {
		p = priorityBase
	}
	return max(p-cost, branch+1)
}

// Cost is what a PR's review still has to build, as recorded durations
// estimate it: Work is the build time of all its derivations, Path its
// critical path, the longest chain of derivations each of which needs the
// one before.
type Cost struct {
	Work, Path time.Duration
}

// TimeToVerdict is when the PR's full verdict can come at the earliest on
// slots build slots: not before its critical path is built, nor before
// its work is, spread over every slot.
func (c Cost) TimeToVerdict(slots int) time.Duration {
	return max(c.Path, c.Work/time.Duration(max(slots, 1)))
}

// costUnits is the cost priority counts a PR's size in: the estimated
// build time of its work in minutes (rounded up), so that the PRs whose
// verdicts cost the machines least go first: the most verdicts an hour
// (shortest work first; TestSchedulingSimulation compares it with FIFO,
// with the rebuild count, and with ranking by TimeToVerdict, which puts
// a PR with a long chain last although it takes one slot at a time).
func costUnits(c Cost) int {
	return int((c.Work + time.Minute - 1) / time.Minute)
}

// A Node is one derivation of a build graph, for Costs: its estimated
// duration and the nodes it needs built first.
type Node struct {
	Est  time.Duration
	Deps []int
}

// GraphCost is the cost of building the nodes of a graph (a DAG, each
// dependency before its dependent in the list) that are not built yet.
func GraphCost(nodes []Node, built func(i int) bool) Cost {
	var c Cost
	finish := make([]time.Duration, len(nodes)) // longest chain ending at i
	for i, n := range nodes {
		var start time.Duration
		for _, d := range n.Deps {
			start = max(start, finish[d])
		}
		finish[i] = start
		if !built(i) {
			finish[i] += n.Est
			c.Work += n.Est
		}
		c.Path = max(c.Path, finish[i])
	}
	return c
}
