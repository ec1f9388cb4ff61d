package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basinix/basinix/app"
	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
)

// lockedBuffer is a bytes.Buffer a command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// basinix setup --org: GitHub's App manifest flow against the fake GitHub.
// The page posts a manifest with exactly the permissions and events
// basinix needs to the organization's "new App" page; GitHub's redirect
// with a code is converted into the App's credentials, written with mode
// 0600 beside a configuration that a server then loads.
func TestSetup(t *testing.T) {
	gh := fakegithub.New(t)
	data := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("github:\n  web_url: https://github.example/\n  v3_api_url: %s\nserver:\n  public_url: https://basinix.example.org\n", gh.URL))
	var stdout, stderr lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(context.Background(), []string{"setup", "--org", "octo", "--config", cfg, "--data-dir", data}, &stdout, &stderr, os.LookupEnv)
	}()
	var page string
	testenv.Eventually(t, 30*time.Second, func() bool {
		m := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(stdout.String())
		if m != nil {
			page = m[1]
		}
		return m != nil
	}, func() string { return "no setup page announced: " + stdout.String() + stderr.String() })

	createApp(t, gh, page+"/", page+"/callback", "/organizations/octo/settings/apps/new", code, &stdout, &stderr)

	checkAppFiles(t, gh, data)

	// A second setup would lose the App's key: refused.
	if c, _, stderr := basinix(t, "setup", "--user", "--config", cfg, "--data-dir", data); c != 2 || !strings.Contains(stderr, "already holds an App's key") {
		t.Errorf("second setup: exit %d %s", c, stderr)
	}
	if c, _, stderr := basinix(t, "setup", "--data-dir", data); c != 2 || !strings.Contains(stderr, "--org ORG or --user") {
		t.Errorf("setup without --org or --user: exit %d %s", c, stderr)
	}
}

// createApp does what the browser and GitHub do in the manifest flow: it
// opens the setup page at pageURL, checks the manifest (exactly basinix's
// permissions and events, its webhook, the redirect to callback) and the
// "new App" page it posts to (newAppPath), has the fake GitHub create the
// App, follows GitHub's redirect back (a forged state first), and waits
// for the command to exit 0.
func createApp(t *testing.T, gh *fakegithub.Server, pageURL, callback, newAppPath string, code <-chan int, stdout, stderr *lockedBuffer) {
	t.Helper()
	status, body := get(t, pageURL)
	form := regexp.MustCompile(`<form action="([^"]+)" method="post">\s*<input type="hidden" name="manifest" value="([^"]+)">`).FindStringSubmatch(body)
	if status != http.StatusOK || form == nil {
		t.Fatalf("setup page: %d\n%s", status, body)
	}
	action, err := url.Parse(html.UnescapeString(form[1]))
	if err != nil || action.Host != "github.example" || action.Path != newAppPath || action.Query().Get("state") == "" {
		t.Errorf("the form posts to %q, want %s", form[1], newAppPath)
	}
	manifest := html.UnescapeString(form[2])
	var m struct {
		Name        string            `json:"name"`
		Hook        map[string]any    `json:"hook_attributes"`
		Redirect    string            `json:"redirect_url"`
		Permissions map[string]string `json:"default_permissions"`
		Events      []string          `json:"default_events"`
	}
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		t.Fatalf("manifest %q: %v", manifest, err)
	}
	if !maps.Equal(m.Permissions, app.AppPermissions) || !slices.Equal(m.Events, app.AppEvents) {
		t.Errorf("manifest permissions %v events %v, want exactly %v %v", m.Permissions, m.Events, app.AppPermissions, app.AppEvents)
	}
	if m.Hook["url"] != "https://basinix.example.org/api/github/hook" || m.Redirect != callback {
		t.Errorf("manifest hook %v redirect %q, want the public URL's hook and %s", m.Hook, m.Redirect, callback)
	}
	// GitHub creates the App and sends the browser back with the code; a
	// callback with another state is not basinix's. (The test reaches the
	// callback on the listening address, GitHub's redirect names it.)
	ghCode, err := gh.SubmitManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	local := pu.Scheme + "://" + pu.Host + strings.TrimSuffix(pu.Path, "/") + "/callback"
	if status, _ := get(t, local+"?code="+ghCode+"&state=forged"); status != http.StatusBadRequest {
		t.Errorf("a callback with another state: %d, want 400", status)
	}
	if status, _ := get(t, local+"?code=..%2F..%2Fapp&state="+action.Query().Get("state")); status != http.StatusBadRequest {
		t.Errorf("a callback whose code is a path: %d, want 400", status)
	}
	status, body = get(t, local+"?code="+ghCode+"&state="+action.Query().Get("state"))
	if status != http.StatusOK || !strings.Contains(body, "https://github.example/apps/basinix/installations/new") {
		t.Errorf("callback: %d %s", status, body)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("setup exited %d:\n%s\n%s", c, stdout.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("setup did not finish after the callback")
	}
	if out := stdout.String() + stderr.String(); !strings.Contains(out, "install it: https://github.example/apps/basinix/installations/new") {
		t.Errorf("the output lacks the install link:\n%s", out)
	}
}

