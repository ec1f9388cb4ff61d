package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// A PR's builder goes after the App's secrets as an attacker would, with
// the sandbox off as on these machines: it searches every process's
// environment for the webhook secret (given to basinix in its environment)
// and prints the private key file. No process environment holds the
// secret, and the key never reaches GitHub, the log page or the server's
// log: the redactor cuts it out of the build log's tail.
func TestServeKeepsSecretsFromBuilds(t *testing.T) {
	testenv.RequireNix(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	gh := fakegithub.New(t)
	b := make([]byte, 16)
	rand.Read(b)
	gh.WebhookSecret = "whsec-" + hex.EncodeToString(b)
	half := len(gh.WebhookSecret) / 2
	gh.AddInstallation(9, "octo", "octo/pkgs")

	key := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(key, []byte(gh.PrivateKeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	hits := filepath.Join(dir, "environ-hits")
	snoop := fmt.Sprintf(`{ stdenv }:

stdenv.mkDerivation {
  pname = "snoop";
  version = "1.0";
  PATH = "/usr/bin:/bin";
  script = ''
    a=%q; b=%q
    for f in /proc/[0-9]*/environ; do
      if grep -q "$a$b" "$f" 2>/dev/null; then echo "$f" >> %s; fi
    done
    echo "the App's key:"
    cat %s
    exit 1
  '';
}
`, gh.WebhookSecret[:half], gh.WebhookSecret[half:], hits, key)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 3, PRExtra: map[string]string{"snoop": snoop}})
	head := strings.TrimSpace(testenv.Git(t, repo.Dir, "rev-parse", repo.Head))

	port := freePort(t)
	cfg := serveConfig(t, dir, gh, port, key, false)
	server := startServe(t, bin, cfg, dir, port, []string{"BASINIX_GITHUB_APP_WEBHOOK_SECRET=" + gh.WebhookSecret})

	environ, err := os.ReadFile("/proc/" + strconv.Itoa(server.Process.Pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(environ), gh.WebhookSecret) {
		t.Error("the webhook secret is in basinix's /proc/PID/environ")
	}

	openPR(t, gh, port, repo, head, "snoop-1")
	build := "basinix / build (x86_64-linux)"
	var run fakegithub.CheckRun
	testenv.Eventually(t, time.Minute, func() bool {
		for _, c := range gh.CheckRuns("octo/pkgs") {
			if c.Name == build && c.Status == "completed" {
				run = c
				return true
			}
		}
		return false
	}, nil)

	if b, err := os.ReadFile(hits); err == nil && len(b) > 0 {
		t.Errorf("processes whose environment holds the webhook secret, as the builder found them:\n%s", b)
	}
	keyLines := strings.Split(strings.TrimSpace(gh.PrivateKeyPEM), "\n")
	keyLines = keyLines[1 : len(keyLines)-1]
	leaks := func(where, text string) {
		t.Helper()
		for _, l := range keyLines {
			if strings.Contains(text, l) {
				t.Errorf("%s shows the App's private key", where)
				return
			}
		}
		if strings.Contains(text, gh.WebhookSecret) {
			t.Errorf("%s shows the webhook secret", where)
		}
	}
	all := run.Title + run.Summary + run.Text + fmt.Sprint(run.Annotations)
	leaks("the build check run", all)
	if !strings.Contains(run.Summary, "snoop") || !strings.Contains(run.Summary, "[redacted]") {
		t.Errorf("the check run does not show snoop's log tail, redacted:\n%s", run.Summary)
	}
	m := regexp.MustCompile(`/log/([0-9a-z]{32}-snoop-1\.0\.(?:drv|log))`).FindStringSubmatch(run.Summary)
	if m == nil {
		t.Fatalf("no log link for snoop in:\n%s", run.Summary)
	}
	page, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/log/%s", port, m[1]))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(page.Body)
	page.Body.Close()
	leaks("the log page", string(text))
	if !strings.Contains(string(text), "the App's key:") {
		t.Errorf("the log page does not show the build's log:\n%s", text)
	}
	serveLog, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	leaks("the server's log", string(serveLog))
	for _, c := range gh.Comments("octo/pkgs", 1) {
		leaks("a comment", c)
	}
}
