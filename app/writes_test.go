package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/sampleset"
)

// GitHub acts, then answers 502 (its answer lost on the way): the check
// run, the comment and the merge are each made exactly once, where the
// retry of any 5xx once made them twice.
func TestServeWritesOnceWhenGitHubActsThen502s(t *testing.T) {
	// The sample PR breaks evaluation on purpose; what is told here is
	// the writes, so merge asks for no checks.
	f := newAppConfig(t, sampleset.Options{Bulk: 1}, func(c *Config) { c.Commands.MergeChecks = nil })
	f.gh.SetPermission("maint", "maintain")
	head := f.sha(t, f.repo.Head)
	mergeable := true
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir, Mergeable: &mergeable})

	// "the eval check run is created, GitHub's answer lost".
	f.gh.FailOpAfterActing("checks/create", 1, http.StatusBadGateway)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	names := map[string]int{}
	for _, c := range f.gh.CheckRuns("octo/pkgs") {
		names[c.Name]++
	}
	for name, n := range names {
		if n != 1 {
			t.Errorf("%d check runs named %q", n, name)
		}
	}

	// "a reply is posted, GitHub's answer lost".
	f.gh.FailOpAfterActing("issues/create-comment", 1, http.StatusBadGateway)
	if code, body := f.deliver(t, "issue_comment", f.comment(t, 601, "maint", "User", "@basinix help")); code != http.StatusOK {
		t.Fatalf("help: %d %s", code, body)
	}
	help := 0
	for _, c := range f.gh.Comments("octo/pkgs", 1) {
		if strings.Contains(c, "Commands (one per line") {
			help++
		}
	}
	if help != 1 {
		t.Errorf("%d help replies, want 1", help)
	}

	// "the merge is made, GitHub's answer lost": one merge, no refusal.
	f.gh.FailOpAfterActing("pulls/merge", 1, http.StatusBadGateway)
	f.deliver(t, "issue_comment", f.comment(t, 602, "maint", "User", "@basinix merge"))
	if n := f.gh.Merges("octo/pkgs", 1); n != 1 {
		t.Errorf("merged %d times, want once", n)
	}
	for _, c := range f.gh.Comments("octo/pkgs", 1) {
		if strings.Contains(c, "Not merged") {
			t.Errorf("a merge GitHub made is reported refused: %s", c)
		}
	}
}

// Webhooks only record: with GitHub answering 502 to the next requests,
// a comment command and an installation are each answered within a
// second, and carried out once GitHub answers again.
func TestServeWebhooksAnswerAtOnceWhateverGitHubDoes(t *testing.T) {
	f := newApp(t)
	head := f.sha(t, f.repo.Head)
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir})
	f.gh.Fail(5, http.StatusBadGateway, "")
	for i, d := range []struct{ event, body string }{
		{"issue_comment", string(f.comment(t, 701, "maint", "User", "@basinix help"))},
		{"installation", string(f.event(t, "installation.created.1", func(map[string]any) {}))},
	} {
		start := time.Now()
		resp, err := f.gh.Deliver(f.url, d.event, fmt.Sprintf("slow-github-%d", i), []byte(d.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != http.StatusOK || took > time.Second {
			t.Errorf("%s answered %d after %s, want 200 within a second", d.event, resp.StatusCode, took)
		}
	}
	f.settle(t)
	help := 0
	for _, c := range f.gh.Comments("octo/pkgs", 1) {
		if strings.Contains(c, "Commands (one per line") {
			help++
		}
	}
	if help != 1 || len(f.gh.Reactions(701)) != 1 {
		t.Errorf("%d help replies and reactions %v, want one of each", help, f.gh.Reactions(701))
	}
	// The installation's open PR is reviewed.
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
}
