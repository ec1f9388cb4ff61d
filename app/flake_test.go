package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// A flake's PR is gated job by job: one check run per job with its exact
// conclusion, the summary, and no build check runs. On the next push, a
// job that did not change and whose result is known is completed at once,
// in one request, without a build.
func TestServeFlakeJobs(t *testing.T) {
	testenv.RequireNix(t)
	flake, err := sampleset.GenerateFlake(t.TempDir(), sampleset.FlakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newAppRepo(t, &flake.Repo, func(c *Config) { c.Eval.FlakeLocalInputs = []string{flake.Inputs} })
	head := f.sha(t, "pr")
	if code, body := f.deliver(t, "pull_request", f.prEvent(t, "opened", head)); code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", code, body)
	}
	want := map[string]string{
		"basinix / eval":         "failure",
		"basinix / jobs":         "failure",
		"basinix / passing":      "success",
		"basinix / group.nested": "success",
		"basinix / failing":      "neutral",
		"basinix / changes":      "failure",
		"basinix / fixed":        "success",
		"basinix / depfails":     "failure",
		"basinix / newjob":       "success",
		"basinix / evalbreaks":   "failure",
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	runs := f.waitChecks(t, head, names...)
	for name, conclusion := range want {
		if c := runs[name]; c.Conclusion != conclusion {
			t.Errorf("%s: %s %q, want %s\n%s", name, c.Conclusion, c.Title, conclusion, c.Summary)
		}
	}
	if s := runs["basinix / depfails"].Summary; !strings.Contains(s, "dependency `brokendep` failed") {
		t.Errorf("depfails does not name its failed dependency:\n%s", s)
	}
	if got := strings.Join(annotated(runs["basinix / eval"]), " "); got != "jobs/evalbreaks.nix:3" {
		t.Errorf("eval annotations: %s", got)
	}
	if s := runs["basinix / jobs"].Summary; !strings.Contains(s, "`changes`: newly failing") || !strings.Contains(s, "`failing`: still failing") {
		t.Errorf("the jobs summary lacks the failing jobs: %+v", runs["basinix / jobs"])
	}

	// The next push changes one job; the others are known.
	testenv.Git(t, flake.Dir, "checkout", "--quiet", "pr")
	if err := os.WriteFile(filepath.Join(flake.Dir, "jobs/newjob.nix"), []byte("{ mk, mkWith }:\n\nmk \"newjob\" \"echo newer > $out\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, flake.Dir, "commit", "--quiet", "-am", "newjob: newer")
	testenv.Git(t, flake.Dir, "checkout", "--quiet", "master")
	head2 := f.sha(t, "pr")
	before := f.gh.Requests()
	if code, body := f.deliver(t, "pull_request", f.prEvent(t, "synchronize", head2)); code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", code, body)
	}
	runs = f.waitChecks(t, head2, names...)
	for _, job := range []string{"basinix / passing", "basinix / failing", "basinix / group.nested"} {
		if c := runs[job]; c.Conclusion != want[job] || c.Updates != 0 {
			t.Errorf("%s on the second push: %s after %d updates, want %s at creation", job, c.Conclusion, c.Updates, want[job])
		}
	}
	after := f.gh.Requests()
	calls := after["checks/create"] - before["checks/create"] + after["checks/update"] - before["checks/update"]
	// eval: create + 2 updates; each job at most 2; the summary 2, and
	// progress updates of the summary while newjob builds.
	if max := 3 + 2*(len(want)-2) + 2 + 5; calls > max {
		t.Errorf("%d check run requests for %d jobs, want at most %d", calls, len(want)-2, max)
	}
	t.Logf("second push: %d check run requests for %d jobs", calls, len(want)-2)
	if v := f.gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub would refuse:\n%s", strings.Join(v, "\n"))
	}
}
