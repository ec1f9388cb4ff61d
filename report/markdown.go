package report

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/basinix/basinix/build"
)

// MarkdownOptions shape WriteMarkdown's output.
type MarkdownOptions struct {
	// LogLines is how many last lines of a failure's log are shown (default 25).
	LogLines int
	// Link turns a log file into what the report links to; nil shows the path.
	Link func(log string) string
	// Push says the report is a branch push's (the new tip against the
	// previous one): a failing job fails its check run whether it failed
	// before or not, since nobody else is to blame.
	Push bool
}

// section is one verdict's part of the Markdown report, in report order.
type section struct {
	verdict Verdict
	title   string
	// open sections list their attributes with reasons and log tails;
	// the others fold the list into <details>.
	open bool
}

var sections = []section{
	{NewlyFailing, ":x: newly failing", true},
	{NewFailing, ":x: new and failing", true},
	{StillFailing, ":warning: still failing", false},
	{NewlySucceeding, ":white_check_mark: newly succeeding", false},
	{NewSucceeding, ":new: new and succeeding", false},
	{StillSucceeding, ":heavy_check_mark: still succeeding", false},
	{Removed, ":wastebasket: removed", false},
	{SkippedBroken, ":fast_forward: skipped: meta.broken", false},
	{SkippedUnsupported, ":fast_forward: skipped: not for this system", false},
	{Pending, ":hourglass: not built", false},
}

