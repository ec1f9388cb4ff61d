package report_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
)

// reviewed is the sample PR's report (testdata/sample-pr.json, a copy of
// review's golden report) with builds done: what is named fail* failed
// with testdata/failing.log, the rest built.
func reviewed(t *testing.T) *report.Report {
	t.Helper()
	b, err := os.ReadFile("testdata/sample-pr.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, sys := range rep.Systems {
		outcomes := map[string]build.Outcome{}
		for name, e := range sys.Attrs {
			o := build.Outcome{Drv: e.DrvPath, Result: build.Success}
			if strings.HasPrefix(name, "fail") || strings.HasPrefix(name, "willfail") {
				o = build.Outcome{Drv: e.DrvPath, Result: build.Failure, Log: filepath.Join("testdata", "failing.log"), Message: "builder failed with exit code 2"}
			}
			outcomes[e.DrvPath] = o
			if e.BaseDrvPath != "" {
				outcomes[e.BaseDrvPath] = build.Outcome{Drv: e.BaseDrvPath, Result: build.Success}
			}
			for _, test := range e.Tests {
				outcomes[test.DrvPath] = build.Outcome{Drv: test.DrvPath, Result: build.Success}
			}
		}
		sys.ApplyBuilds(outcomes)
	}
	return &rep
}

const details = "https://basinix.example/pr/octo/pkgs/1"

var opt = report.MarkdownOptions{Link: func(log string) string { return "https://basinix.example/log/" + filepath.Base(log) }}

// checkRunText is a check run as GitHub gets it, in one text.
func checkRunText(cr report.CheckRun) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "title: %s\nconclusion: %s\n\n%s\n", cr.Title, cr.Conclusion, cr.Summary)
	anns := append([]report.Annotation(nil), cr.Annotations...)
	sort.SliceStable(anns, func(i, j int) bool {
		return anns[i].Path < anns[j].Path || anns[i].Path == anns[j].Path && anns[i].Line < anns[j].Line
	})
	for _, a := range anns {
		fmt.Fprintf(&b, "\n--- annotation %s:%d %s: %s\n%s\n", a.Path, a.Line, a.Level, a.Title, a.Message)
	}
	return []byte(b.String())
}

// The check runs and the review body of the sample PR, exactly: a change
// of wording, order or escaping shows here as a diff to read.
func TestGoldenCheckRunsAndReviewBody(t *testing.T) {
	rep := reviewed(t)
	testenv.Golden(t, "eval-check-run.txt", checkRunText(report.EvalCheckRun(rep, details)))
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		testenv.Golden(t, "build-check-run-"+system+".txt", checkRunText(report.BuildCheckRun(rep, system, opt, details)))
	}
	var b strings.Builder
	if err := report.WriteMarkdown(&b, rep, opt); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "review-body.md", []byte(report.Fit(b.String(), details)))
}
