// Package build is the builder pool: it realises derivations once for every
// review that wants them, on the local machine and on remote builders, and
// remembers the results so that a failure is not built again unasked.
package build

import "time"

// Result is the outcome of building one derivation, as reports show it.
type Result string

const (
	Success            Result = "success"
	Failure            Result = "failure"
	DependencyFailed   Result = "dependency-failed"
	Timeout            Result = "timeout"
	Cancelled          Result = "cancelled"
	SkippedBroken      Result = "skipped-broken"
	SkippedUnsupported Result = "skipped-unsupported"
	// Pending: not built (yet), for example with `basinix review --no-build`.
	Pending Result = "pending"
	// Unknown: a base derivation nobody has built.
	Unknown Result = "unknown"
)

// Failed reports whether r is a build that did not succeed on its own
// merits (a failure, a failed dependency, a timeout).
func (r Result) Failed() bool { return r == Failure || r == DependencyFailed || r == Timeout }

// Outcome is the result of one derivation with what is known of its build.
type Outcome struct {
	Drv    string
	Result Result
	// FailedDep names, for DependencyFailed, the derivation in the closure
	// whose own build failed (the nearest one).
	FailedDep string
	// Message is Nix's one-line reason for a failure.
	Message  string
	Machine  string
	Started  time.Time
	Duration time.Duration
	// Log is the file holding the build's log (capped), "" when none.
	Log string
	// Cached is true when the result was known before: nothing was built.
	Cached bool
	// MachineFault, when set, says why the outcome is the machine's fault,
	// not the derivation's (a builder killed by the OOM killer, no space
	// left, Nix stopping early): building again may give the real result.
	MachineFault string
	// MemoryLimitMiB, for a build killed for its cgroup's memory, is the
	// limit it had: it needs more.
	MemoryLimitMiB int
	// transient outcomes (cancelled, infrastructure trouble) are not remembered.
	transient bool
}