// WriteMarkdown writes r as a Markdown review in the nixpkgs-review
// tradition, with verdicts: per system, newly failing first (each with its
// failed dependency and the tail of its log), then still failing, newly
// succeeding, new, removed, skipped with reasons, tests, and evaluation
// errors.
func WriteMarkdown(w io.Writer, r *Report, opt MarkdownOptions) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "## basinix review\n\n%s (%s) ← %s (%s)", mdCode(r.Base.Ref), Short(r.Base.Commit), mdCode(r.Head.Ref), Short(r.Head.Commit))
	if r.Head.Merged != "" && r.Head.Merged != r.Head.Commit {
		fmt.Fprintf(b, ", merged as %s", Short(r.Head.Merged))
	}
	b.WriteString("\n")
	if c := r.Conflict; c != nil {
		fmt.Fprintf(b, "\n> [!WARNING]\n> The head does not merge onto %s (%s): compared with the merge-base %s instead.\n",
			mdCode(r.Base.Ref), Short(c.BaseTip), Short(c.MergeBase))
	}
	b.WriteString("\n| system | rebuilds | newly failing | new failing | still failing | newly succeeding | new succeeding | eval errors |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, name := range sortedKeys(r.Systems) {
		s := r.Systems[name]
		n := s.Count()
		fmt.Fprintf(b, "| %s | %s | %d | %d | %d | %d | %d | %d |\n", name, s.RebuildLabel, n[NewlyFailing], n[NewFailing],
			n[StillFailing], n[NewlySucceeding], n[NewSucceeding], len(s.EvalErrors)+len(s.AliasErrors))
	}
	for _, name := range sortedKeys(r.Systems) {
		writeMarkdownSystem(b, name, r.Systems[name], opt)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Count returns how many attributes have each verdict.
func (s *System) Count() map[Verdict]int {
	n := map[Verdict]int{}
	for _, e := range s.Attrs {
		n[e.Verdict]++
	}
	return n
}

func writeMarkdownSystem(b *strings.Builder, system string, s *System, opt MarkdownOptions) {
	if opt.LogLines <= 0 {
		opt.LogLines = 25
	}
	fmt.Fprintf(b, "\n### `%s`: rebuild label %s\n", system, s.RebuildLabel)
	if s.SetError != nil {
		fmt.Fprintf(b, "\nThe package set does not evaluate: %s\n", mdCode(errLine(*s.SetError)))
		return
	}
	byVerdict := map[Verdict][]string{}
	for _, attr := range sortedKeys(s.Attrs) {
		v := s.Attrs[attr].Verdict
		byVerdict[v] = append(byVerdict[v], attr)
	}
	for _, sec := range sections {
		attrs := byVerdict[sec.verdict]
		if len(attrs) == 0 {
			continue
		}
		if sec.open {
			fmt.Fprintf(b, "\n#### %s (%d)\n\n", sec.title, len(attrs))
			for _, a := range attrs {
				writeFailure(b, a, s.Attrs[a], opt)
			}
			continue
		}
		fmt.Fprintf(b, "\n<details>\n<summary>%s (%d)</summary>\n\n", sec.title, len(attrs))
		for _, a := range attrs {
			fmt.Fprintf(b, "- %s%s\n", mdCode(a), reason(s.Attrs[a], system))
		}
		b.WriteString("\n</details>\n")
	}
	writeTests(b, s, opt)
	if len(s.EvalErrors) > 0 {
		fmt.Fprintf(b, "\n#### :boom: evaluation errors (%d)\n\n", len(s.EvalErrors))
		for _, e := range s.EvalErrors {
			fmt.Fprintf(b, "- %s: %s\n", mdCode(e.Attr), mdCode(errLine(e)))
		}
	}
	if len(s.AliasErrors) > 0 {
		fmt.Fprintf(b, "\n#### :link: alias errors (%d): these use an alias in-tree and fail with `allowAliases = false`\n\n", len(s.AliasErrors))
		for _, e := range s.AliasErrors {
			fmt.Fprintf(b, "- %s: %s\n", mdCode(e.Attr), mdCode(errLine(e)))
		}
	}
}

// reason is the short why of an attribute's verdict, after its name.
func reason(e *AttrEntry, system string) string {
	switch {
	case e.Verdict == SkippedUnsupported:
		return " (meta.platforms excludes " + system + ")"
	case e.Verdict == Pending && e.Message != "":
		return ": " + mdCode(e.Message)
	case e.FailingSince != "":
		return " (failing since " + mdCode(e.FailingSince) + ")"
	case e.Head == build.DependencyFailed:
		return " (dependency " + mdCode(DrvName(e.FailedDependency)) + " failed)"
	case e.Head == build.Timeout:
		return " (timed out)"
	}
	return ""
}

// writeFailure writes a failing attribute: its result, where it is
// defined, its failed dependency and the tail of the log that explains it.
func writeFailure(b *strings.Builder, attr string, e *AttrEntry, opt MarkdownOptions) {
	fmt.Fprintf(b, "- %s: %s", mdCode(attr), e.Head)
	if e.Head == build.DependencyFailed && e.FailedDependency != "" {
		fmt.Fprintf(b, ", dependency %s failed", mdCode(DrvName(e.FailedDependency)))
	}
	if e.FailingSince != "" {
		fmt.Fprintf(b, ", failing since %s", mdCode(e.FailingSince))
	}
	if e.Position != "" {
		fmt.Fprintf(b, " (defined at %s)", mdCode(e.Position))
	}
	if e.Log != "" {
		fmt.Fprintf(b, " [log](%s)", link(e.Log, opt))
	}
	b.WriteString("\n")
	if tail := logTail(e.Log, opt.LogLines); tail != "" {
		fence := mdFence(tail)
		fmt.Fprintf(b, "\n  <details>\n  <summary>last lines of the log</summary>\n\n  %s\n%s  %s\n  </details>\n\n", fence, indent(tail, "  "), fence)
	} else if e.Message != "" {
		fmt.Fprintf(b, "  %s\n", mdCode(e.Message))
	}
}

func writeTests(b *strings.Builder, s *System, opt MarkdownOptions) {
	var failing, passing, other []string
	for _, attr := range sortedKeys(s.Attrs) {
		for _, name := range sortedKeys(s.Attrs[attr].Tests) {
			t := s.Attrs[attr].Tests[name]
			line := fmt.Sprintf("%s: %s", mdCode(attr+".passthru.tests."+name), t.Head)
			switch {
			case t.Head.Failed():
				if t.FailedDependency != "" {
					line += fmt.Sprintf(", dependency %s failed", mdCode(DrvName(t.FailedDependency)))
				}
				if t.Log != "" {
					line += fmt.Sprintf(" [log](%s)", link(t.Log, opt))
				}
				failing = append(failing, line)
			case t.Head == build.Success:
				passing = append(passing, line)
			default:
				if t.Error != "" {
					line += ": " + mdCode(t.Error)
				}
				other = append(other, line)
			}
		}
	}
	if len(failing)+len(passing)+len(other) == 0 {
		return
	}
	fmt.Fprintf(b, "\n#### :test_tube: tests: %d failing, %d passing", len(failing), len(passing))
	if len(other) > 0 {
		fmt.Fprintf(b, ", %d not built", len(other))
	}
	b.WriteString("\n\n")
	for _, l := range append(append(failing, other...), passing...) {
		fmt.Fprintf(b, "- %s\n", l)
	}
}

// DrvName is a derivation's name without store directory, hash and ".drv".
func DrvName(drv string) string {
	if drv == "" {
		return ""
	}
	base := strings.TrimSuffix(filepath.Base(drv), ".drv")
	if len(base) > 33 && base[32] == '-' {
		return base[33:]
	}
	return base
}

func link(log string, opt MarkdownOptions) string {
	if opt.Link != nil {
		return opt.Link(log)
	}
	return log
}

// logTail returns the last n lines of the log file, "" when unreadable.
func logTail(path string, n int) string {
	// Logs are capped when kept; a window of their end is enough for n lines.
	lines := strings.Split(strings.TrimRight(string(build.LogEnd(path, 64<<10)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "\n")
	if strings.TrimSpace(out) == "" {
		return ""
	}
	return out + "\n"
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}
