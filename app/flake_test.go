package app

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
	"github.com/basinix/basinix/store"
)

// flakeApp runs a server on the sample flake.
func flakeApp(t *testing.T, opt sampleset.FlakeOptions) (*appFixture, *sampleset.FlakeRepo) {
	t.Helper()
	testenv.RequireNix(t)
	flake, err := sampleset.GenerateFlake(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return newAppRepo(t, &flake.Repo, func(c *Config) { c.Eval.FlakeLocalInputs = []string{flake.Inputs} }), flake
}

// openedFlakePR runs a server on the sample flake, whose PR 1 is opened.
func openedFlakePR(t *testing.T, opt sampleset.FlakeOptions) (*appFixture, *sampleset.FlakeRepo, string) {
	t.Helper()
	f, flake := flakeApp(t, opt)
	head := f.sha(t, "pr")
	if code, body := f.deliver(t, "pull_request", f.prEvent(t, "opened", head)); code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", code, body)
	}
	return f, flake, head
}

// A flake's PR is gated job by job: one check run per job with its exact
// conclusion, the summary, and no build check runs. On the next push, a
// job that did not change and whose result is known is completed at once,
// in one request, without a build. The same for a flake in a directory of
// its repository (.basinix.toml), annotated at the repository's files.
func TestServeFlakeJobs(t *testing.T) {
	for _, dir := range []string{"", "ci"} {
		t.Run("dir="+cmp.Or(dir, "."), func(t *testing.T) { serveFlakeJobs(t, dir) })
	}
}

