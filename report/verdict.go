package report

import (
	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

// ApplyBuilds fills the build results of s from outcomes (by drvPath: head,
// base and test derivations, and the failed dependencies they name) and
// decides each attribute's verdict. Attributes whose head has no outcome
// stay pending.
func (s *System) ApplyBuilds(outcomes map[string]build.Outcome) {
	logOf := func(o build.Outcome) string {
		if o.Result == build.DependencyFailed {
			if dep, ok := outcomes[o.FailedDep]; ok && dep.Log != "" {
				return dep.Log
			}
		}
		return o.Log
	}
	for _, e := range s.Attrs {
		if e.Verdict != Pending {
			continue
		}
		if e.BaseDrvPath != "" {
			if o, ok := outcomes[e.BaseDrvPath]; ok && o.Result != build.Cancelled {
				e.Base = o.Result
			}
		}
		for _, t := range e.Tests {
			if o, ok := outcomes[t.DrvPath]; ok && t.DrvPath != "" {
				t.Head, t.FailedDependency, t.Log = o.Result, o.FailedDep, logOf(o)
			}
		}
		o, ok := outcomes[e.DrvPath]
		if !ok {
			continue
		}
		e.Head, e.FailedDependency, e.Log, e.Message = o.Result, o.FailedDep, logOf(o), o.Message
		e.Verdict = verdict(e.Change, e.Head, e.Base)
	}
}

// verdict compares the head's result with the base's. A base that did not
// evaluate (eval-fixed) counts as failing; a base nobody could build
// (unknown) makes the attribute new.
func verdict(change eval.Change, head, base build.Result) Verdict {
	if head == build.Cancelled || head == build.Pending {
		return Pending
	}
	failed := head.Failed()
	switch {
	case change == eval.EvalFixed:
		if failed {
			return StillFailing
		}
		return NewlySucceeding
	case base == build.Success:
		if failed {
			return NewlyFailing
		}
		return StillSucceeding
	case base.Failed():
		if failed {
			return StillFailing
		}
		return NewlySucceeding
	}
	if failed {
		return NewFailing
	}
	return NewSucceeding
}

// Breaks reports whether some attribute is newly failing or new and
// failing on some system.
func (r *Report) Breaks() bool {
	for _, s := range r.Systems {
		for _, e := range s.Attrs {
			if e.Verdict == NewlyFailing || e.Verdict == NewFailing {
				return true
			}
		}
	}
	return false
}
