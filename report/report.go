// Package report turns a review's evaluations (and, later, builds) into the
// report basinix shows: the JSON of DESIGN.md and the readable summary. It
// stands alone because the CLI, the check runs and the web page all render it.
package report

import (
	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

// Verdict is what a change does to one attribute, once built.
type Verdict string

const (
	NewlyFailing       Verdict = "newly-failing"
	NewlySucceeding    Verdict = "newly-succeeding"
	StillFailing       Verdict = "still-failing"
	StillSucceeding    Verdict = "still-succeeding"
	NewFailing         Verdict = "new-failing"
	NewSucceeding      Verdict = "new-succeeding"
	Removed            Verdict = "removed"
	EvalBroken         Verdict = "eval-broken"
	SkippedBroken      Verdict = "skipped-broken"
	SkippedUnsupported Verdict = "skipped-unsupported"
	// Pending: the verdict needs a build that has not happened.
	Pending Verdict = "pending"
)

// Report is the machine-readable review, as `basinix review --json` writes it.
type Report struct {
	Base     Ref                `json:"base"`
	Head     Ref                `json:"head"`
	Conflict *Conflict          `json:"conflict,omitempty"`
	Systems  map[string]*System `json:"systems"`
	// Jobs is set when the repository is a flake reviewed as a CI: every
	// job is in Systems' attributes, the unchanged ones too, and gets a
	// verdict (and, from the server, a check run of its own).
	Jobs bool `json:"jobs,omitempty"`
	// Selection says which attributes the review was limited to, as asked
	// ("-p hello", "-P firefox", "--package-regex ^python3"); empty: all.
	Selection string `json:"selection,omitempty"`
	// Command is the command line that made the review, to run it again
	// (`basinix pr 1234 -p hello`); Version the basinix that ran it.
	Command string `json:"command,omitempty"`
	Version string `json:"version,omitempty"`
	// Evaluations says where each evaluation came from and what it cost.
	Evaluations []EvalInfo `json:"evaluations,omitempty"`
	// Timings says where the review's time went, in seconds.
	Timings *Timings `json:"timings,omitempty"`
}

// Timings are the wall-clock seconds of a review's phases.
type Timings struct {
	Git      float64 `json:"git"`      // fetch, resolve, merge
	Evaluate float64 `json:"evaluate"` // base and head, all systems (cached or not)
	Compare  float64 `json:"compare"`  // diff, details and messages of touched attributes
	// Instantiate: writing the .drv files of what is built (head and base).
	Instantiate float64 `json:"instantiate,omitempty"`
	Build       float64 `json:"build,omitempty"`
	Total       float64 `json:"total"`
}

// EvalInfo describes one evaluation a review used.
type EvalInfo struct {
	Commit    string  `json:"commit"`
	System    string  `json:"system"`
	Cached    bool    `json:"cached"`
	Seconds   float64 `json:"seconds"`
	Attrs     int     `json:"attrs"`
	Processes int     `json:"processes,omitempty"`
	// Retired counts the walkers that handed over past the soft memory
	// bound (eval.max_memory_mib).
	Retired int `json:"retired,omitempty"`
}

// Ref is one side of the review.
type Ref struct {
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
	// Merged is the commit evaluated for the head: the head merged onto the
	// base (or the head itself when the merge conflicted).
	Merged string `json:"merged,omitempty"`
}

// Conflict says the head did not merge onto the base tip, so the review
// compares the head with the merge-base instead.
type Conflict struct {
	BaseTip   string   `json:"baseTip"`
	MergeBase string   `json:"mergeBase"`
	Files     []string `json:"files,omitempty"`
}

// System is the review of one system.
type System struct {
	RebuildLabel string `json:"rebuildLabel"`
	// RebuildCount counts what the change rebuilds, as nixpkgs CI counts
	// it: attributes whose output path the base does not have.
	RebuildCount int `json:"rebuildCount"`
	// ChangedNotRebuilt counts the changed attributes (drvPath differs)
	// whose output path the base has: nothing to build.
	ChangedNotRebuilt int `json:"changedNotRebuilt,omitempty"`
	// SetError is set when the head's package set does not evaluate at all.
	SetError    *ErrorEntry           `json:"setError,omitempty"`
	EvalErrors  []ErrorEntry          `json:"evalErrors"`
	AliasErrors []ErrorEntry          `json:"aliasErrors"`
	Attrs       map[string]*AttrEntry `json:"attrs"`
}

// ErrorEntry is an evaluation error of one attribute.
type ErrorEntry struct {
	Attr    string `json:"attr"`
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
}

// AttrEntry is one attribute whose drvPath or evaluation changed.
type AttrEntry struct {
	Change           eval.Change  `json:"change"`
	DrvPath          string       `json:"drvPath,omitempty"`
	BaseDrvPath      string       `json:"baseDrvPath,omitempty"`
	Head             build.Result `json:"head,omitempty"`
	Base             build.Result `json:"base,omitempty"`
	Verdict          Verdict      `json:"verdict"`
	FailedDependency string       `json:"failedDependency,omitempty"`
	Position         string       `json:"position,omitempty"`
	// Log explains the head's result: its build log, or for a dependency
	// failure the failed dependency's.
	Log string `json:"log,omitempty"`
	// Message is Nix's reason for a failure, or why nothing was built.
	Message string `json:"message,omitempty"`
	// FailingSince names, in a PR's review, the push that introduced a
	// failure ("push 2 (abc123def456) of this PR") or the branch commit
	// since which it fails: plain text, which renderers quote.
	FailingSince string `json:"failingSince,omitempty"`
	// Maintainers are the GitHub handles of the head's meta.maintainers.
	Maintainers []string              `json:"maintainers,omitempty"`
	Tests       map[string]*TestEntry `json:"tests,omitempty"`
	// Outputs says what the change did to the outputs, for a changed
	// attribute built on both sides.
	Outputs *build.OutputDiff `json:"outputs,omitempty"`
}

// TestEntry is one passthru.tests entry of an attribute.
type TestEntry struct {
	DrvPath          string       `json:"drvPath,omitempty"`
	Head             build.Result `json:"head"`
	FailedDependency string       `json:"failedDependency,omitempty"`
	Log              string       `json:"log,omitempty"`
	Error            string       `json:"error,omitempty"`
}

// FromDiff builds the report of one system from its diff and the details
// of the head's added and changed attributes, with every build pending.
func FromDiff(d *eval.Diff, details map[string]*eval.Details) *System {
	s := &System{
		RebuildCount:      d.Rebuilds(),
		ChangedNotRebuilt: d.ChangedNotRebuilt(),
		EvalErrors:        []ErrorEntry{},
		AliasErrors:       []ErrorEntry{},
		Attrs:             map[string]*AttrEntry{},
	}
	s.RebuildLabel = eval.RebuildLabel(s.RebuildCount)
	if d.HeadError != nil {
		s.SetError = errorEntry("", d.HeadError)
	}
	for _, a := range d.Attrs {
		e := &AttrEntry{Change: a.Change}
		if a.Base != nil && a.Base.Evaluable() {
			e.BaseDrvPath = a.Base.DrvPath
			e.Base = build.Unknown
		}
		switch {
		case a.Head == nil:
			e.Verdict = Removed
			e.Base = ""
		case !a.Head.Evaluable() && a.Change == eval.Unchanged:
			// A job that did not evaluate at base either: still failing.
			e.Head, e.Base, e.Verdict = build.Failure, build.Failure, StillFailing
			e.Message = "does not evaluate: " + errLine(*errorEntry(a.Attr, a.Head.Error))
		case !a.Head.Evaluable():
			e.Verdict = EvalBroken
			s.EvalErrors = append(s.EvalErrors, *errorEntry(a.Attr, a.Head.Error))
		default:
			e.DrvPath = a.Head.DrvPath
			e.Head, e.Verdict = build.Pending, Pending
			if det := details[a.Attr]; det != nil {
				e.Position = det.Position
				e.Maintainers = det.Maintainers
				switch {
				case det.Broken:
					e.Head, e.Verdict = build.SkippedBroken, SkippedBroken
				case !det.Supported:
					e.Head, e.Verdict = build.SkippedUnsupported, SkippedUnsupported
				}
				e.Tests = testEntries(det)
			}
		}
		s.Attrs[a.Attr] = e
	}
	for _, a := range d.AliasErrors {
		s.AliasErrors = append(s.AliasErrors, *errorEntry(a.Path.String(), a.Error))
	}
	return s
}

func testEntries(det *eval.Details) map[string]*TestEntry {
	if det.Error != nil {
		return map[string]*TestEntry{"*": {Head: build.Pending, Error: "details do not evaluate: " + det.Error.Error()}}
	}
	if len(det.Tests) == 0 {
		return nil
	}
	out := map[string]*TestEntry{}
	for name, t := range det.Tests {
		te := &TestEntry{DrvPath: t.DrvPath, Head: build.Pending}
		if t.Error != nil {
			te.Error = t.Error.Error()
		}
		out[name] = te
	}
	return out
}

func errorEntry(attr string, e *eval.Error) *ErrorEntry {
	if e == nil {
		return &ErrorEntry{Attr: attr, Message: "unknown error"}
	}
	return &ErrorEntry{Attr: attr, Message: e.Message, File: e.File, Line: e.Line}
}

// EvalBroken reports whether the head breaks evaluation on some system:
// its package set fails, an attribute newly fails, or an alias is newly used.
func (r *Report) EvalBroken() bool {
	for _, s := range r.Systems {
		if s.SetError != nil || len(s.EvalErrors) > 0 || len(s.AliasErrors) > 0 {
			return true
		}
	}
	return false
}
