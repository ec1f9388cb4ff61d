package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basinix/basinix/app/commands"
	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
	"github.com/basinix/basinix/store"
)

// app is a running `basinix serve` against a fake GitHub, installed on
// octo/pkgs, whose clone URL is a sample repository.
type appFixture struct {
	gh     *fakegithub.Server
	srv    *Server
	url    string // the webhook URL
	web    string // the server's root URL
	repo   *sampleset.Repo
	stop   func()
	cfg    Config
	serial atomic.Int64
}

const installationID = 77

func newApp(t testing.TB) *appFixture {
	t.Helper()
	return newAppWith(t, sampleset.Options{Bulk: 20, BuildLog: filepath.Join(t.TempDir(), "builds")})
}

func newAppWith(t testing.TB, opt sampleset.Options) *appFixture {
	t.Helper()
	return newAppConfig(t, opt, nil)
}

// newAppConfig is newAppWith with the configuration changed by tweak.
func newAppConfig(t testing.TB, opt sampleset.Options, tweak func(*Config)) *appFixture {
	t.Helper()
	testenv.RequireNix(t)
	return newAppRepo(t, testenv.Sample(t, opt), tweak)
}

// newAppRepo is newAppConfig on a repository of the test's own.
func newAppRepo(t testing.TB, repo *sampleset.Repo, tweak func(*Config)) *appFixture {
	t.Helper()
	gh := fakegithub.New(t)
	gh.AddInstallation(installationID, "octo", "octo/pkgs")
	// Public, as nixpkgs is: anyone reads its pages (tests of private
	// repositories say so).
	gh.SetPublic("octo/pkgs")
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Eval.Workers = testenv.EnvInt("BASINIX_TEST_WORKERS", 2)
	cfg.GitHub.V3APIURL = gh.URL
	cfg.GitHub.App.IntegrationID = gh.AppID
	cfg.GitHub.App.PrivateKey = gh.PrivateKeyPEM
	cfg.GitHub.App.WebhookSecret = gh.WebhookSecret
	cfg.GitHub.WebURL = gh.URL // the OAuth pages
	cfg.GitHub.OAuth.ClientID, cfg.GitHub.OAuth.ClientSecret = gh.ClientID, gh.ClientSecret
	cfg.Server.PublicURL = "https://basinix.example"
	if tweak != nil {
		tweak(&cfg)
	}
	if err := cfg.LoadSecrets(func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	f := &appFixture{gh: gh, repo: repo}
	f.start(t, cfg)
	t.Cleanup(func() {
		f.stop()
		if v := gh.Violations(); len(v) > 0 {
			t.Errorf("requests GitHub would refuse:\n%s", strings.Join(v, "\n"))
		}
	})
	return f
}

// start runs a server on cfg; stop ends it (the data directory stays).
func (f *appFixture) start(t testing.TB, cfg Config) {
	t.Helper()
	// The real HTTP server, with its timeouts and connection cap.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.PublicURL == "" { // the test's own address: the browser's
		cfg.Server.PublicURL = "http://" + l.Addr().String()
	}
	srv, err := NewServer(context.Background(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- srv.RunWorkers(ctx) }()
	go func() { done <- srv.Serve(ctx, l) }()
	root := "http://" + l.Addr().String()
	f.srv, f.url, f.web, f.cfg = srv, root+"/api/github/hook", root, cfg
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			<-done
			srv.Close()
		})
	}
}

// prEvent is the real pull_request payload rewritten to point at the
// fixture: PR 1 of octo/pkgs, head at commit head, onto master.
func (f *appFixture) prEvent(t testing.TB, action, head string) []byte {
	t.Helper()
	return fakegithub.PullRequestEvent(t, action, fakegithub.PR{Installation: installationID, Repo: "octo/pkgs",
		CloneURL: "file://" + f.repo.Dir, Number: 1, Head: head, Base: "master"})
}

