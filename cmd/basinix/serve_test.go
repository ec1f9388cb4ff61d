package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// `basinix serve` killed with SIGKILL in the middle of a build and started
// again: the review resumes and completes, and no check run is created
// twice.
func TestServeSurvivesKill9(t *testing.T) {
	testenv.RequireNix(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	gh := fakegithub.New(t)
	gh.AddInstallation(9, "octo", "octo/pkgs")
	repo := testenv.Sample(t, sampleset.Options{Bulk: 5, BuildLog: filepath.Join(dir, "builds"), PRExtra: map[string]string{
		"slowpkg": "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"slowpkg\";\n  version = \"1.0\";\n  script = \"/bin/sleep 4\";\n}\n",
	}})
	head := strings.TrimSpace(testenv.Git(t, repo.Dir, "rev-parse", repo.Head))

	port := freePort(t)
	key := filepath.Join(dir, "app.pem")
	os.WriteFile(key, []byte(gh.PrivateKeyPEM), 0o600)
	cfg := serveConfig(t, dir, gh, port, key, true)

	start := func() *exec.Cmd { return startServe(t, bin, cfg, dir, port, nil) }
	server := start()
	openPR(t, gh, port, repo, head, "kill-1")
	build := "basinix / build (x86_64-linux)"
	runs := func() map[string]fakegithub.CheckRun {
		out := map[string]fakegithub.CheckRun{}
		for _, c := range gh.CheckRuns("octo/pkgs") {
			out[c.Name] = c
		}
		return out
	}
	testenv.Eventually(t, time.Minute, func() bool { _, ok := runs()[build]; return ok }, nil) // building
	if err := server.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	server.Wait()
	if c := runs()[build]; c.Status == "completed" {
		t.Fatalf("the build check run completed before the kill: the test proves nothing")
	}

	start()
	testenv.Eventually(t, time.Minute, func() bool { c, ok := runs()[build]; return ok && c.Status == "completed" }, nil)
	if c := runs()[build]; c.Conclusion != "failure" || !strings.Contains(c.Title, "2 newly-failing") {
		t.Errorf("build check run after the restart: %s %q", c.Conclusion, c.Title)
	}
	if n := len(gh.CheckRuns("octo/pkgs")); n != 2 {
		t.Errorf("%d check runs, want 2 (none created twice)", n)
	}
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub would refuse: %v", v)
	}
}

// serveConfig writes the configuration of a `basinix serve` against gh on
// port, with the App's key in keyFile and, when inlineSecret, the webhook
// secret in the file (else it must come from the environment).
func serveConfig(t *testing.T, dir string, gh *fakegithub.Server, port int, keyFile string, inlineSecret bool) string {
	t.Helper()
	secret := ""
	if inlineSecret {
		secret = "\n    webhook_secret: " + gh.WebhookSecret
	}
	cfg := filepath.Join(dir, "config.yml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
eval:
  workers: 2
github:
  v3_api_url: %s
  app:
    integration_id: %d%s
server:
  port: %d
  public_url: https://basinix.example
  private_key_file: %s
`, filepath.Join(dir, "data"), gh.URL, gh.AppID, secret, port, keyFile)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openPR delivers "PR 1 of octo/pkgs opened at head" to the server on port.
func openPR(t *testing.T, gh *fakegithub.Server, port int, repo *sampleset.Repo, head, delivery string) {
	t.Helper()
	body := fakegithub.PullRequestEvent(t, "opened", fakegithub.PR{Installation: 9, Repo: "octo/pkgs", CloneURL: "file://" + repo.Dir, Number: 1, Head: head, Base: "master"})
	resp, err := gh.Deliver(fmt.Sprintf("http://127.0.0.1:%d/api/github/hook", port), "pull_request", delivery, body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
}

// buildBinary builds basinix into dir and returns its path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "basinix")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test builds the binary: %v", err)
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServe starts `bin serve --config cfg` with the test's environment
// and env, logging to dir/serve.log (shown when the test fails), and waits
// until it answers on port. It is killed when the test ends.
func startServe(t *testing.T, bin, cfg, dir string, port int, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	logPath := filepath.Join(dir, "serve.log")
	logf, _ := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", b)
		}
	})
	testenv.Eventually(t, time.Minute, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, nil)
	return cmd
}
