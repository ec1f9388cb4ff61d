package report

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/basinix/basinix/build"
)

func TestJobCheckNames(t *testing.T) {
	for _, tc := range []struct {
		job, system string
		systems     int
		want        string
	}{
		{"hello", "x86_64-linux", 1, "basinix / hello"},
		{"hello", "aarch64-linux", 2, "basinix / hello (aarch64-linux)"},
		{"eval", "x86_64-linux", 1, "basinix / job eval"},
		{"jobs", "x86_64-linux", 1, "basinix / job jobs"},
		// Not `@basinix build`'s or `test`'s check runs either.
		{"build", "x86_64-linux", 2, "basinix / job build (x86_64-linux)"},
		{"test", "x86_64-linux", 2, "basinix / job test (x86_64-linux)"},
	} {
		if got := JobCheckName(tc.job, tc.system, tc.systems); got != tc.want {
			t.Errorf("JobCheckName(%q, %q, %d) = %q, want %q", tc.job, tc.system, tc.systems, got, tc.want)
		}
	}
}

// A 10,000-character job name gives a check run name GitHub takes, and two
// long names that differ only at the end stay apart.
func TestLongJobNamesAreCut(t *testing.T) {
	a := JobCheckName(strings.Repeat("x", 10000)+"a", "x86_64-linux", 1)
	b := JobCheckName(strings.Repeat("x", 10000)+"b", "x86_64-linux", 1)
	if utf8.RuneCountInString(a) > 255 || a == b || !utf8.ValidString(a) {
		t.Errorf("long names: %d bytes, distinct %v, valid UTF-8 %v", len(a), a != b, utf8.ValidString(a))
	}
}

// The summary is not final while a job waits, even when another already
// failed: a required summary must not turn red, then green, then red.
func TestJobsSummaryWaitsForEveryJob(t *testing.T) {
	r := &Report{Jobs: true, Systems: map[string]*System{"x86_64-linux": {Attrs: map[string]*AttrEntry{
		"broken":  {Change: "eval-broken", Verdict: EvalBroken},
		"waiting": {Change: "changed", Verdict: Pending, Head: build.Pending},
	}}}}
	if cr := JobsCheckRun(r, MarkdownOptions{}, ""); cr.Conclusion != "" {
		t.Errorf("with a job waiting: conclusion %q (%s), want none yet", cr.Conclusion, cr.Title)
	}
	r.Systems["x86_64-linux"].Attrs["waiting"].Verdict = StillSucceeding
	if cr := JobsCheckRun(r, MarkdownOptions{}, ""); cr.Conclusion != "failure" {
		t.Errorf("once built: conclusion %q, want failure", cr.Conclusion)
	}
	e := &AttrEntry{Change: "unchanged", Verdict: Pending}
	if !KnownResult(e, build.Failure) || e.Verdict != StillFailing || JobConclusion(e.Verdict, false) != "neutral" || JobConclusion(e.Verdict, true) != "failure" {
		t.Errorf("a known failure of an unchanged job: %+v", e)
	}
	if KnownResult(&AttrEntry{Change: "unchanged", Verdict: Pending}, build.Timeout) {
		t.Errorf("a timeout is taken as a known result")
	}
}