func (f *appFixture) deliver(t *testing.T, event string, body []byte) (int, string) {
	t.Helper()
	resp, err := f.gh.Deliver(f.url, event, fmt.Sprintf("delivery-%d", f.serial.Add(1)), body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	f.settle(t)
	return resp.StatusCode, string(b)
}

// settle waits until the server has carried out the comment commands and
// installations the webhooks recorded (the webhook only records them).
func (f *appFixture) settle(t *testing.T) {
	t.Helper()
	var n int
	testenv.Eventually(t, time.Minute, func() bool {
		var err error
		n, err = f.srv.Reviewer().Store().UnfinishedJobs(context.Background(), commands.KindCommand, jobInstallation)
		return err == nil && n == 0
	}, func() string { return fmt.Sprintf("%d commands and installations not carried out", n) })
}

func (f *appFixture) sha(t testing.TB, ref string) string {
	return strings.TrimSpace(testenv.Git(t, f.repo.Dir, "rev-parse", ref))
}

// waitChecks waits until the head has the named check runs, all completed.
func (f *appFixture) waitChecks(t *testing.T, head string, names ...string) map[string]fakegithub.CheckRun {
	t.Helper()
	var got map[string]fakegithub.CheckRun
	testenv.Eventually(t, 3*time.Minute, func() bool {
		got = map[string]fakegithub.CheckRun{}
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
		return done
	}, func() string { return fmt.Sprintf("check runs on %s not completed: %+v", head, got) })
	return got
}

// waitReviewed waits for the check runs, then for head's revision to be
// done (waitDone).
func (f *appFixture) waitReviewed(t *testing.T, head string, names ...string) map[string]fakegithub.CheckRun {
	t.Helper()
	got := f.waitChecks(t, head, names...)
	f.waitDone(t, head)
	return got
}

// waitDone waits for head's latest revision to be done: the pipeline marks
// it done after its last check run completes and its labels and review
// requests are sent, and the web pages show that state.
func (f *appFixture) waitDone(t *testing.T, head string) {
	t.Helper()
	var state string
	testenv.Eventually(t, time.Minute, func() bool {
		revs, err := f.srv.Reviewer().Store().Revisions(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.HeadSHA == head {
				state = r.State
				return state == store.Done
			}
		}
		return false
	}, func() string { return fmt.Sprintf("the revision of %s is %q, not done", head, state) })
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
	f.gh.SetLabels("octo/pkgs", 1, "10.rebuild-linux: 1-10", "6.topic: python")
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
	if got := strings.Join(f.gh.Labels("octo/pkgs", 1), ", "); got != "6.topic: python, 10.rebuild-linux: 11-100, 8.has: clean-up, 8.has: package (new)" {
		t.Errorf("labels: %s (want the stale rebuild label replaced, the others kept, the PR's new and removed packages told)", got)
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
	revs, err := f.srv.Reviewer().Store().Revisions(context.Background(), 10)
	if err != nil || len(revs) != 0 {
		t.Fatalf("refused deliveries queued %d revisions (%v)", len(revs), err)
	}
	for i := 0; i < 2; i++ {
		if code := post(f.gh.WebhookSecret, "same", body); code != http.StatusOK {
			t.Errorf("delivery %d: %d", i, code)
		}
	}
	f.waitChecks(t, f.sha(t, f.repo.Head), "basinix / eval", "basinix / build (x86_64-linux)")
	revs, _ = f.srv.Reviewer().Store().Revisions(context.Background(), 10)
	if len(revs) != 1 {
		t.Errorf("the same delivery twice made %d revisions", len(revs))
	}
	if n := f.gh.Requests()["checks/create"]; n != 2 {
		t.Errorf("%d check runs created, want 2", n)
	}
}

// waitCheck waits until cond holds for the named check run on head.
func (f *appFixture) waitCheck(t *testing.T, head, name string, cond func(fakegithub.CheckRun) bool) fakegithub.CheckRun {
	t.Helper()
	var found fakegithub.CheckRun
	testenv.Eventually(t, time.Minute, func() bool {
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.HeadSHA == head && c.Name == name && cond(c) {
				found = c
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("check run %q on %s: condition not met: %+v", name, head, f.gh.CheckRuns("octo/pkgs"))
	})
	return found
}

// A story: the PR is opened with a package whose build takes a minute; a
// new push supersedes the first revision, whose check runs end cancelled
// at once; closing the PR withdraws the second, whose slow build stops.
func TestServeSupersedeAndClose(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 5, BuildLog: filepath.Join(t.TempDir(), "builds"), PRExtra: map[string]string{
		"slowpkg": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"slowpkg\";\n  version = \"1.0\";\n  script = \"/bin/sleep 60\";\n}\n",
	}})
	start := time.Now()
	first, second := f.sha(t, f.repo.Pushes[0]), f.sha(t, f.repo.Head)
	build := "basinix / build (x86_64-linux)"
	inProgress := func(c fakegithub.CheckRun) bool { return c.Status == "in_progress" }
	cancelled := func(c fakegithub.CheckRun) bool { return c.Conclusion == "cancelled" }

	// "PR opened": the slow build starts.
	f.deliver(t, "pull_request", f.prEvent(t, "opened", first))
	f.waitCheck(t, first, build, inProgress)
	// "push 2": the first revision is superseded.
	f.deliver(t, "pull_request", f.prEvent(t, "synchronize", second))
	c := f.waitCheck(t, first, build, cancelled)
	if !strings.Contains(c.Title, "superseded") {
		t.Errorf("first revision's build check run: %q, want it to say superseded", c.Title)
	}
	f.waitCheck(t, second, build, inProgress)
	// "PR closed": the second revision is withdrawn.
	f.deliver(t, "pull_request", f.prEvent(t, "closed", second))
	c = f.waitCheck(t, second, build, cancelled)
	if !strings.Contains(c.Title, "cancelled") {
		t.Errorf("second revision's build check run: %q, want it to say cancelled", c.Title)
	}
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("the story took %s: the slow build was waited for", took)
	}
	revs, err := f.srv.Reviewer().Store().Revisions(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range revs {
		states = append(states, r.State)
	}
	if strings.Join(states, " ") != "cancelled superseded" {
		t.Errorf("revision states (newest first): %v", states)
	}
}

// GitHub answering 502 and then a secondary rate limit for a while: the
// check runs still arrive, complete.
func TestServeGitHubTrouble(t *testing.T) {
	f := newApp(t)
	f.gh.Fail(3, http.StatusBadGateway, "")
	f.gh.Fail(2, http.StatusForbidden, "1")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	if runs["basinix / build (x86_64-linux)"].Conclusion != "failure" {
		t.Errorf("build check run: %+v", runs["basinix / build (x86_64-linux)"])
	}
	if n := len(f.gh.CheckRuns("octo/pkgs")); n != 2 {
		t.Errorf("%d check runs, want 2", n)
	}
}

// The server stops in the middle of a build and starts again on the same
// data directory: the revision is resumed and its check runs completed,
// none created twice.
func TestServeResumesAfterRestart(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 5, BuildLog: filepath.Join(t.TempDir(), "builds"), PRExtra: map[string]string{
		"slowpkg": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"slowpkg\";\n  version = \"1.0\";\n  script = \"/bin/sleep 3\";\n}\n",
	}})
	head := f.sha(t, f.repo.Head)
	build := "basinix / build (x86_64-linux)"
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitCheck(t, head, build, func(c fakegithub.CheckRun) bool { return c.Status == "in_progress" })
	f.stop() // in the middle of slowpkg's build
	f.start(t, f.cfg)
	runs := f.waitChecks(t, head, "basinix / eval", build)
	if runs[build].Conclusion != "failure" {
		t.Errorf("build check run after the restart: %s %q", runs[build].Conclusion, runs[build].Title)
	}
	if n := len(f.gh.CheckRuns("octo/pkgs")); n != 2 {
		t.Errorf("%d check runs after a restart, want 2", n)
	}
}

