package review

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
// ones; a PR that rebuilds less comes before one that rebuilds more
// (rebuilds, when its review asks for that: a one-package fix does not wait
// behind a mass rebuild); every PR and request comes before branch builds,
// which run at branch (server.branch_priority) whatever a PR's size.
func priority(w work, rebuilds, branch int) int {
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
	return max(p-rebuilds, branch+1)
}
