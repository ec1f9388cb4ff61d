package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// app is a running `basinix serve` against a fake GitHub, installed on
// octo/pkgs, whose clone URL is a sample repository.
type appFixture struct {
	gh     *fakegithub.Server
	srv    *Server
	url    string // the webhook URL
	repo   *sampleset.Repo
	stop   func()
	serial atomic.Int64
}

const installationID = 77

func newApp(t *testing.T) *appFixture {
	t.Helper()
	testenv.RequireNix(t)
	gh := fakegithub.New(t)
	gh.AddInstallation(installationID, "octo", "octo/pkgs")
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Eval.Workers = 2
	cfg.GitHub.V3APIURL = gh.URL
	cfg.GitHub.App.IntegrationID = gh.AppID
	cfg.GitHub.App.PrivateKey = gh.PrivateKeyPEM
	cfg.GitHub.App.WebhookSecret = gh.WebhookSecret
	cfg.Server.PublicURL = "https://basinix.example"
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(context.Background(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunWorkers(ctx) }()
	f := &appFixture{gh: gh, srv: srv, url: ts.URL + "/api/github/hook", repo: testenv.Sample(t, sampleset.Options{Bulk: 20, BuildLog: filepath.Join(t.TempDir(), "builds")})}
	f.stop = func() {
		cancel()
		<-done
		ts.Close()
		srv.Close()
	}
	t.Cleanup(func() {
		if f.stop != nil {
			f.stop()
		}
		if v := gh.Violations(); len(v) > 0 {
			t.Errorf("requests GitHub would refuse:\n%s", strings.Join(v, "\n"))
		}
	})
	return f
}

// prEvent is the real pull_request payload rewritten to point at the
// fixture: PR 1 of octo/pkgs, head at commit head, onto master.
func (f *appFixture) prEvent(t *testing.T, action, head string) []byte {
	t.Helper()
	name := map[string]string{"opened": "pull_request.opened.0", "synchronize": "pull_request.synchronize.22", "closed": "pull_request.closed.3"}[action]
	p := fakegithub.Payload(t, name)
	p["action"] = action
	p["installation"] = map[string]any{"id": installationID}
	repo := p["repository"].(map[string]any)
	repo["full_name"], repo["name"], repo["clone_url"] = "octo/pkgs", "pkgs", "file://"+f.repo.Dir
	repo["owner"].(map[string]any)["login"] = "octo"
	pr := p["pull_request"].(map[string]any)
	pr["number"], pr["draft"] = 1, false
	p["number"] = 1
	if action == "closed" {
		pr["state"] = "closed"
	} else {
		pr["state"] = "open"
	}
	pr["head"].(map[string]any)["sha"] = head
	pr["base"].(map[string]any)["ref"] = "master"
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *appFixture) deliver(t *testing.T, event string, body []byte) (int, string) {
	t.Helper()
	resp, err := f.gh.Deliver(f.url, event, fmt.Sprintf("delivery-%d", f.serial.Add(1)), body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *appFixture) sha(t *testing.T, ref string) string {
	return strings.TrimSpace(testenv.Git(t, f.repo.Dir, "rev-parse", ref))
}

// waitChecks waits until the head has the named check runs, all completed.
func (f *appFixture) waitChecks(t *testing.T, head string, names ...string) map[string]fakegithub.CheckRun {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := map[string]fakegithub.CheckRun{}
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.HeadSHA == head {
				got[c.Name] = c
			}
		}
		done := len(got) == len(names)
		for _, n := range names {
			if c, ok := got[n]; !ok || c.Status != "completed" {
				done = false
			}
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("check runs on %s not completed: %+v", head, got)
		}
		time.Sleep(50 * time.Millisecond) // the fake GitHub has no notification to wait on
	}
}

func annotated(c fakegithub.CheckRun) []string {
	var out []string
	for _, a := range c.Annotations {
		out = append(out, fmt.Sprintf("%v:%v", a["path"], a["start_line"]))
	}
	return out
}

// PR opened → `basinix / eval` and `basinix / build (x86_64-linux)` with the
// exact verdicts, annotations where the packages are defined, log links and
// the rebuild button.
func TestServePullRequestOpened(t *testing.T) {
	f := newApp(t)
	head := f.sha(t, f.repo.Head)
	if code, body := f.deliver(t, "pull_request", f.prEvent(t, "opened", head)); code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", code, body)
	}
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")

	ev := runs["basinix / eval"]
	if ev.Conclusion != "failure" || !strings.Contains(ev.Summary, "evalbreaks") {
		t.Errorf("eval check run: %s %q\n%s", ev.Conclusion, ev.Title, ev.Summary)
	}
	if got := strings.Join(annotated(ev), " "); got != "pkgs/by-name/evalbreaks/default.nix:6 pkgs/by-name/usesalias/default.nix:6" {
		t.Errorf("eval annotations: %s", got)
	}
	b := runs["basinix / build (x86_64-linux)"]
	if b.Conclusion != "failure" || !strings.HasPrefix(b.Title, "2 newly-failing, 1 still-failing, 2 newly-succeeding, 1 new-succeeding") {
		t.Errorf("build check run: %s %q", b.Conclusion, b.Title)
	}
	for _, want := range []string{"- `depfails`: dependency-failed, dependency `willfail-2.0` failed", "willfail: test suite failed", "[log](https://basinix.example/log/"} {
		if !strings.Contains(b.Summary, want) {
			t.Errorf("build summary lacks %q:\n%s", want, b.Summary)
		}
	}
	if got := strings.Join(annotated(b), " "); got != "pkgs/by-name/depfails/default.nix:4 pkgs/by-name/willfail/default.nix:4" {
		t.Errorf("build annotations: %s", got)
	}
	if len(b.Actions) != 1 || b.Actions[0]["identifier"] != "rebuild-failed" {
		t.Errorf("actions: %v", b.Actions)
	}
}

// Bad signatures, malformed payloads and repeated deliveries queue nothing.
func TestServeRefusesBadDeliveries(t *testing.T) {
	f := newApp(t)
	body := f.prEvent(t, "opened", f.sha(t, f.repo.Head))
	post := func(secret, delivery string, body []byte) int {
		resp, err := fakegithub.Deliver(f.url, secret, "pull_request", delivery, body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("wrong secret", "d1", body); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", code)
	}
	if code := post("", "d2", body); code != http.StatusUnauthorized {
		t.Errorf("no signature: %d, want 401", code)
	}
	if code := post(f.gh.WebhookSecret, "d3", []byte(`{"action": "opened", `)); code != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d, want 400", code)
	}
	if code := post(f.gh.WebhookSecret, "d4", []byte(`{"action": "opened", "pull_request": 7}`)); code != http.StatusBadRequest {
		t.Errorf("wrong shape: %d, want 400", code)
	}
	revs, err := f.srv.rv.store.Revisions(context.Background(), 10)
	if err != nil || len(revs) != 0 {
		t.Fatalf("refused deliveries queued %d revisions (%v)", len(revs), err)
	}
	for i := 0; i < 2; i++ {
		if code := post(f.gh.WebhookSecret, "same", body); code != http.StatusOK {
			t.Errorf("delivery %d: %d", i, code)
		}
	}
	f.waitChecks(t, f.sha(t, f.repo.Head), "basinix / eval", "basinix / build (x86_64-linux)")
	revs, _ = f.srv.rv.store.Revisions(context.Background(), 10)
	if len(revs) != 1 {
		t.Errorf("the same delivery twice made %d revisions", len(revs))
	}
	if n := f.gh.Requests()["checks/create"]; n != 2 {
		t.Errorf("%d check runs created, want 2", n)
	}
}