// Webhooks missed while basinix was down are not lost: at start it lists
// the open PRs and reviews the heads it does not know.
func TestServeReconcilesMissedPullRequests(t *testing.T) {
	f := newApp(t)
	f.stop()
	head := f.sha(t, f.repo.Head)
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir})
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 2, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir, Draft: true})
	f.start(t, f.cfg)
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	if runs["basinix / build (x86_64-linux)"].Conclusion != "failure" {
		t.Errorf("build check run: %+v", runs["basinix / build (x86_64-linux)"])
	}
	revs, _ := f.srv.Reviewer().Store().Revisions(context.Background(), 10)
	if len(revs) != 1 || revs[0].PR != 1 {
		t.Errorf("revisions: %+v, want PR 1 only (PR 2 is a draft)", revs)
	}
}

// event loads a real payload and rewrites what points at a repository and
// an installation to the fixture's.
func (f *appFixture) event(t *testing.T, name string, edit func(p map[string]any)) []byte {
	t.Helper()
	return fakegithub.Event(t, name, f.ghRepo(), edit)
}

// Re-running a check from GitHub reviews the head again, with new check runs.
func TestServeRerun(t *testing.T) {
	f := newApp(t)
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	code, body := f.deliver(t, "check_run", f.event(t, "check_run.rerequested.7", func(p map[string]any) {
		p["check_run"].(map[string]any)["head_sha"] = head
	}))
	if code != http.StatusOK {
		t.Fatalf("check_run rerequested: %d %s", code, body)
	}
	f.waitCompleted(t, 4)
}

// A push to the default branch evaluates the new tip; a new installation
// gets its open PRs reviewed.
func TestServePushAndInstallation(t *testing.T) {
	f := newApp(t)
	tip := f.sha(t, "master")
	f.push(t, tip)
	m, err := f.srv.Reviewer().Workspace().Mirror("file://" + f.repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func() bool {
		ev, err := f.srv.Reviewer().Cached(context.Background(), m.URL, tip, "x86_64-linux")
		if err != nil {
			t.Fatal(err)
		}
		return ev != nil
	}, func() string { return "the pushed tip was not evaluated" })

	head := f.sha(t, f.repo.Head)
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 3, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir})
	if code, body := f.deliver(t, "installation", f.event(t, "installation.created.1", func(map[string]any) {})); code != http.StatusOK {
		t.Fatalf("installation: %d %s", code, body)
	}
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
}

