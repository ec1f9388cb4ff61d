package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/basinix/basinix/build"
)

// GitHub's limits on a check run's output.
const (
	MaxCheckRunText     = 65535    // characters of summary and of text
	AnnotationsPerBatch = 50       // annotations per request
	MaxAnnotationTitle  = 255      // characters of an annotation's title
	MaxAnnotationText   = 64 << 10 // bytes of an annotation's message or raw details
)

// CheckRun is what a check run shows: its title, summary (Markdown), the
// annotations to attach and its conclusion ("" while in progress).
type CheckRun struct {
	Title       string
	Summary     string
	Annotations []Annotation
	Conclusion  string // success, failure, neutral
}

// Annotation points at a line of the repository.
type Annotation struct {
	Path    string
	Line    int
	Level   string // notice, warning, failure
	Title   string
	Message string
}

// EvalCheckRun renders `basinix / eval`: per system the counts and the
// rebuild label, evaluation and alias errors, annotated where Nix says
// they are. It fails when the change breaks evaluation.
func EvalCheckRun(r *Report, fullReport string) CheckRun {
	var b strings.Builder
	b.WriteString("| system | rebuild label | added | removed | changed | eval errors | alias errors |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	var anns []Annotation
	broken := 0
	for _, name := range sortedKeys(r.Systems) {
		s := r.Systems[name]
		n := map[string]int{}
		for _, e := range s.Attrs {
			n[string(e.Change)]++
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d |\n", name, s.RebuildLabel, n["added"], n["removed"], n["changed"], len(s.EvalErrors), len(s.AliasErrors))
		broken += len(s.EvalErrors) + len(s.AliasErrors)
		if s.SetError != nil {
			broken++
			fmt.Fprintf(&b, "\n**%s**: the package set does not evaluate: %s\n", name, mdCode(errLine(*s.SetError)))
		}
		for _, e := range s.EvalErrors {
			anns = append(anns, errorAnnotation(name, e, "failure", "does not evaluate"))
		}
		for _, e := range s.AliasErrors {
			anns = append(anns, errorAnnotation(name, e, "warning", "uses an alias"))
		}
	}
	for _, name := range sortedKeys(r.Systems) {
		s := r.Systems[name]
		if len(s.EvalErrors)+len(s.AliasErrors) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### `%s`\n", name)
		for _, e := range s.EvalErrors {
			fmt.Fprintf(&b, "- :boom: %s: %s\n", mdCode(e.Attr), mdCode(errLine(e)))
		}
		for _, e := range s.AliasErrors {
			fmt.Fprintf(&b, "- :link: %s uses an alias in-tree: %s\n", mdCode(e.Attr), mdCode(errLine(e)))
		}
	}
	if r.Conflict != nil {
		fmt.Fprintf(&b, "\n> [!WARNING]\n> The head does not merge onto %s: compared with the merge-base %s.\n", mdCode(r.Base.Ref), Short(r.Conflict.MergeBase))
	}
	cr := CheckRun{Summary: Fit(b.String(), fullReport), Annotations: dropUnplaced(anns), Conclusion: "success"}
	cr.Title = "evaluates"
	if broken > 0 {
		cr.Conclusion = "failure"
		cr.Title = plural(broken, "evaluation error")
	}
	return cr
}

func errorAnnotation(system string, e ErrorEntry, level, what string) Annotation {
	return Annotation{Path: e.File, Line: e.Line, Level: level, Title: fmt.Sprintf("%s %s on %s", e.Attr, what, system), Message: e.Message}
}

// BuildCheckRun renders `basinix / build (SYSTEM)` once built: the verdict
// tables (newly failing first, with links to the logs) and annotations at
// each newly failing package's meta.position. It fails when something is
// newly failing or new and failing, is neutral when something is only
// still failing, and succeeds otherwise.
func BuildCheckRun(r *Report, system string, opt MarkdownOptions, fullReport string) CheckRun {
	s := r.Systems[system]
	if s == nil {
		return CheckRun{Title: "not evaluated", Summary: "No evaluation for " + system + ".", Conclusion: "neutral"}
	}
	var b strings.Builder
	writeMarkdownSystem(&b, system, s, opt)
	var anns []Annotation
	for _, attr := range sortedKeys(s.Attrs) {
		e := s.Attrs[attr]
		if e.Verdict != NewlyFailing && e.Verdict != NewFailing {
			continue
		}
		path, line := splitPosition(e.Position)
		msg := fmt.Sprintf("%s: %s", attr, e.Head)
		if e.FailedDependency != "" {
			msg += ", dependency " + DrvName(e.FailedDependency) + " failed"
		}
		anns = append(anns, Annotation{Path: path, Line: line, Level: "failure", Title: fmt.Sprintf("%s %s on %s", attr, e.Verdict, system), Message: msg})
	}
	cr := CheckRun{Summary: Fit(b.String(), fullReport), Annotations: dropUnplaced(anns)}
	cr.Title, cr.Conclusion = s.BuildStatus()
	return cr
}

// BuildStatus is the title and conclusion of the system's build check run:
// failure when something is newly failing or new and failing, neutral when
// something is only still failing, success otherwise.
func (s *System) BuildStatus() (title, conclusion string) {
	n := s.Count()
	var parts []string
	for _, v := range []Verdict{NewlyFailing, NewFailing, StillFailing, NewlySucceeding, NewSucceeding, StillSucceeding} {
		if n[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[v], v))
		}
	}
	title = strings.Join(parts, ", ")
	if title == "" {
		title = "nothing to build"
	}
	switch {
	case n[NewlyFailing]+n[NewFailing] > 0:
		return title, "failure"
	case n[StillFailing] > 0:
		return title, "neutral"
	}
	return title, "success"
}

