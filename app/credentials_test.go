package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// A wrong App id (or a key of another App) is refused at start with an
// error that says what to check, instead of a server that says ok and
// fails every review later with "context canceled".
func TestServeRefusesWrongCredentials(t *testing.T) {
	testenv.RequireNix(t)
	gh := fakegithub.New(t)
	other := fakegithub.New(t)
	for name, tweak := range map[string]func(*Config){
		"wrong App id": func(c *Config) { c.GitHub.App.IntegrationID = gh.AppID + 1 },
		"another key":  func(c *Config) { c.GitHub.App.PrivateKey = other.PrivateKeyPEM },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.GitHub.V3APIURL = gh.URL
			cfg.GitHub.App.IntegrationID, cfg.GitHub.App.PrivateKey, cfg.GitHub.App.WebhookSecret = gh.AppID, gh.PrivateKeyPEM, gh.WebhookSecret
			tweak(&cfg)
			if err := cfg.LoadSecrets(func(string) (string, bool) { return "", false }); err != nil {
				t.Fatal(err)
			}
			srv, err := NewServer(context.Background(), cfg, testenv.Logger(t))
			if err == nil {
				srv.Close()
				t.Fatal("the server started")
			}
			if !strings.Contains(err.Error(), "refuses the App's credentials") || !strings.Contains(err.Error(), "integration_id") {
				t.Errorf("error %q does not say what to check", err)
			}
		})
	}
}

// /healthz says whether GitHub takes the App's credentials.
func TestHealthzReportsGitHub(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 1, NoPR: true})
	resp, err := http.Get(f.web + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `github: reachable as "basinix"`) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, b)
	}
}

// An installation token GitHub stops taking (revoked, or expired before
// its time) is replaced by a new one on the 401, once: a comment command
// is answered, where every one answered 500 until a restart.
func TestServeRefreshesARevokedToken(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 1})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	f.gh.RevokeTokens()
	if code, body := f.deliver(t, "issue_comment", f.comment(t, 301, "someone", "User", "@basinix help")); code != http.StatusOK {
		t.Fatalf("comment after the token was revoked: %d %s", code, body)
	}
	if c := f.gh.Comments("octo/pkgs", 1); len(c) == 0 || !strings.Contains(c[len(c)-1], "Commands") {
		t.Errorf("no help reply: %v", c)
	}
}

// `@basinix rebuild` on a merged PR is refused politely: basinix keeps
// its last review, instead of reviewing it again against the branch as it
// is now and replacing the result with "rebuild label 0".
func TestServeRefusesToReviewAMergedPR(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 1})
	f.gh.SetPermission("maint", "maintain")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	before := len(f.gh.CheckRuns("octo/pkgs"))
	merged := f.event(t, "issue_comment.created.0", func(p map[string]any) {
		issue := p["issue"].(map[string]any)
		issue["number"], issue["state"] = 1, "closed"
		issue["pull_request"] = map[string]any{"url": "https://api.github.com/repos/octo/pkgs/pulls/1", "merged_at": "2026-12-01T10:00:00Z"}
		c := p["comment"].(map[string]any)
		c["id"], c["body"] = 501, "@basinix rebuild"
		c["user"].(map[string]any)["login"], c["user"].(map[string]any)["type"] = "maint", "User"
	})
	if code, body := f.deliver(t, "issue_comment", merged); code != http.StatusOK {
		t.Fatalf("comment: %d %s", code, body)
	}
	c := f.gh.Comments("octo/pkgs", 1)
	if len(c) == 0 || !strings.Contains(c[len(c)-1], "This pull request is merged: basinix keeps its last review") {
		t.Errorf("reply: %v", c)
	}
	// The command is handled within the webhook's request: a re-review
	// would be queued in the store by now.
	revs, err := f.srv.Reviewer().Store().PRRevisions(context.Background(), "octo/pkgs", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Attempt != 0 || revs[0].State != "done" {
		t.Errorf("revisions after the refused rebuild: %+v", revs)
	}
	if n := len(f.gh.CheckRuns("octo/pkgs")); n != before {
		t.Errorf("%d check runs after the refused rebuild, %d before", n, before)
	}
	_, page := f.get(t, "/pr/octo/pkgs/1")
	if !strings.Contains(page, "rebuild label 11-100") {
		t.Error("the PR page lost its last review")
	}
}
