package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/basinix/basinix/eval"
)

// maxListed is how many attributes a summary names in one list before it
// says how many more there are; the JSON report has them all.
const maxListed = 40

// WriteSummary writes the readable summary of r: per system the counts,
// the lists of attributes, evaluation errors with file:line and alias errors.
func WriteSummary(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "basinix review: %s (%s) <- %s (%s)", r.Base.Ref, Short(r.Base.Commit), r.Head.Ref, Short(r.Head.Commit))
	if r.Head.Merged != "" && r.Head.Merged != r.Head.Commit {
		fmt.Fprintf(b, ", merged as %s", Short(r.Head.Merged))
	}
	b.WriteString("\n")
	if r.Selection != "" {
		fmt.Fprintf(b, "only the attributes selected by %s\n", r.Selection)
	}
	if c := r.Conflict; c != nil {
		fmt.Fprintf(b, "warning: the head does not merge onto %s (%s): compared with the merge-base %s instead\n",
			r.Base.Ref, Short(c.BaseTip), Short(c.MergeBase))
		if len(c.Files) > 0 {
			fmt.Fprintf(b, "  conflicting files: %s\n", strings.Join(c.Files, ", "))
		}
	}
	for _, name := range sortedKeys(r.Systems) {
		writeSystem(b, name, r.Systems[name])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSystem(b *strings.Builder, name string, s *System) {
	fmt.Fprintf(b, "\n%s: rebuild label %s (%d to build)", name, s.RebuildLabel, s.RebuildCount)
	if s.SetError != nil {
		fmt.Fprintf(b, "\n  the package set does not evaluate: %s\n", errLine(*s.SetError))
		return
	}
	byChange := map[eval.Change][]string{}
	var skipped []string
	for _, attr := range sortedKeys(s.Attrs) {
		e := s.Attrs[attr]
		byChange[e.Change] = append(byChange[e.Change], attr)
		switch e.Verdict {
		case SkippedBroken:
			skipped = append(skipped, attr+" (meta.broken)")
		case SkippedUnsupported:
			skipped = append(skipped, attr+" (not for "+name+")")
		}
	}
	fmt.Fprintf(b, ": %d added, %d removed, %d changed, %d eval-broken, %d eval-fixed\n",
		len(byChange[eval.Added]), len(byChange[eval.Removed]), len(byChange[eval.Changed]),
		len(byChange[eval.EvalBroken]), len(byChange[eval.EvalFixed]))
	if s.ChangedNotRebuilt > 0 {
		fmt.Fprintf(b, "  %d of the changed attributes rebuild nothing: their outputs are the base's (a fixed-output derivation changed, its hash did not)\n", s.ChangedNotRebuilt)
	}
	if n := len(byChange[eval.Unchanged]); n > 0 {
		fmt.Fprintf(b, "  unchanged jobs (%d): each with its verdict in the JSON report\n", n)
	}
	for _, c := range []eval.Change{eval.Added, eval.Removed, eval.Changed, eval.EvalFixed} {
		writeList(b, string(c), byChange[c])
	}
	if len(s.EvalErrors) > 0 {
		fmt.Fprintf(b, "  eval errors (%d):\n", len(s.EvalErrors))
		for _, e := range s.EvalErrors {
			fmt.Fprintf(b, "    %s: %s\n", e.Attr, errLine(e))
		}
	}
	if len(s.AliasErrors) > 0 {
		fmt.Fprintf(b, "  alias errors (%d): these use an alias in-tree and fail with allowAliases = false\n", len(s.AliasErrors))
		for _, e := range s.AliasErrors {
			fmt.Fprintf(b, "    %s: %s\n", e.Attr, errLine(e))
		}
	}
	writeList(b, "skipped", skipped)
	byVerdict := map[Verdict][]string{}
	for _, attr := range sortedKeys(s.Attrs) {
		byVerdict[s.Attrs[attr].Verdict] = append(byVerdict[s.Attrs[attr].Verdict], attr)
	}
	for _, v := range []Verdict{NewlyFailing, NewFailing, StillFailing, NewlySucceeding, NewSucceeding} {
		writeList(b, verdictTitles[v], byVerdict[v])
	}
	if n := len(byVerdict[StillSucceeding]); n > 0 {
		fmt.Fprintf(b, "  still succeeding: %d\n", n)
	}
	var tests []string
	for _, attr := range sortedKeys(s.Attrs) {
		for _, t := range sortedKeys(s.Attrs[attr].Tests) {
			tests = append(tests, attr+".passthru.tests."+t)
		}
	}
	writeList(b, "tests", tests)
}

// verdictTitles name the verdicts the summary lists, once built.
var verdictTitles = map[Verdict]string{
	NewlyFailing: "newly failing", NewFailing: "new and failing", StillFailing: "still failing",
	NewlySucceeding: "newly succeeding", NewSucceeding: "new and succeeding",
}

func writeList(b *strings.Builder, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "  %s (%d):", title, len(items))
	shown := items
	if len(shown) > maxListed {
		shown = shown[:maxListed]
	}
	line := 4
	for _, it := range shown {
		if line+len(it)+1 > 100 {
			b.WriteString("\n   ")
			line = 4
		}
		b.WriteString(" " + it)
		line += len(it) + 1
	}
	if len(items) > len(shown) {
		fmt.Fprintf(b, "\n    … and %d more (the JSON report lists them all)", len(items)-len(shown))
	}
	b.WriteString("\n")
}

func errLine(e ErrorEntry) string {
	if e.File != "" {
		return fmt.Sprintf("%s (%s:%d)", e.Message, e.File, e.Line)
	}
	return e.Message
}

// Short is a commit's id as the report shows it: its first 12 digits.
func Short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
