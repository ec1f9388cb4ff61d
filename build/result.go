// Package build is the builder pool: it realises derivations once for every
// review that wants them and remembers the results. This file holds the
// results a derivation's build can have, which reports already speak of.
package build

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
