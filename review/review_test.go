package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

func newReviewer(t *testing.T) *Reviewer {
	t.Helper()
	testenv.RequireNix(t)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Eval.Workers = 2
	rv, err := New(context.Background(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rv.Close() })
	return rv
}

func review(t *testing.T, rv *Reviewer, req Request) *report.Report {
	t.Helper()
	if req.Systems == nil {
		req.Systems = []string{"x86_64-linux"}
	}
	rep, err := rv.Review(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// withoutTimings drops what differs from run to run.
func withoutTimings(rep *report.Report) *report.Report {
	c := *rep
	c.Timings = nil
	c.Evaluations = nil
	for _, e := range rep.Evaluations {
		e.Seconds, e.Processes, e.Retired = 0, 0, 0
		c.Evaluations = append(c.Evaluations, e)
	}
	return &c
}

// The sample PR's review, on two systems, is exactly the golden report:
// added, removed, changed against the base tip (not the fork point),
// eval-broken with file:line, eval-fixed, alias errors, skipped, tests.
func TestReviewSamplePR(t *testing.T) {
	rv := newReviewer(t)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 20})
	rep := review(t, rv, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head, Systems: []string{"x86_64-linux", "aarch64-linux"}})

	if rep.Head.Merged == rep.Head.Commit || rep.Base.Commit != repo.BaseCommit {
		t.Errorf("want head merged onto the base tip %s, got %+v", repo.BaseCommit, rep.Head)
	}
	js, err := json.MarshalIndent(withoutTimings(rep), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "sample-pr.json", append(js, '\n'))
	var summary bytes.Buffer
	if err := report.WriteSummary(&summary, rep); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "sample-pr.txt", summary.Bytes())
	if !rep.EvalBroken() {
		t.Error("the sample PR breaks evaluation, the report says it does not")
	}
}

// A base branch evaluated once serves every later review.
func TestReviewReusesBaseEvaluation(t *testing.T) {
	rv := newReviewer(t)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 20})
	first := review(t, rv, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Pushes[0]})
	second := review(t, rv, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head})
	cached := func(rep *report.Report) []bool {
		var out []bool
		for _, e := range rep.Evaluations {
			out = append(out, e.Cached)
		}
		return out
	}
	if diff := cmp.Diff([]bool{false, false}, cached(first)); diff != "" {
		t.Errorf("first review, cached base and head (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, false}, cached(second)); diff != "" {
		t.Errorf("second review, cached base and head (-want +got):\n%s", diff)
	}
	again := review(t, rv, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head})
	if diff := cmp.Diff([]bool{true, true}, cached(again)); diff != "" {
		t.Errorf("same review again (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(withoutTimings(second).Systems, withoutTimings(again).Systems); diff != "" {
		t.Errorf("a cached review differs from the fresh one (-fresh +cached):\n%s", diff)
	}
}

// A head that conflicts with the base tip is compared with the merge-base,
// and the report says so.
func TestReviewMergeConflict(t *testing.T) {
	rv := newReviewer(t)
	repo := testenv.Sample(t, sampleset.Options{})
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "-b", "conflicting", repo.ForkPoint)
	path := filepath.Join(repo.Dir, "pkgs/by-name/libbase/default.nix")
	if err := os.WriteFile(path, []byte("{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"libbase\";\n  version = \"2.0\";\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, repo.Dir, "commit", "--quiet", "-am", "libbase: 1.0 -> 2.0")
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "master")

	rep := review(t, rv, Request{Repo: repo.Dir, Base: "master", Head: "conflicting"})
	want := &report.Conflict{BaseTip: repo.BaseCommit, MergeBase: repo.ForkPoint, Files: []string{"pkgs/by-name/libbase/default.nix"}}
	if diff := cmp.Diff(want, rep.Conflict); diff != "" {
		t.Errorf("conflict (-want +got):\n%s", diff)
	}
	if e := rep.Systems["x86_64-linux"].Attrs["libbase"]; e == nil || e.Change != "changed" {
		t.Errorf("libbase: want changed against the merge-base, got %+v", e)
	}
}

func TestReviewBadInput(t *testing.T) {
	rv := newReviewer(t)
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	empty := filepath.Join(t.TempDir(), "empty")
	os.MkdirAll(empty, 0o755)
	testenv.Git(t, empty, "init", "--quiet", "--initial-branch=master")
	testenv.Git(t, empty, "commit", "--quiet", "--allow-empty", "-m", "nothing")
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"missing repository", Request{Repo: "/does/not/exist", Base: "master", Head: "master"}},
		{"missing base", Request{Repo: repo.Dir, Base: "nope", Head: "master"}},
		{"missing head", Request{Repo: repo.Dir, Base: "master", Head: "nope"}},
		{"no default.nix", Request{Repo: empty, Base: "master", Head: "master"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Systems = []string{"x86_64-linux"}
			_, err := rv.Review(context.Background(), tc.req)
			if !errors.Is(err, ErrInput) {
				t.Fatalf("want ErrInput, got %v", err)
			}
		})
	}
}
