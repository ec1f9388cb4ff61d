package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/sampleset"
	"github.com/basinix/basinix/store"
)

// pageTimes GETs path n times and reports the p50 and p99 server times
// (as the client sees them on loopback) and the page's size.
func pageTimes(b *testing.B, url string, n int) {
	b.Helper()
	var times []time.Duration
	size := 0
	for range n {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		times = append(times, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
		size = len(body)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(size)/1024, "page-KiB")
}

// reviewOf is a report of n changed attributes with every kind of verdict.
func reviewOf(n int, head string) *report.Report {
	verdicts := []report.Verdict{report.NewlyFailing, report.StillSucceeding, report.StillFailing, report.NewlySucceeding, report.NewSucceeding, report.Removed, report.SkippedBroken}
	sys := &report.System{RebuildLabel: "5001+", RebuildCount: n, Attrs: map[string]*report.AttrEntry{}, EvalErrors: []report.ErrorEntry{{Attr: "broken", Message: "undefined variable"}}}
	for i := range n {
		v := verdicts[i%len(verdicts)]
		e := &report.AttrEntry{Change: "changed", Verdict: v, DrvPath: fmt.Sprintf("/nix/store/%032d-pkg%05d-1.0.drv", i, i), BaseDrvPath: fmt.Sprintf("/nix/store/%032d-pkg%05d-0.9.drv", i+n, i),
			Head: build.Success, Base: build.Success, Position: fmt.Sprintf("pkgs/by-name/pk/pkg%05d/package.nix:12", i)}
		if v == report.NewlyFailing {
			e.Head, e.FailingSince = build.Failure, "push 1 (abc) of this PR"
		}
		if i%10 == 0 {
			e.Outputs = &build.OutputDiff{NarSize: build.SizeChange{Base: 1000, Head: 1200}, ClosureSize: build.SizeChange{Base: 5000, Head: 5200},
				Files: &build.FileDiff{Changed: 1, Entries: []build.FileChange{{Output: "out", Path: "bin/x", Change: "changed", Kind: "executable", BaseSize: 10, HeadSize: 12}}}}
		}
		sys.Attrs[fmt.Sprintf("pkg%05d", i)] = e
	}
	return &report.Report{Base: report.Ref{Ref: "master", Commit: "b"}, Head: report.Ref{Ref: head, Commit: head}, Systems: map[string]*report.System{"x86_64-linux": sys}}
}

func addReviewed(b *testing.B, st *store.Store, pr int, rep *report.Report) {
	b.Helper()
	ctx := context.Background()
	id, _, _, err := st.AddRevision(ctx, store.Revision{Repo: "octo/pkgs", InstallationID: installationID, CloneURL: "file:///r", PR: pr, HeadSHA: rep.Head.Commit,
		BaseRef: "master", Title: fmt.Sprintf("pkg%05d: 0.9 -> 1.0", pr), Author: "someone"})
	if err != nil {
		b.Fatal(err)
	}
	if err := review.SaveReport(ctx, st, id, rep); err != nil {
		b.Fatal(err)
	}
	if err := st.FinishRevision(ctx, id, store.Done, nil, ""); err != nil {
		b.Fatal(err)
	}
}

// The PR page of a PR with 5,000 changed attributes, and the index with
// 1,000 PRs, served by the real server from its store:
//
//	go test ./app -run '^$' -bench WebPages -benchtime 1x
func BenchmarkWebPages(b *testing.B) {
	f := newAppWith(b, sampleset.Options{Bulk: 1, NoPR: true})
	st := f.srv.Reviewer().Store()
	if err := st.PutRepoPrivate(context.Background(), "octo/pkgs", false); err != nil {
		b.Fatal(err)
	}
	addReviewed(b, st, 1, reviewOf(5000, "head1"))
	b.Run("pr-5000-attrs", func(b *testing.B) {
		for range b.N {
			pageTimes(b, f.web+"/pr/octo/pkgs/1", 100)
		}
	})
	b.Run("pr-5000-attrs-all", func(b *testing.B) {
		for range b.N {
			pageTimes(b, f.web+"/pr/octo/pkgs/1?all=1", 20)
		}
	})
	for pr := 2; pr <= 1000; pr++ {
		addReviewed(b, st, pr, reviewOf(5, fmt.Sprintf("head%d", pr)))
	}
	b.Run("index-1000-prs", func(b *testing.B) {
		for range b.N {
			pageTimes(b, f.web+"/", 100)
		}
	})
}
