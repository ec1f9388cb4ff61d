package report

import (
	"fmt"
	"strings"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

// A flake's jobs each get a check run, as a CI's do, so that branch
// protection can require them by name; a summary check run lists them all.

// JobConclusion is the conclusion a job's verdict gives its check run:
// failure for what the change breaks, neutral for what was failing
// before (the PR is not to blame; a push's is failure), skipped for what
// is not built here, "" while the job waits for its build.
func JobConclusion(v Verdict, push bool) string {
	switch v {
	case NewlySucceeding, NewSucceeding, StillSucceeding:
		return "success"
	case NewlyFailing, NewFailing, EvalBroken:
		return "failure"
	case StillFailing:
		if push {
			return "failure"
		}
		return "neutral"
	case SkippedBroken, SkippedUnsupported, Removed:
		return "skipped"
	}
	return ""
}

var jobTitles = map[Verdict]string{
	NewlySucceeding:    "newly succeeding",
	NewSucceeding:      "new, succeeds",
	StillSucceeding:    "succeeds",
	NewlyFailing:       "newly failing",
	NewFailing:         "new, fails",
	StillFailing:       "still failing",
	EvalBroken:         "does not evaluate",
	SkippedBroken:      "skipped (meta.broken)",
	SkippedUnsupported: "skipped (not for this system)",
	Removed:            "removed by this change",
	Pending:            "waiting for its build",
}

// JobCheckRun renders one job's check run: its verdict, result, failed
// dependency, the tail of its log, and for a failure the annotation at
// the job's definition.
func JobCheckRun(job, system string, e *AttrEntry, opt MarkdownOptions, fullReport string) CheckRun {
	cr := CheckRun{Title: jobTitles[e.Verdict], Conclusion: JobConclusion(e.Verdict, opt.Push)}
	if cr.Title == "" {
		cr.Title = string(e.Verdict)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s on `%s`: **%s**", mdCode(job), system, cr.Title)
	if e.Change != "" {
		fmt.Fprintf(&b, " (%s)", e.Change)
	}
	b.WriteString("\n\n")
	switch {
	case e.Verdict == Pending:
		b.WriteString("Queued: the job is built once, for every pull request that needs it.\n")
	case e.Head.Failed() || e.Verdict == EvalBroken:
		writeFailure(&b, job, e, opt)
	case e.Log != "":
		fmt.Fprintf(&b, "[log](%s)\n", link(e.Log, opt))
	}
	if e.DrvPath != "" {
		fmt.Fprintf(&b, "\nDerivation: %s\n", mdCode(e.DrvPath))
	}
	cr.Summary = Fit(b.String(), fullReport)
	if cr.Conclusion == "failure" {
		path, line := splitPosition(e.Position)
		msg := fmt.Sprintf("%s: %s", job, e.Head)
		if e.FailedDependency != "" {
			msg += ", dependency " + DrvName(e.FailedDependency) + " failed"
		}
		if e.Message != "" {
			msg += ": " + e.Message
		}
		cr.Annotations = dropUnplaced([]Annotation{{Path: path, Line: line, Level: "failure", Title: fmt.Sprintf("%s %s on %s", job, e.Verdict, system), Message: msg}})
	}
	return cr
}

// JobsCheckRun renders the summary of every job: per system the counts by
// verdict, and the jobs that fail, newly or still. It fails when the
// change breaks a job, as the build check runs of a package set do.
func JobsCheckRun(r *Report, opt MarkdownOptions, fullReport string) CheckRun {
	var b strings.Builder
	conclusion, failing, pending := "success", 0, 0
	b.WriteString("| system | jobs | newly failing | new failing | eval errors | still failing | succeeding | pending |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, system := range sortedKeys(r.Systems) {
		s := r.Systems[system]
		n := s.Count()
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", system, len(s.Attrs)-n[Removed], n[NewlyFailing], n[NewFailing], n[EvalBroken], n[StillFailing],
			n[NewlySucceeding]+n[NewSucceeding]+n[StillSucceeding], n[Pending])
		failing += n[NewlyFailing] + n[NewFailing] + n[EvalBroken]
		if opt.Push {
			failing += n[StillFailing]
		}
		pending += n[Pending]
		if s.SetError != nil {
			failing++
			fmt.Fprintf(&b, "\n**%s**: the flake does not evaluate: %s\n", system, mdCode(errLine(*s.SetError)))
		}
	}
	for _, system := range sortedKeys(r.Systems) {
		s := r.Systems[system]
		var lines []string
		for _, job := range sortedKeys(s.Attrs) {
			e := s.Attrs[job]
			if c := JobConclusion(e.Verdict, opt.Push); c == "failure" || c == "neutral" {
				lines = append(lines, fmt.Sprintf("- %s: %s%s", mdCode(job), jobTitles[e.Verdict], reason(e, system)))
			}
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "\n### `%s`\n%s\n", system, strings.Join(lines, "\n"))
		}
	}
	title, broken := "all jobs succeed", " broken by this change"
	if opt.Push {
		broken = " failing"
	}
	switch {
	case pending > 0: // not final while a job waits, whatever is known
		conclusion, title = "", plural(pending, "job")+" waiting for builds"
		if failing > 0 {
			title += ", " + plural(failing, "job") + broken
		}
	case failing > 0:
		conclusion, title = "failure", plural(failing, "job")+broken
	}
	return CheckRun{Title: title, Summary: Fit(b.String(), fullReport), Conclusion: conclusion}
}

// KnownResult is the verdict of an unchanged job whose result is known
// before anything is built (the same derivation was built for the base or
// another PR): it is final at once.
func KnownResult(e *AttrEntry, known build.Result) bool {
	if !e.UnchangedPending() {
		return false
	}
	switch known {
	case build.Success, build.Failure, build.DependencyFailed:
	default: // a timeout is tried again; nothing else is a result
		return false
	}
	e.Head, e.Base = known, known
	if known.Failed() {
		e.Verdict = StillFailing
	} else {
		e.Verdict = StillSucceeding
	}
	return true
}

// UnchangedPending says whether e is an unchanged job that waits for its
// result, which its remembered result may give (KnownResult).
func (e *AttrEntry) UnchangedPending() bool {
	return e.Change == eval.Unchanged && e.Verdict == Pending
}
