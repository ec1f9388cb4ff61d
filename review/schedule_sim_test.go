package review

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The scheduling simulation: 50 PRs of mixed sizes (a few derivations to a
// mass rebuild, chains and fan-outs) arriving over three hours, built on 3
// machines of different sizes and speeds, each PR's derivations with the
// priority a policy gives the PR when it arrives (as the pool gets it at
// submission), the highest-priority ready derivation on the fastest free
// slot first. The policies: FIFO (arrival order), fewest rebuilds first
// (the rebuild count; basinix's order before), by the earliest time to
// verdict (Cost.TimeToVerdict), and basinix's: the estimated build time
// (Cost.Work from recorded durations,
// noisy, a third of them unknown; costUnits). Reported: PRs with a full verdict per
// hour over the first six hours, and the median wait from a PR's arrival
// to its verdict.

type simNode struct {
	dur, est time.Duration
	deps     []int
}

type simPR struct {
	arrive time.Duration
	nodes  []simNode
}

type simMachine struct {
	slots int
	speed float64
}

var simMachines = []simMachine{{slots: 8, speed: 1}, {slots: 4, speed: 2}, {slots: 2, speed: 0.5}}

const simSlots = 14

// simPRs makes the simulation's PRs from seed.
func simPRs(seed uint64) []simPR {
	r := rand.New(rand.NewPCG(seed, 42))
	// Build times are heavy-tailed: most take minutes, a few hours (a
	// compiler, a browser), whatever the PR's size.
	dur := func(lo, hi float64) time.Duration {
		m := lo + (hi-lo)*r.Float64()
		if r.Float64() < 0.05 {
			m *= 20
		}
		return time.Duration(m * float64(time.Minute))
	}
	var prs []simPR
	for range 50 {
		var n, depth int
		var lo, hi float64
		switch k := r.Float64(); {
		case k < 0.55: // a package or two: a version bump
			n, depth, lo, hi = 1+r.IntN(3), 1, 1, 40
		case k < 0.80: // a library and its dependents
			n, depth, lo, hi = 10+r.IntN(30), 3+r.IntN(4), 1, 20
		case k < 0.95: // a large change
			n, depth, lo, hi = 100+r.IntN(150), 4+r.IntN(5), 1, 10
		default: // a mass rebuild
			n, depth, lo, hi = 800+r.IntN(400), 8, 1, 8
		}
		pr := simPR{arrive: time.Duration(r.Float64() * float64(3*time.Hour))}
		for i := range n {
			d := dur(lo, hi)
			node := simNode{dur: d, est: 5 * time.Minute} // no history: a default
			if r.Float64() < 0.67 {
				// Recorded durations are another build's: off by up to about 2×.
				node.est = time.Duration(float64(d) * math.Exp(0.5*r.NormFloat64()))
			}
			// Level i*depth/n needs one node of the level before.
			if level := i * depth / n; level > 0 {
				lo := (level - 1) * n / depth
				hi := max(level*n/depth, lo+1)
				node.deps = []int{lo + r.IntN(hi-lo)}
			}
			pr.nodes = append(pr.nodes, node)
		}
		prs = append(prs, pr)
	}
	return prs
}

// simPolicy gives a PR's priority when it arrives.
type simPolicy struct {
	name     string
	priority func(pr simPR) int
	// pathFirst starts, among a PR's ready derivations, the one with the
	// longest estimated chain after it first (its critical path).
	pathFirst bool
}

// simCost is a PR's cost as the review estimates it: every derivation
// with its recorded (noisy, or default) duration, none built yet.
func simCost(pr simPR) Cost {
	nodes := make([]Node, len(pr.nodes))
	for i, n := range pr.nodes {
		nodes[i] = Node{Est: n.est, Deps: n.deps}
	}
	return GraphCost(nodes, func(int) bool { return false })
}

var simPolicies = []simPolicy{
	{name: "fifo", priority: func(simPR) int { return priority(prHead, 0, DefaultBranchPriority) }},
	{name: "fewest-rebuilds", priority: func(pr simPR) int { return priority(prHead, len(pr.nodes), DefaultBranchPriority) }},
	// Ranked by when the verdict could come at the earliest: worse, a
	// long chain takes one slot at a time and need not wait.
	{name: "time-to-verdict", priority: func(pr simPR) int {
		return priority(prHead, int(simCost(pr).TimeToVerdict(simSlots)/time.Minute), DefaultBranchPriority)
	}},
	// basinix's policy (costUnits), and the same with each PR's critical
	// path started first among its ready derivations.
	{name: "estimated-work", priority: func(pr simPR) int { return priority(prHead, costUnits(simCost(pr)), DefaultBranchPriority) }},
	{name: "estimated-work+path-first", priority: func(pr simPR) int { return priority(prHead, costUnits(simCost(pr)), DefaultBranchPriority) }, pathFirst: true},
}

type simResult struct {
	perHour    float64       // PRs with a verdict per hour over the first 6 hours
	medianWait time.Duration // arrival to verdict
}

func simulate(prs []simPR, pol simPolicy) simResult {
	type job struct{ pr, node int }
	prio := make([]int, len(prs))
	bottom := make([][]time.Duration, len(prs)) // estimated chain from a node to its PR's end
	for i, pr := range prs {
		prio[i] = pol.priority(pr)
		bottom[i] = make([]time.Duration, len(pr.nodes))
		for n := len(pr.nodes) - 1; n >= 0; n-- {
			bottom[i][n] += pr.nodes[n].est
			for _, d := range pr.nodes[n].deps {
				bottom[i][d] = max(bottom[i][d], bottom[i][n])
			}
		}
	}
	done := make([][]bool, len(prs))
	started := make([][]bool, len(prs))
	left := make([]int, len(prs))
	for i, pr := range prs {
		done[i], started[i], left[i] = make([]bool, len(pr.nodes)), make([]bool, len(pr.nodes)), len(pr.nodes)
	}
	type running struct {
		j       job
		machine int
		end     time.Duration
	}
	var run []running
	free := make([]int, len(simMachines))
	for i, m := range simMachines {
		free[i] = m.slots
	}
	// Machines by speed, fastest first.
	order := []int{0, 1, 2}
	slices.SortFunc(order, func(a, b int) int { return int(simMachines[b].speed*100 - simMachines[a].speed*100) })
	verdict := make([]time.Duration, len(prs))
	finished := 0
	now := time.Duration(0)
	// best returns the ready job to start: highest priority, then the
	// earliest PR, then the first node.
	best := func() (job, bool) {
		var b job
		found := false
		for p, pr := range prs {
			if pr.arrive > now || left[p] == 0 || found && (prio[p] < prio[b.pr] || prio[p] == prio[b.pr] && pr.arrive >= prs[b.pr].arrive) {
				continue
			}
			first := true
			for n, node := range pr.nodes {
				if started[p][n] || !all(node.deps, func(d int) bool { return done[p][d] }) {
					continue
				}
				if first || pol.pathFirst && bottom[p][n] > bottom[b.pr][b.node] {
					b, found, first = job{p, n}, true, false
				}
				if !pol.pathFirst {
					break
				}
			}
		}
		return b, found
	}
	for finished < len(prs) {
		for _, m := range order {
			for free[m] > 0 {
				j, ok := best()
				if !ok {
					break
				}
				started[j.pr][j.node] = true
				free[m]--
				d := time.Duration(float64(prs[j.pr].nodes[j.node].dur) / simMachines[m].speed)
				run = append(run, running{j, m, now + d})
			}
		}
		// The next event: a build ends, or a PR arrives.
		next := time.Duration(math.MaxInt64)
		for _, r := range run {
			next = min(next, r.end)
		}
		for _, pr := range prs {
			if pr.arrive > now {
				next = min(next, pr.arrive)
			}
		}
		now = next
		run = slices.DeleteFunc(run, func(r running) bool {
			if r.end != now {
				return false
			}
			done[r.j.pr][r.j.node] = true
			free[r.machine]++
			if left[r.j.pr]--; left[r.j.pr] == 0 {
				verdict[r.j.pr] = now
				finished++
			}
			return true
		})
	}
	var waits []time.Duration
	within := 0
	for i, pr := range prs {
		waits = append(waits, verdict[i]-pr.arrive)
		if verdict[i] <= 6*time.Hour {
			within++
		}
	}
	slices.Sort(waits)
	return simResult{perHour: float64(within) / 6, medianWait: waits[len(waits)/2]}
}

func all(xs []int, f func(int) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// simAll runs every policy on the PRs of seeds 1..n and sums the results.
func simAll(n int) map[string]simResult {
	out := map[string]simResult{}
	for seed := range uint64(n) {
		prs := simPRs(seed + 1)
		for _, pol := range simPolicies {
			r := simulate(prs, pol)
			s := out[pol.name]
			s.perHour += r.perHour / float64(n)
			s.medianWait += r.medianWait / time.Duration(n)
			out[pol.name] = s
		}
	}
	return out
}

// Ordering PRs by their estimated build time gives more verdicts an hour
// and shorter waits than arrival order and than the rebuild count (with
// estimates as noisy as another build's durations are, a third unknown),
// over ten generated workloads.
func TestSchedulingSimulation(t *testing.T) {
	res := simAll(10)
	for _, pol := range simPolicies {
		t.Logf("%-26s %.2f PRs/h, median wait %s", pol.name, res[pol.name].perHour, res[pol.name].medianWait.Round(time.Minute))
	}
	ours := res["estimated-work"]
	for _, other := range []string{"fifo", "fewest-rebuilds"} {
		if o := res[other]; ours.perHour < o.perHour || ours.medianWait > o.medianWait {
			t.Errorf("estimated work first (%.2f PRs/h, %s) is not better than %s (%.2f PRs/h, %s)",
				ours.perHour, ours.medianWait, other, o.perHour, o.medianWait)
		}
	}
}

// The figures, as ratios against the order basinix had (fewest rebuilds
// first) and FIFO: go test ./review -run '^$' -bench SchedulingSimulation.
func BenchmarkSchedulingSimulation(b *testing.B) {
	var res map[string]simResult
	for b.Loop() {
		res = simAll(10)
	}
	ours := res["estimated-work"]
	for _, other := range []string{"fifo", "fewest-rebuilds", "time-to-verdict"} {
		o := res[other]
		b.ReportMetric(ours.perHour/o.perHour, "prs-per-hour-vs-"+other)
		b.ReportMetric(float64(ours.medianWait)/float64(o.medianWait), "median-wait-vs-"+other)
	}
	for name, r := range res {
		b.ReportMetric(r.perHour, "prs/h-"+name)
		b.ReportMetric(r.medianWait.Minutes(), "wait-min-"+name)
	}
}