// maxRunningListed is how many running builds a progress summary names.
const maxRunningListed = 20

// BuildProgressCheckRun renders a build check run while it runs: the
// counts, and the builds running now with links to follow their output
// (liveLog turns a derivation into its live log's URL).
func BuildProgressCheckRun(p build.Progress, liveLog func(drv string) string) CheckRun {
	title := fmt.Sprintf("%d of %d built, %d failed", p.Done, p.Total, p.Failed)
	var b strings.Builder
	fmt.Fprintf(&b, "| built | failed | building | queued |\n| --- | --- | --- | --- |\n| %d | %d | %d | %d |\n",
		p.Done-p.Failed, p.Failed, p.Building, p.Total-p.Done-p.Building)
	if p.Left > 0 {
		fmt.Fprintf(&b, "\nAbout %s of building left before the verdict (from the last builds of the same packages, on every build slot; other PRs ahead in the queue come first).\n", roughly(p.Left))
	}
	if len(p.Running) > 0 {
		b.WriteString("\nBuilding now:\n\n")
		for i, drv := range p.Running {
			if i == maxRunningListed {
				fmt.Fprintf(&b, "- … and %d more\n", len(p.Running)-i)
				break
			}
			fmt.Fprintf(&b, "- %s ([live log](%s))\n", mdCode(DrvName(drv)), liveLog(drv))
		}
	}
	return CheckRun{Title: title, Summary: Fit(b.String(), "")}
}

// Batches cuts annotations into GitHub's batches of 50.
func Batches(anns []Annotation) [][]Annotation {
	var out [][]Annotation
	for len(anns) > 0 {
		n := min(len(anns), AnnotationsPerBatch)
		out = append(out, anns[:n])
		anns = anns[n:]
	}
	return out
}

// Fit cuts s to GitHub's 65,535 characters (check run summaries, review
// and comment bodies) at a line boundary and says where the rest is.
func Fit(s, fullReport string) string {
	if utf8.RuneCountInString(s) <= MaxCheckRunText {
		return s
	}
	note := "\n\n… cut to GitHub's size limit"
	if fullReport != "" {
		note += ": the full report is at " + fullReport
	}
	note += "\n"
	budget := MaxCheckRunText - utf8.RuneCountInString(note)
	cut, count := 0, 0
	for i, r := range s {
		if count >= budget {
			break
		}
		if r == '\n' {
			cut = i
		}
		count++
	}
	return s[:cut] + note
}

// cutRunes cuts s to at most n characters, ending it with "…" when cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// cutBytes cuts s to at most n bytes, at a character boundary, saying so.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const note = "… (cut to GitHub's size limit)"
	end := n - len(note)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + note
}

func splitPosition(pos string) (string, int) {
	i := strings.LastIndexByte(pos, ':')
	if i < 0 {
		return pos, 0
	}
	line, err := strconv.Atoi(pos[i+1:])
	if err != nil {
		return pos, 0
	}
	return pos[:i], line
}

// dropUnplaced keeps annotations that name a file and line, sorted by
// place, each cut to GitHub's limits (a 10,000-character attribute name or
// a 100 kB message would have GitHub refuse the whole update).
func dropUnplaced(anns []Annotation) []Annotation {
	var out []Annotation
	for _, a := range anns {
		if a.Path != "" && a.Line > 0 {
			a.Title = cutRunes(a.Title, MaxAnnotationTitle)
			a.Message = cutBytes(a.Message, MaxAnnotationText-1024)
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Line < out[j].Line
	})
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// BuiltAttr is one attribute built on request (`@basinix build`/`test`).
type BuiltAttr struct {
	Attr      string
	DrvPath   string
	Result    build.Result // "" when it was not built (see Message)
	FailedDep string
	Log       string
	Message   string
	// NoTests: the attribute has no passthru.tests (`test ATTR`), which
	// is neither a success nor a failure.
	NoTests bool
}

// RequestedCheckRun renders `basinix / build-requested (SYSTEM)` or
// `basinix / tests (SYSTEM)`: a table of the attributes and their results;
// it fails when one of them did not build, and is neutral when there was
// nothing to build (attributes without tests).
func RequestedCheckRun(attrs []BuiltAttr, opt MarkdownOptions) CheckRun {
	var b strings.Builder
	b.WriteString("| attribute | result | |\n| --- | --- | --- |\n")
	failed, ok, none := 0, 0, 0
	for _, a := range attrs {
		what := string(a.Result)
		switch {
		case a.NoTests:
			what = "no tests"
		case a.Result == "":
			what = "not built"
		}
		var extra string
		if a.Message != "" {
			extra = mdCell(a.Message)
		}
		if a.FailedDep != "" {
			extra = "dependency " + mdCell(DrvName(a.FailedDep)) + " failed"
		}
		if a.Log != "" {
			extra += fmt.Sprintf(" [log](%s)", link(a.Log, opt))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(a.Attr), what, extra)
		switch {
		case a.NoTests:
			none++
		case a.Result == build.Success:
			ok++
		default:
			failed++
		}
	}
	cr := CheckRun{Summary: Fit(b.String(), ""), Title: fmt.Sprintf("%d built, %d failed or not built", ok, failed), Conclusion: "success"}
	switch {
	case failed > 0:
		cr.Conclusion = "failure"
	case ok == 0 && none > 0:
		cr.Title, cr.Conclusion = "no tests", "neutral"
	}
	return cr
}

// roughly says a duration as people estimate one: "under a minute",
// "12 minutes", "2 hours 10 minutes".
func roughly(d time.Duration) string {
	switch m := int(d.Round(time.Minute) / time.Minute); {
	case m < 1:
		return "under a minute"
	case m == 1:
		return "1 minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	case m%60 == 0:
		return fmt.Sprintf("%d hours", m/60)
	default:
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	}
}