func (f *appFixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(f.web + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The web page: recent revisions, the PR's verdicts with log links, logs
// (and nothing outside them), health and metrics.
func TestServeWebPages(t *testing.T) {
	f := newApp(t)
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")

	if code, body := f.get(t, "/"); code != http.StatusOK || !strings.Contains(body, `<a href="/pr/octo/pkgs/1">octo/pkgs #1</a>`) || !strings.Contains(body, `title="done"`) {
		t.Errorf("index: %d\n%s", code, body)
	}
	code, body := f.get(t, "/pr/octo/pkgs/1")
	if code != http.StatusOK || !strings.Contains(body, `<span class="st st-failure" title="newly-failing">✘ newly-failing</span>`) {
		t.Fatalf("pr page: %d\n%s", code, body)
	}
	if strings.Index(body, "<code>willfail</code>") > strings.Index(body, "<code>hello</code>") {
		t.Error("pr page: newly failing attributes do not come first")
	}
	// libmid is rebuilt and built on both sides: what that did to its output.
	if !regexp.MustCompile(`<a href="/attr/octo/pkgs/master/libmid\?system=x86_64-linux"><code>libmid</code></a>(.|\n)*?<summary>outputs: NAR [^<]+, closure [^<]+, files \+0 −0 ~1</summary>`).MatchString(body) {
		t.Errorf("pr page shows no output diff of libmid:\n%s", body)
	}
	m := regexp.MustCompile(`href="/log/([^"]+willfail-2\.0\.log[^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("pr page has no log link for willfail:\n%s", body)
	}
	if code, log := f.get(t, "/log/"+m[1]); code != http.StatusOK || !strings.Contains(log, "willfail: test suite failed") {
		t.Errorf("log: %d %q", code, log)
	}
	for _, bad := range []string{"/log/..%2f..%2fbasinix.db", "/log/%2e%2e", "/log/passwd", "/pr/octo/pkgs/999", "/pr/octo/pkgs/x"} {
		if code, _ := f.get(t, bad); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", bad, code)
		}
	}
	if code, body := f.get(t, "/healthz"); code != http.StatusOK || !strings.HasPrefix(body, "ok\ngithub: reachable") {
		t.Errorf("healthz: %d %q", code, body)
	}
	_, metrics := f.get(t, "/metrics")
	for _, want := range []string{`basinix_webhooks_total{event="pull_request",outcome="accepted"} 1`, "basinix_revisions_queued 0", "basinix_builds_running 0", "basinix_review_build_seconds_count 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// https clone URLs on GitHub are fetched with the installation's token.
func TestGitAuthUsesInstallationToken(t *testing.T) {
	f := newAppConfig(t, sampleset.Options{Bulk: 1}, func(c *Config) { c.GitHub.WebURL = "https://github.example/" })
	auth := f.srv.Reviewer().Workspace().Auth
	cfg, err := auth(context.Background(), "https://github.example/octo/pkgs.git")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg) != 1 || !strings.HasPrefix(cfg[0], "http.extraHeader=Authorization: Basic ") {
		t.Fatalf("git config %q", cfg)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(cfg[0], "http.extraHeader=Authorization: Basic "))
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(string(raw), "x-access-token:")
	if id, valid := f.gh.TokenInstallation(tok); !ok || !valid || id != installationID {
		t.Errorf("token %q: installation %d, valid %v", tok, id, valid)
	}
	for _, other := range []string{"file:///srv/pkgs", "https://elsewhere.example/octo/pkgs.git", "http://github.example/octo/pkgs.git"} {
		if cfg, err := auth(context.Background(), other); err != nil || cfg != nil {
			t.Errorf("%s: %q %v, want nothing", other, cfg, err)
		}
	}
}

// GitHub down when the results are ready: they are kept and sent when it is
// back (here at the next start), each check run's final output once.
func TestServeResultsNeverLost(t *testing.T) {
	f := newApp(t)
	f.stop()
	f.cfg.Server.GitHubRetryFor = time.Second
	f.start(t, f.cfg)
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	build := "basinix / build (x86_64-linux)"
	f.waitCheck(t, head, build, func(c fakegithub.CheckRun) bool { return true })
	f.gh.Fail(1_000_000, http.StatusBadGateway, "")
	testenv.Eventually(t, time.Minute, func() bool {
		revs, _ := f.srv.Reviewer().Store().RevisionsIn(context.Background(), "publishing")
		return len(revs) == 1
	}, func() string { return "the revision never waited to be published" })
	f.stop()
	f.gh.ClearFaults()
	f.start(t, f.cfg)
	runs := f.waitChecks(t, head, "basinix / eval", build)
	if runs[build].Conclusion != "failure" || len(runs[build].Annotations) != 2 || len(runs["basinix / eval"].Annotations) != 2 {
		t.Errorf("after GitHub came back: build %s with %d annotations, eval with %d", runs[build].Conclusion, len(runs[build].Annotations), len(runs["basinix / eval"].Annotations))
	}
}

// A running build's log is followed on /log/DRV until the build ends.
func TestServeFollowsRunningBuild(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 5, BuildLog: filepath.Join(t.TempDir(), "builds"), PRExtra: map[string]string{
		"slowpkg": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"slowpkg\";\n  version = \"1.0\";\n  script = \"echo slow build starts; /bin/sleep 8; echo slow build ends\";\n}\n",
	}})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	// slowpkg's derivation: the one the pool is building with that name.
	var drv string
	testenv.Eventually(t, time.Minute, func() bool {
		for _, d := range f.building(t) {
			if strings.HasSuffix(d, "-slowpkg-1.0.drv") {
				drv = filepath.Base(d)
			}
		}
		return drv != ""
	}, func() string { return "slowpkg's build never started" })
	// While it builds, the build check run and the PR page say so and
	// link its live log (once a progress update is due: every 5 s).
	link := "/log/" + drv
	testenv.Eventually(t, time.Minute, func() bool {
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.Name == "basinix / build (x86_64-linux)" && c.Status != "completed" && strings.Contains(c.Summary, "Building now:") &&
				strings.Contains(c.Summary, "- `slowpkg-1.0` ([live log](https://basinix.example"+link+"))") && !strings.Contains(c.Summary, "| 0 | 0 | 0 |") {
				return true
			}
		}
		return false
	}, func() string {
		var out []string
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			out = append(out, c.Name+" "+c.Status+" updates "+fmt.Sprint(c.Updates)+":\n"+c.Summary)
		}
		return "the build check run never showed slowpkg building, with its live log:\n" + strings.Join(out, "\n---\n")
	})
	if _, page := f.get(t, "/pr/octo/pkgs/1"); !strings.Contains(page, `<a href="`+link+`">live log</a>`) {
		t.Errorf("the PR page does not link slowpkg's live log:\n%s", page)
	}
	code, body := f.get(t, link) // returns when the build ends
	if code != http.StatusOK || !strings.Contains(body, "slow build starts") || !strings.Contains(body, "slow build ends") ||
		!strings.Contains(body, "the build ended; its kept log is at /log/") {
		t.Errorf("followed log: %d %q", code, body)
	}
}

// building returns the derivations whose output the pool holds live.
func (f *appFixture) building(t *testing.T) []string {
	out, err := filepath.Glob("/nix/store/*-slowpkg-1.0.drv")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, d := range out {
		if _, _, running := f.srv.Reviewer().Pool().Live(d, 0); running {
			live = append(live, d)
		}
	}
	return live
}

// comment is GitHub's real issue_comment payload rewritten to be a new
// comment by user on PR 1.
func (f *appFixture) comment(t *testing.T, id int64, user, userType, body string) []byte {
	t.Helper()
	return fakegithub.CommentEvent(t, f.ghRepo(), 1, id, user, userType, body)
}

// ghRepo is the fixture's repository as payloads name it.
func (f *appFixture) ghRepo() fakegithub.Repo {
	return fakegithub.Repo{Installation: installationID, FullName: "octo/pkgs", CloneURL: "file://" + f.repo.Dir}
}

// A story of comment commands: a reader is refused, nonsense and shell
// text get the help text and run nothing, a bot is ignored, and a
// maintainer's rebuild builds exactly the failed derivations again.
func TestServeCommands(t *testing.T) {
	buildLog := filepath.Join(t.TempDir(), "builds")
	f := newAppWith(t, sampleset.Options{Bulk: 5, BuildLog: buildLog})
	f.gh.SetPermission("maint", "maintain")
	head := f.sha(t, f.repo.Head)
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir,
		Files: []string{"pkgs/by-name/libmid/default.nix", "pkgs/by-name/newpkg/default.nix"}})
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	builds := func() []string {
		b, _ := os.ReadFile(buildLog)
		return strings.Fields(string(b))
	}
	before := len(builds())

	// "a reader asks for a rebuild": refused, with 👀.
	f.deliver(t, "issue_comment", f.comment(t, 101, "reader", "User", "@basinix rebuild"))
	// "nonsense and shell text": the help text, nothing run.
	f.deliver(t, "issue_comment", f.comment(t, 102, "maint", "User", "@basinix deploy\n@basinix build hello; rm -rf /\n@basinix build $(touch /tmp/basinix-x)"))
	// "the same delivery twice": handled once.
	again := f.comment(t, 105, "reader", "User", "@basinix eval")
	for range 2 {
		if _, err := f.gh.Deliver(f.url, "issue_comment", "same-comment", again); err != nil {
			t.Fatal(err)
		}
	}
	f.settle(t)
	if got := f.gh.Reactions(105); len(got) != 1 {
		t.Errorf("a comment delivered twice got reactions %v", got)
	}
	// "a bot": ignored.
	f.deliver(t, "issue_comment", f.comment(t, 103, "renovate[bot]", "Bot", "@basinix rebuild"))
	comments := f.gh.Comments("octo/pkgs", 1)
	if len(comments) != 3 || !strings.Contains(comments[0], "@reader: only users with write, maintain, admin permission") ||
		!strings.Contains(comments[1], "`deploy` is not a command") || !strings.Contains(comments[1], "`hello;` is not an attribute path") ||
		!strings.Contains(comments[1], "`@basinix rebuild`") {
		t.Errorf("replies:\n%s", strings.Join(comments, "\n---\n"))
	}
	for id, want := range map[int64]int{101: 1, 102: 1, 103: 0} {
		if got := f.gh.Reactions(id); len(got) != want || want == 1 && got[0] != "eyes" {
			t.Errorf("comment %d reactions %v", id, got)
		}
	}
	if _, err := os.Stat("/tmp/basinix-x"); err == nil {
		t.Error("a command ran shell text")
	}
	if n := len(f.gh.CheckRuns("octo/pkgs")); n != 2 || len(builds()) != before {
		t.Fatalf("refused commands changed something: %d check runs, %d builds", n, len(builds())-before)
	}

	// "a maintainer asks for a rebuild": new check runs, the failures built again.
	f.deliver(t, "issue_comment", f.comment(t, 104, "maint", "User", "LGTM, but let's see\n@basinix rebuild"))
	f.waitCompleted(t, 4)
	// The check runs complete before the labels are synced and the
	// revision is done: the page views below must find GitHub idle.
	f.settle(t)
	f.waitDone(t, head)
	var rebuilt []string
	for _, out := range builds()[before:] {
		rebuilt = append(rebuilt, out[strings.Index(out, "-")+1:])
	}
	sort.Strings(rebuilt)
	if got := strings.Join(rebuilt, " "); got != "failing-2.0 willfail-2.0 withtests-test-fails-1.1" {
		t.Errorf("rebuilt: %s", got)
	}

	// "the PR page": its changed files and the commands' history, from the
	// store: anonymous views spend none of the installation's quota.
	calls := func() int {
		n := 0
		for _, c := range f.gh.Requests() {
			n += c
		}
		return n
	}
	before = calls()
	var page string
	for range 5 {
		_, page = f.get(t, "/pr/octo/pkgs/1")
	}
	if n := calls() - before; n != 0 {
		t.Errorf("5 views of the PR page made %d GitHub API calls", n)
	}
	for _, want := range []string{`<code>pkgs/by-name/newpkg/default.nix</code></a></td><td>modified</td><td>1</td><td>1</td>`,
		`<div class="diff" id="diff-pkgs/by-name/newpkg/default.nix"><h4>pkgs/by-name/newpkg/default.nix</h4>`,
		"<td>@reader</td><td>comment</td><td><code>rebuild</code></td><td>refused: read permission</td>", "<td>@maint</td><td>comment</td><td><code>rebuild</code></td><td>done</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("PR page lacks %s", want)
		}
	}
}

// The check run's "Rebuild failed" button builds the failures again, with
// new check runs.
func TestServeRebuildButton(t *testing.T) {
	buildLog := filepath.Join(t.TempDir(), "builds")
	f := newAppWith(t, sampleset.Options{Bulk: 5, BuildLog: buildLog})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	b, _ := os.ReadFile(buildLog)
	before := len(strings.Fields(string(b)))
	code, body := f.deliver(t, "check_run", f.event(t, "check_run.requested_action.6", func(p map[string]any) {
		p["check_run"].(map[string]any)["head_sha"] = head
		p["requested_action"] = map[string]any{"identifier": "rebuild-failed"}
	}))
	if code != http.StatusOK {
		t.Fatalf("requested_action: %d %s", code, body)
	}
	f.waitCompleted(t, 4)
	b, _ = os.ReadFile(buildLog)
	if n := len(strings.Fields(string(b))) - before; n != 3 {
		t.Errorf("%d builds after the button, want the 3 failed ones", n)
	}
}

// visible is a comment's body as GitHub shows it: without HTML comments
// (basinix's markers).
func visible(body string) string {
	return strings.TrimSpace(regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAllString(body, ""))
}

// waitCompleted waits until octo/pkgs has n completed check runs.
func (f *appFixture) waitCompleted(t *testing.T, n int) {
	t.Helper()
	var done int
	testenv.Eventually(t, time.Minute, func() bool {
		done = 0
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.Status == "completed" {
				done++
			}
		}
		return done == n
	}, func() string {
		return fmt.Sprintf("%d check runs completed, want %d: %+v", done, n, f.gh.CheckRuns("octo/pkgs"))
	})
}

// A story of merging: refused while a package newly fails, allowed after
// `rebuild` (the package is flaky) fixes it; `review` posts the report.
func TestServeMergeAndReview(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "flaky-tried")
	pkg := func(version, script string) string {
		return fmt.Sprintf("{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"flaky\";\n  version = %q;\n  script = ''%s'';\n}\n", version, script)
	}
	f := newAppWith(t, sampleset.Options{NoPR: true, BuildLog: filepath.Join(t.TempDir(), "builds"),
		Extra: map[string]string{"flaky": pkg("1.0", "")}})
	testenv.Git(t, f.repo.Dir, "checkout", "--quiet", "-b", "pr")
	os.WriteFile(filepath.Join(f.repo.Dir, "pkgs/by-name/flaky/default.nix"),
		[]byte(pkg("2.0", fmt.Sprintf("if [ -e %s ]; then echo second try; else : > %s; echo first try fails >&2; exit 1; fi", flag, flag))), 0o644)
	testenv.Git(t, f.repo.Dir, "commit", "--quiet", "-am", "flaky: 1.0 -> 2.0")
	testenv.Git(t, f.repo.Dir, "checkout", "--quiet", "master")
	head := f.sha(t, "pr")
	mergeable := true
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir, Mergeable: &mergeable})
	f.gh.SetPermission("maint", "maintain")
	build := "basinix / build (x86_64-linux)"

	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	if c := f.waitChecks(t, head, "basinix / eval", build)[build]; c.Conclusion != "failure" {
		t.Fatalf("first build: %s %q", c.Conclusion, c.Title)
	}
	// "merge while flaky newly fails": refused, the message not posted.
	f.deliver(t, "issue_comment", f.comment(t, 201, "maint", "User", "@basinix merge Thanks!"))
	comments := f.gh.Comments("octo/pkgs", 1)
	if len(comments) != 1 || !strings.Contains(comments[0], "Not merged: `basinix / build (x86_64-linux)` is failure") || f.gh.Merged("octo/pkgs", 1) != "" {
		t.Fatalf("merge while failing: merged %q, comments %q", f.gh.Merged("octo/pkgs", 1), comments)
	}
	// "rebuild": flaky succeeds the second time.
	f.deliver(t, "issue_comment", f.comment(t, 202, "maint", "User", "@basinix rebuild"))
	f.waitCompleted(t, 4)
	// "review": the report as a PR review.
	f.deliver(t, "issue_comment", f.comment(t, 203, "maint", "User", "@basinix review"))
	reviews := f.gh.Reviews("octo/pkgs", 1)
	if len(reviews) != 1 || reviews[0]["event"] != "COMMENT" || !strings.Contains(fmt.Sprint(reviews[0]["body"]), "still succeeding (1)") {
		t.Errorf("reviews: %v", reviews)
	}
	// "merge": the message first, then the merge.
	f.deliver(t, "issue_comment", f.comment(t, 204, "maint", "User", "@basinix merge Thanks!"))
	comments = f.gh.Comments("octo/pkgs", 1)
	if f.gh.Merged("octo/pkgs", 1) != "merge" || visible(comments[len(comments)-1]) != "Thanks!" {
		t.Errorf("after the rebuild: merged %q, comments %q", f.gh.Merged("octo/pkgs", 1), comments)
	}
}

// `@basinix eval` evaluates the head again instead of taking it from the
// cache; the base stays cached.
func TestServeEvalCommand(t *testing.T) {
	f := newApp(t)
	f.gh.SetPermission("maint", "write")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	f.deliver(t, "issue_comment", f.comment(t, 301, "maint", "User", "@basinix eval"))
	f.waitCompleted(t, 4)
	revs, err := f.srv.Reviewer().Store().PRRevisions(context.Background(), "octo/pkgs", 1)
	if err != nil || len(revs) != 1 || revs[0].Attempt != 1 {
		t.Fatalf("revisions %+v, %v", revs, err)
	}
	var rep report.Report
	if err := json.Unmarshal(revs[0].Report, &rep); err != nil {
		t.Fatal(err)
	}
	var cached []bool
	for _, e := range rep.Evaluations {
		cached = append(cached, e.Cached)
	}
	if fmt.Sprint(cached) != "[true false]" {
		t.Errorf("evaluations cached (base, head): %v, want the head evaluated again", cached)
	}
}

// `@basinix build` and `@basinix test` build named attributes at the merged
// head, changed or not, in check runs of their own.
func TestServeBuildAndTestCommands(t *testing.T) {
	f := newApp(t)
	f.gh.SetPermission("maint", "admin")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	f.deliver(t, "issue_comment", f.comment(t, 401, "maint", "User", "@basinix build libbase failing nosuchpkg\n@basinix test withtests"))
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)", "basinix / build-requested (x86_64-linux)", "basinix / tests (x86_64-linux)")
	b := runs["basinix / build-requested (x86_64-linux)"]
	for _, want := range []string{"| `libbase` | success |", "| `failing` | failure |", "| `nosuchpkg` | not built | `no such attribute` |"} {
		if !strings.Contains(b.Summary, want) {
			t.Errorf("build-requested lacks %q:\n%s", want, b.Summary)
		}
	}
	if b.Conclusion != "failure" {
		t.Errorf("build-requested: %s", b.Conclusion)
	}
	tests := runs["basinix / tests (x86_64-linux)"]
	for _, want := range []string{"| `withtests.passthru.tests.basic` | success |", "| `withtests.passthru.tests.fails` | failure |"} {
		if !strings.Contains(tests.Summary, want) {
			t.Errorf("tests lack %q:\n%s", want, tests.Summary)
		}
	}
}

// Inside a PR, a failure names the push that introduced it.
func TestServeNamesThePushThatBrokeIt(t *testing.T) {
	f := newApp(t)
	first, last := f.sha(t, f.repo.Pushes[0]), f.sha(t, f.repo.Head)
	build := "basinix / build (x86_64-linux)"
	f.deliver(t, "pull_request", f.prEvent(t, "opened", first))
	f.waitChecks(t, first, "basinix / eval", build)
	f.deliver(t, "pull_request", f.prEvent(t, "synchronize", last))
	c := f.waitChecks(t, last, "basinix / eval", build)[build]
	want := fmt.Sprintf("- `willfail`: failure, failing since `push 1 (%s) of this PR`", first[:12])
	if !strings.Contains(c.Summary, want) {
		t.Errorf("build check run of push 2 lacks %q:\n%s", want, c.Summary)
	}
}

// Pushes to the default branch build what changed at a low priority and
// keep the branch's history, shown per attribute.
func TestServeBranchHistory(t *testing.T) {
	f := newApp(t)
	fork, base := f.sha(t, f.repo.ForkPoint), f.sha(t, f.repo.BaseCommit)
	f.push(t, fork) // the first tip: evaluated only
	f.waitTip(t, fork, "the first tip was not recorded")
	f.push(t, base) // libbase 1.0 -> 1.0.1: libbase and its dependents change
	var hist []store.HistoryEntry
	testenv.Eventually(t, time.Minute, func() bool {
		var err error
		if hist, err = f.srv.Reviewer().Store().AttrHistory(context.Background(), "octo/pkgs", "master", "x86_64-linux", "libmid", 10); err != nil {
			t.Fatal(err)
		}
		return len(hist) == 1 && hist[0].Result == "success"
	}, func() string { return fmt.Sprintf("libmid's history: %+v", hist) })
	if hist[0].Commit != base || hist[0].Title != "libbase: 1.0 -> 1.0.1" {
		t.Errorf("history: %+v", hist[0])
	}
	_, page := f.get(t, "/attr/octo/pkgs/master/libbase")
	for _, want := range []string{base[:12], "libbase: 1.0 -&gt; 1.0.1", "libbase-1.0.1", `<span class="st st-success" title="success">✔ success</span>`, "Last built on <code>" + base[:12]} {
		if !strings.Contains(page, want) {
			t.Errorf("attribute page lacks %q:\n%s", want, page)
		}
	}
}

// push delivers "master moved to commit".
func (f *appFixture) push(t *testing.T, commit string) {
	t.Helper()
	if code, body := f.deliver(t, "push", fakegithub.PushEvent(t, f.ghRepo(), "master", commit)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
}

// commit writes a package's file in the sample's checkout, commits it on
// the branch checked out and returns the commit.
func (f *appFixture) commit(t *testing.T, name, body, msg string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.repo.Dir, "pkgs/by-name", name, "default.nix"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, f.repo.Dir, "commit", "--quiet", "-am", msg)
	return f.sha(t, "HEAD")
}

// simplePkg is a package whose build runs script.
func simplePkg(name, version, script string) string {
	return fmt.Sprintf("{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = %q;\n  version = %q;\n  script = %q;\n}\n", name, version, script)
}

// Quick pushes are recorded in push order, and a tip is recorded while the
// previous tip's builds still run: its evaluation waits for no build.
func TestServeBranchTipsDoNotWaitForBuilds(t *testing.T) {
	f := newAppWith(t, sampleset.Options{NoPR: true, BuildLog: filepath.Join(t.TempDir(), "builds"), Extra: map[string]string{
		"slow": simplePkg("slow", "1", ""), "quick": simplePkg("quick", "1", ""),
	}})
	c1 := f.sha(t, "master")
	c2 := f.commit(t, "slow", simplePkg("slow", "2", "/bin/sleep 12"), "slow: 1 -> 2")
	c3 := f.commit(t, "quick", simplePkg("quick", "2", ""), "quick: 1 -> 2")
	for _, c := range []string{c1, c2, c3} {
		f.push(t, c)
	}
	history := func(attr string) []store.HistoryEntry {
		h, err := f.srv.Reviewer().Store().AttrHistory(context.Background(), "octo/pkgs", "master", "x86_64-linux", attr, 10)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	f.waitTip(t, c3, "the third push was not recorded last")
	if h := history("slow"); len(h) != 1 || h[0].Commit != c2 || h[0].Result != "" {
		t.Errorf("slow's history when the third push was recorded: %+v, want its build of the second push still running", h)
	}
	testenv.Eventually(t, time.Minute, func() bool {
		h := history("slow")
		return len(h) == 1 && h[0].Result == "success"
	}, func() string { return fmt.Sprintf("slow's history: %+v", history("slow")) })
	if h := history("quick"); len(h) != 1 || h[0].Commit != c3 {
		t.Errorf("quick's history: %+v", h)
	}
}

// A tracked branch that moved while basinix was down is caught up at start.
func TestServeCatchesUpBranches(t *testing.T) {
	f := newApp(t)
	f.stop()
	tip := f.sha(t, "master")
	f.gh.SetBranch("octo/pkgs", "file://"+f.repo.Dir, "master", tip)
	f.start(t, f.cfg)
	f.waitTip(t, tip, "the branch's tip was not caught up")
}

// waitTip waits until the store's last tip of master is commit.
func (f *appFixture) waitTip(t *testing.T, commit, failure string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() bool {
		last, _ := f.srv.Reviewer().Store().LastTip(context.Background(), "octo/pkgs", "master")
		return last != nil && last.Commit == commit
	}, func() string { return failure })
}

// A PR whose second push breaks a package names push 2.
func TestServeNamesPush2(t *testing.T) {
	ok := "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"%s\";\n  version = \"%s\";\n  script = \"%s\";\n}\n"
	f := newAppWith(t, sampleset.Options{NoPR: true, BuildLog: filepath.Join(t.TempDir(), "builds"), Extra: map[string]string{
		"alpha": fmt.Sprintf(ok, "alpha", "1", ""), "beta": fmt.Sprintf(ok, "beta", "1", ""),
	}})
	testenv.Git(t, f.repo.Dir, "checkout", "--quiet", "-b", "pr")
	push1 := f.commit(t, "alpha", fmt.Sprintf(ok, "alpha", "2", ""), "alpha: 1 -> 2")
	push2 := f.commit(t, "beta", fmt.Sprintf(ok, "beta", "2", "echo beta: broken >&2; exit 1"), "beta: 1 -> 2, broken")
	testenv.Git(t, f.repo.Dir, "checkout", "--quiet", "master")
	build := "basinix / build (x86_64-linux)"
	f.deliver(t, "pull_request", f.prEvent(t, "opened", push1))
	f.waitChecks(t, push1, "basinix / eval", build)
	f.deliver(t, "pull_request", f.prEvent(t, "synchronize", push2))
	c := f.waitChecks(t, push2, "basinix / eval", build)[build]
	if want := fmt.Sprintf("- `beta`: failure, failing since `push 2 (%s) of this PR`", push2[:12]); !strings.Contains(c.Summary, want) {
		t.Errorf("build check run lacks %q:\n%s", want, c.Summary)
	}
}

// `@basinix diff ATTR` answers with a link to diffoscope's report on the
// attribute's base and head outputs, served sandboxed; an attribute the
// PR does not touch gets the reason.
func TestServeDiffCommand(t *testing.T) {
	testenv.RequireDiffoscope(t)
	f := newApp(t)
	f.gh.SetPermission("maint", "write")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	f.deliver(t, "issue_comment", f.comment(t, 501, "maint", "User", "@basinix diff libmid libbase"))
	var reply string
	testenv.Eventually(t, time.Minute, func() bool {
		for _, c := range f.gh.Comments("octo/pkgs", 1) {
			if strings.Contains(c, "diffoscope, base → head") {
				reply = c
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("no reply: %q", f.gh.Comments("octo/pkgs", 1)) })
	if !strings.Contains(reply, "`libbase` (x86_64-linux): `the change does not touch this attribute`") {
		t.Errorf("libbase:\n%s", reply)
	}
	m := regexp.MustCompile("`libmid` \\(x86_64-linux, output out\\): \\[diffoscope report\\]\\([^)]*(/diffoscope/[0-9a-f]{32}\\.html)\\)").FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("libmid:\n%s", reply)
	}
	resp, err := http.Get(f.web + m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox;") || !strings.Contains(string(body), "<html") {
		t.Errorf("report: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	for _, bad := range []string{"/diffoscope/..%2fbasinix.db", "/diffoscope/" + strings.Repeat("0", 32) + ".html"} {
		if code, _ := f.get(t, bad); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", bad, code)
		}
	}
}
