package report

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

// A build check run of a mass rebuild stays within GitHub's 65,535
// characters, cut at a line, pointing at the full report; its annotations
// come in batches of 50.
func TestBuildCheckRunLimits(t *testing.T) {
	s := &System{RebuildLabel: "5001+", Attrs: map[string]*AttrEntry{}}
	for i := range 6000 {
		s.Attrs[fmt.Sprintf("python3Packages.package-with-a-long-name-%05d", i)] = &AttrEntry{
			Change: eval.Changed, Verdict: NewlyFailing, Head: build.Failure, Position: fmt.Sprintf("pkgs/p%05d/default.nix:7", i)}
	}
	r := &Report{Systems: map[string]*System{"x86_64-linux": s}}
	cr := BuildCheckRun(r, "x86_64-linux", MarkdownOptions{}, "https://basinix.example/pr/o/r/1")
	if n := utf8.RuneCountInString(cr.Summary); n > MaxCheckRunText {
		t.Errorf("summary of %d characters", n)
	}
	if !strings.HasSuffix(cr.Summary, "the full report is at https://basinix.example/pr/o/r/1\n") {
		t.Errorf("summary does not end pointing at the full report: %q", cr.Summary[len(cr.Summary)-200:])
	}
	if cr.Conclusion != "failure" || cr.Title != "6000 newly-failing" {
		t.Errorf("conclusion %q, title %q", cr.Conclusion, cr.Title)
	}
	batches := Batches(cr.Annotations)
	if len(batches) != 120 || len(batches[0]) != 50 || len(batches[119]) != 50 {
		t.Errorf("%d batches", len(batches))
	}
}

// Conclusions: failure when something is newly failing or new and
// failing, neutral when only still failing, success otherwise.
func TestBuildCheckRunConclusion(t *testing.T) {
	for _, tc := range []struct {
		verdicts []Verdict
		want     string
	}{
		{[]Verdict{StillSucceeding, NewlySucceeding}, "success"},
		{[]Verdict{StillFailing, StillSucceeding}, "neutral"},
		{[]Verdict{StillFailing, NewFailing}, "failure"},
		{[]Verdict{NewlyFailing}, "failure"},
		{nil, "success"},
	} {
		s := &System{Attrs: map[string]*AttrEntry{}}
		for i, v := range tc.verdicts {
			s.Attrs[fmt.Sprint("a", i)] = &AttrEntry{Verdict: v}
		}
		cr := BuildCheckRun(&Report{Systems: map[string]*System{"x": s}}, "x", MarkdownOptions{}, "")
		if cr.Conclusion != tc.want {
			t.Errorf("%v: %s, want %s", tc.verdicts, cr.Conclusion, tc.want)
		}
	}
}

// A review body (the whole Markdown report) over GitHub's limit is cut at
// a line, within the limit, pointing at the web page; a short one is left.
func TestFit(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 200_000; i++ {
		fmt.Fprintf(&b, "- `pkg%05d`: failure — %s\n", i, strings.Repeat("ü", 20))
	}
	got := Fit(b.String(), "https://basinix.example/pr/o/r/1")
	if n := utf8.RuneCountInString(got); n > MaxCheckRunText || n < MaxCheckRunText-200 {
		t.Errorf("cut to %d characters", n)
	}
	body, note, _ := strings.Cut(got, "\n\n… cut")
	if !strings.HasPrefix(b.String(), body+"\n") {
		t.Error("not cut at a line")
	}
	if !strings.Contains(note, "https://basinix.example/pr/o/r/1") {
		t.Errorf("note %q", note)
	}
	if short := "- `a`: failure\n"; Fit(short, "x") != short {
		t.Error("a short body was changed")
	}
}

// `@basinix test hello` for a package without tests says so, neutral: the
// PR is not red for it; a failing test still fails.
func TestRequestedCheckRunWithoutTests(t *testing.T) {
	for _, tc := range []struct {
		name        string
		attrs       []BuiltAttr
		title, want string
	}{
		{"no tests", []BuiltAttr{{Attr: "hello.passthru.tests", NoTests: true, Message: "no passthru.tests"}}, "no tests", "neutral"},
		{"no tests and a passing one", []BuiltAttr{{Attr: "hello.passthru.tests", NoTests: true}, {Attr: "x.passthru.tests.a", Result: build.Success}}, "1 built, 0 failed or not built", "success"},
		{"no tests and a failing one", []BuiltAttr{{Attr: "hello.passthru.tests", NoTests: true}, {Attr: "x.passthru.tests.a", Result: build.Failure}}, "0 built, 1 failed or not built", "failure"},
	} {
		cr := RequestedCheckRun(tc.attrs, MarkdownOptions{})
		if cr.Title != tc.title || cr.Conclusion != tc.want {
			t.Errorf("%s: %q %s, want %q %s", tc.name, cr.Title, cr.Conclusion, tc.title, tc.want)
		}
	}
	if cr := RequestedCheckRun([]BuiltAttr{{Attr: "hello.passthru.tests", NoTests: true}}, MarkdownOptions{}); !strings.Contains(cr.Summary, "| `hello.passthru.tests` | no tests |") {
		t.Errorf("summary:\n%s", cr.Summary)
	}
}

// A running build check run says how much building is left, roughly.
func TestBuildProgressSaysWhatIsLeft(t *testing.T) {
	live := func(string) string { return "/live" }
	run := BuildProgressCheckRun(build.Progress{Total: 5, Done: 1, Left: 12*time.Minute + 20*time.Second}, live)
	if !strings.Contains(run.Summary, "About 12 minutes of building left") {
		t.Errorf("summary: %s", run.Summary)
	}
	run = BuildProgressCheckRun(build.Progress{Total: 5, Done: 1, Left: 130 * time.Minute}, live)
	if !strings.Contains(run.Summary, "About 2 h 10 min of building left") {
		t.Errorf("summary: %s", run.Summary)
	}
	if run = BuildProgressCheckRun(build.Progress{Total: 5}, live); strings.Contains(run.Summary, "left") {
		t.Errorf("no estimates, yet: %s", run.Summary)
	}
}
