package report

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// The check runs basinix makes, named in this one place: branch
// protection requires them by these names, and a job's name never takes
// one of the others'.

// CheckPrefix starts every check run's name.
const CheckPrefix = "basinix / "

// EvalCheckName is the check run of a revision's evaluation.
const EvalCheckName = CheckPrefix + "eval"

// JobsCheckName is the name of the check run that lists every job.
const JobsCheckName = CheckPrefix + "jobs"

// BuildCheckName is the check run of a revision's builds on system.
func BuildCheckName(system string) string { return CheckPrefix + "build (" + system + ")" }

// RequestCheckName is the check run of a requested `@basinix build` or
// `test` (kind) on system.
func RequestCheckName(kind, system string) string {
	return CheckPrefix + kind + " (" + system + ")"
}

// maxJobName bounds the characters of a job's name in its check run's name.
const maxJobName = 200

// JobCheckName is the check run name of a job: "basinix / JOB", with the
// system when the repository is reviewed on more than one. A job whose
// name would be one of basinix's own check runs gets "job " before it.
func JobCheckName(job, system string, systems int) string {
	name := job
	if utf8.RuneCountInString(name) > maxJobName {
		// A long attribute name must not make GitHub refuse the check run
		// (and every job after it): cut, with a hash that keeps it unique.
		sum := sha256.Sum256([]byte(job))
		name = cutRunes(job, maxJobName-9) + hex.EncodeToString(sum[:4])
	}
	if systems > 1 {
		name += " (" + system + ")"
	}
	if name == "eval" || name == "jobs" || strings.HasPrefix(name, "build (") || strings.HasPrefix(name, "test (") {
		name = "job " + name
	}
	return CheckPrefix + name
}