func serveFlakeJobs(t *testing.T, dir string) {
	f, flake, head := openedFlakePR(t, sampleset.FlakeOptions{Dir: dir})
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
	if got, want := strings.Join(annotated(runs["basinix / eval"]), " "), path.Join(dir, "jobs/evalbreaks.nix:3"); got != want {
		t.Errorf("eval annotations: %s, want %s", got, want)
	}
	if s := runs["basinix / jobs"].Summary; !strings.Contains(s, "`changes`: newly failing") || !strings.Contains(s, "`failing`: still failing") {
		t.Errorf("the jobs summary lacks the failing jobs: %+v", runs["basinix / jobs"])
	}

	// The next push changes one job; the others are known.
	testenv.Git(t, flake.Dir, "checkout", "--quiet", "pr")
	if err := os.WriteFile(filepath.Join(flake.Dir, dir, "jobs/newjob.nix"), []byte("{ mk, mkWith }:\n\nmk \"newjob\" \"echo newer > $out\"\n"), 0o644); err != nil {
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

// A flake whose PR declares an input flake.lock does not lock: the PR's
// eval check run fails and says what to do, and no job is gated on an
// evaluation that did not happen.
func TestServeFlakeUnlockedInput(t *testing.T) {
	f, _, head := openedFlakePR(t, sampleset.FlakeOptions{Unlocked: true})
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / jobs")
	eval := runs["basinix / eval"]
	if eval.Conclusion != "failure" || !strings.Contains(eval.Summary+eval.Text, "input unlocked of the flake not locked in flake.lock: run `nix flake lock` and commit flake.lock") {
		t.Errorf("eval: %s %q\n%s\n%s", eval.Conclusion, eval.Title, eval.Summary, eval.Text)
	}
	if jobs := runs["basinix / jobs"]; jobs.Conclusion != "failure" {
		t.Errorf("jobs: %s %q, want failure: the PR's jobs do not evaluate\n%s", jobs.Conclusion, jobs.Title, jobs.Summary)
	}
	if strings.Contains(eval.Summary+eval.Text, "-source") || strings.Contains(eval.Summary+eval.Text, f.cfg.DataDir) {
		t.Errorf("the message names the server's paths:\n%s", eval.Summary+eval.Text)
	}
}

// GitHub's merge queue: a merge_group checks_requested event gets the
// required check runs on the group's head commit, with nothing built again
// (the group's head has the derivations the PR's merged head had); a
// destroyed event is accepted.
func TestServeMergeQueue(t *testing.T) {
	f, flake, head := openedFlakePR(t, sampleset.FlakeOptions{})
	jobs := []string{"basinix / eval", "basinix / jobs", "basinix / passing", "basinix / group.nested", "basinix / failing", "basinix / changes",
		"basinix / fixed", "basinix / depfails", "basinix / newjob", "basinix / evalbreaks"}
	onPR := f.waitChecks(t, head, jobs...)
	logs := func() map[string]time.Time {
		out := map[string]time.Time{}
		entries, _ := os.ReadDir(filepath.Join(f.cfg.DataDir, "logs"))
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				out[e.Name()] = info.ModTime()
			}
		}
		return out
	}
	built := logs()
	if len(built) == 0 {
		t.Fatal("the PR built nothing")
	}

	// The queue merges the PR onto master on a branch of its own.
	base := f.sha(t, "master")
	queue := fmt.Sprintf("gh-readonly-queue/master/pr-1-%s", head)
	testenv.Git(t, flake.Dir, "checkout", "--quiet", "-b", queue, "master")
	testenv.Git(t, flake.Dir, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #1", "pr")
	testenv.Git(t, flake.Dir, "checkout", "--quiet", "master")
	group := f.sha(t, queue)
	repo := fakegithub.Repo{Installation: installationID, FullName: "octo/pkgs", CloneURL: "file://" + flake.Dir}
	if code, body := f.deliver(t, "merge_group", fakegithub.MergeGroupEvent(t, repo, "checks_requested", 1, group, "master", base)); code != http.StatusOK {
		t.Fatalf("merge_group webhook answered %d: %s", code, body)
	}
	onGroup := f.waitChecks(t, group, jobs...)
	for _, name := range jobs {
		if onGroup[name].Conclusion != onPR[name].Conclusion {
			t.Errorf("%s: %s on the merge group, %s on the PR", name, onGroup[name].Conclusion, onPR[name].Conclusion)
		}
	}
	if after := logs(); !maps.Equal(after, built) {
		t.Errorf("the merge group built again: logs %v, before %v", after, built)
	}
	if code, body := f.deliver(t, "merge_group", fakegithub.MergeGroupEvent(t, repo, "destroyed", 1, group, "master", base)); code != http.StatusOK {
		t.Errorf("merge_group destroyed answered %d: %s", code, body)
	}
	bad := fakegithub.Event(t, "pull_request.opened.0", repo, func(p map[string]any) {
		p["action"], p["merge_group"] = "checks_requested", map[string]any{"head_sha": group, "head_ref": "refs/heads/feature", "base_ref": "refs/heads/master"}
	})
	if code, _ := f.deliver(t, "merge_group", bad); code == http.StatusOK {
		t.Errorf("a merge group whose head ref is no merge queue's was accepted")
	}
}

// Push CI: each push to a tracked branch of a flake gets the job check
// runs on its commit, the new tip told against the previous one. On the
// first tip every job is built; a job failing on the branch fails its
// check run, whether it failed before or not. On the next push the jobs
// that did not change are completed at creation from what is remembered,
// the branch's history records the jobs that changed, and the branch's
// page shows the jobs.
func TestServePushCI(t *testing.T) {
	f, flake := flakeApp(t, sampleset.FlakeOptions{})
	first := f.sha(t, "master")
	f.push(t, first)
	jobs := func(names ...string) []string { return append([]string{"basinix / eval", "basinix / jobs"}, names...) }
	runs := f.waitChecks(t, first, jobs("basinix / passing", "basinix / group.nested", "basinix / failing", "basinix / changes",
		"basinix / fixed", "basinix / depfails", "basinix / oldjob")...)
	for name, want := range map[string]string{
		"basinix / eval": "success", "basinix / jobs": "failure", "basinix / passing": "success", "basinix / failing": "failure",
		"basinix / fixed": "failure", "basinix / changes": "success", "basinix / oldjob": "success",
	} {
		if c := runs[name]; c.Conclusion != want {
			t.Errorf("first tip: %s %s %q, want %s\n%s", name, c.Conclusion, c.Title, want, c.Summary)
		}
	}
	if c := runs["basinix / jobs"]; c.Title != "2 jobs failing" || !strings.Contains(c.DetailsURL, "/branch/octo/pkgs/master") {
		t.Errorf("first tip's summary: %q, details %s", c.Title, c.DetailsURL)
	}

	// The PR's commits land on master (fast-forward).
	testenv.Git(t, flake.Dir, "merge", "--quiet", "--ff-only", "pr")
	second := f.sha(t, "master")
	f.push(t, second)
	want := map[string]string{
		"basinix / eval": "failure", "basinix / jobs": "failure", "basinix / passing": "success", "basinix / group.nested": "success",
		"basinix / failing": "failure", "basinix / changes": "failure", "basinix / fixed": "success", "basinix / depfails": "failure",
		"basinix / newjob": "success", "basinix / evalbreaks": "failure",
	}
	runs = f.waitChecks(t, second, slices.Collect(maps.Keys(want))...)
	for name, conclusion := range want {
		if c := runs[name]; c.Conclusion != conclusion {
			t.Errorf("second tip: %s %s %q, want %s\n%s", name, c.Conclusion, c.Title, conclusion, c.Summary)
		}
	}
	for _, job := range []string{"basinix / passing", "basinix / failing", "basinix / group.nested"} {
		if c := runs[job]; c.Updates != 0 {
			t.Errorf("%s, unchanged and known, was updated %d times (built again?)", job, c.Updates)
		}
	}
	if c := runs["basinix / changes"]; c.Title != "newly failing" {
		t.Errorf("changes: %q, want newly failing", c.Title)
	}
	if got := strings.Join(annotated(runs["basinix / eval"]), " "); got != "jobs/evalbreaks.nix:3" {
		t.Errorf("eval annotations: %s", got)
	}

	var hist []store.HistoryEntry
	testenv.Eventually(t, time.Minute, func() bool {
		hist, _ = f.srv.Reviewer().Store().AttrHistory(context.Background(), "octo/pkgs", "master", "x86_64-linux", "changes", 10)
		return len(hist) == 1 && hist[0].Result == "failure"
	}, func() string { return fmt.Sprintf("the history of job changes: %+v", hist) })
	if hist[0].Commit != second {
		t.Errorf("changes' history names %s, want %s", hist[0].Commit, second)
	}
	_, page := f.get(t, "/branch/octo/pkgs/master")
	for _, s := range []string{"x86_64-linux: jobs", "<code>basinix / changes</code>", "newly-failing", second[:12], `href="/attr/octo/pkgs/master/changes?system=x86_64-linux"`} {
		if !strings.Contains(page, s) {
			t.Errorf("branch page lacks %q:\n%s", s, page)
		}
	}
	if _, index := f.get(t, "/"); !strings.Contains(index, `<a href="/branch/octo/pkgs/master">octo/pkgs master</a>`) {
		t.Errorf("index lacks the pushes:\n%s", index)
	}
}