// checkAppFiles checks the credentials basinix wrote into data: mode
// 0600, as GitHub gave them, and a configuration a server takes.
func checkAppFiles(t *testing.T, gh *fakegithub.Server, data string) {
	t.Helper()
	dir := filepath.Join(data, "github-app")
	for name, want := range map[string]string{"private-key.pem": gh.PrivateKeyPEM, "webhook-secret": gh.WebhookSecret, "client-secret": "fake-client-secret"} {
		p := filepath.Join(dir, name)
		info, err := os.Stat(p)
		b, _ := os.ReadFile(p)
		if err != nil || info.Mode().Perm() != 0o600 || string(b) != want {
			t.Errorf("%s: %v, content as GitHub gave: %v", name, err, string(b) == want)
		}
	}
	c, err := app.LoadConfig(filepath.Join(dir, "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadSecrets(func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if c.GitHub.App.IntegrationID != gh.AppID || c.GitHub.App.WebhookSecret != gh.WebhookSecret || !strings.Contains(c.GitHub.App.PrivateKey, "PRIVATE KEY") {
		t.Errorf("config.yml gives App %d", c.GitHub.App.IntegrationID)
	}
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub would refuse:\n%s", strings.Join(v, "\n"))
	}
}

// basinix serve without any App configured serves the setup page at its
// public URL's /setup, the owner chosen on the page, and exits once the
// App is created.
func TestServeSetupPage(t *testing.T) {
	gh := fakegithub.New(t)
	data := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\ngithub:\n  web_url: https://github.example/\n  v3_api_url: %s\nserver:\n  port: %d\n  public_url: https://basinix.example.org\n", data, gh.URL, port))
	var stdout, stderr lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(context.Background(), []string{"serve", "--config", cfg}, &stdout, &stderr, func(string) (string, bool) { return "", false })
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d/setup", port)
	testenv.Eventually(t, 30*time.Second, func() bool { return strings.Contains(stderr.String(), "open https://basinix.example.org/setup") },
		func() string { return "no setup page announced: " + stderr.String() })
	if status, body := get(t, base); status != http.StatusOK || !strings.Contains(body, `name="owner" value="org"`) {
		t.Fatalf("the owner's choice: %d %s", status, body)
	}
	if status, _ := get(t, base+"?owner=org&org=octo%3Brm"); status != http.StatusBadRequest {
		t.Errorf("a bad organization name: %d, want 400", status)
	}
	createApp(t, gh, base+"?owner=org&org=octo", "https://basinix.example.org/setup/callback", "/organizations/octo/settings/apps/new", code, &stdout, &stderr)
	checkAppFiles(t, gh, data)
}
