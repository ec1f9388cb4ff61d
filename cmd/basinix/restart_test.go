package main

import (
	"fmt"
	"io"
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

// Three stories of `basinix serve` killed with SIGKILL in the middle of
// work a webhook asked for, then started again: a branch tip's build, a
// requested build and a comment command each finish after the restart,
// and none of their effects happens twice.
func TestServeKill9ResumesEveryJob(t *testing.T) {
	testenv.RequireNix(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	gh := fakegithub.New(t)
	gh.AddInstallation(9, "octo", "octo/pkgs")
	gh.SetPermission("maint", "maintain")
	started := filepath.Join(dir, "started") // each slow build writes its name here as it starts
	slow := func(name, version string) string {
		return fmt.Sprintf("{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = %q;\n  version = %q;\n  script = %q;\n}\n",
			name, version, fmt.Sprintf("echo %s-%s >> %s; /bin/sleep 5", name, version, started))
	}
	buildLog := filepath.Join(dir, "builds")
	repo := testenv.Sample(t, sampleset.Options{Bulk: 5, BuildLog: buildLog, Extra: map[string]string{
		"slowtip": slow("slowtip", "1"), "slowreq": slow("slowreq", "1"),
	}})
	ghRepo := fakegithub.Repo{Installation: 9, FullName: "octo/pkgs", CloneURL: "file://" + repo.Dir}
	sha := func(ref string) string { return strings.TrimSpace(testenv.Git(t, repo.Dir, "rev-parse", ref)) }

	port := freePort(t)
	key := filepath.Join(dir, "app.pem")
	os.WriteFile(key, []byte(gh.PrivateKeyPEM), 0o600)
	cfg := serveConfig(t, dir, gh, port, key, true)
	// The sample PR breaks packages on purpose; the merge story is about
	// the merge, not its checks.
	appendFile(t, cfg, "commands:\n  merge_checks: []\n")
	hook := fmt.Sprintf("http://127.0.0.1:%d/api/github/hook", port)
	deliveries := 0
	deliver := func(event string, body []byte) {
		t.Helper()
		deliveries++
		resp, err := gh.Deliver(hook, event, fmt.Sprintf("restart-%d", deliveries), body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s webhook: %v %v", event, err, resp)
		}
		resp.Body.Close()
	}
	page := func(path string) string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	startedBuilds := func(name string) int {
		b, _ := os.ReadFile(started)
		return strings.Count(string(b), name+"\n")
	}
	kill := func(server *exec.Cmd) {
		t.Helper()
		if err := server.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		server.Wait()
	}
	count := func(list []string, sub string) int {
		n := 0
		for _, s := range list {
			if strings.Contains(s, sub) {
				n++
			}
		}
		return n
	}

	// "a branch tip's build is killed".
	server := startServe(t, bin, cfg, dir, port, nil)
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "master")
	deliver("push", fakegithub.PushEvent(t, ghRepo, "master", sha("master"))) // the first tip: evaluated only
	os.WriteFile(filepath.Join(repo.Dir, repo.Options.PackageFile("slowtip")), []byte(slow("slowtip", "2")), 0o644)
	testenv.Git(t, repo.Dir, "commit", "--quiet", "-am", "slowtip: 1 -> 2")
	deliver("push", fakegithub.PushEvent(t, ghRepo, "master", sha("master")))
	testenv.Eventually(t, time.Minute, func() bool { return startedBuilds("slowtip-2") == 1 }, nil)
	kill(server)
	server = startServe(t, bin, cfg, dir, port, nil)
	testenv.Eventually(t, time.Minute, func() bool {
		return strings.Contains(page("/attr/octo/pkgs/master/slowtip"), `<span class="st st-success" title="success">✔ success</span>`)
	}, nil)
	if got := page("/attr/octo/pkgs/master/slowtip"); strings.Count(got, "<td>slowtip: 1 -&gt; 2</td>") != 1 {
		t.Errorf("slowtip's history after the restart, want one entry:\n%s", got)
	}

	// "a requested build is killed".
	head := sha(repo.Head)
	mergeable := true
	gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: ghRepo.CloneURL, Mergeable: &mergeable})
	openPR(t, gh, port, repo, head, "restart-pr")
	build := "basinix / build (x86_64-linux)"
	runs := func(name string) []fakegithub.CheckRun {
		var out []fakegithub.CheckRun
		for _, c := range gh.CheckRuns("octo/pkgs") {
			if c.Name == name {
				out = append(out, c)
			}
		}
		return out
	}
	testenv.Eventually(t, time.Minute, func() bool { r := runs(build); return len(r) == 1 && r[0].Status == "completed" }, nil)
	deliver("issue_comment", fakegithub.CommentEvent(t, ghRepo, 1, 801, "maint", "User", "@basinix build slowreq"))
	testenv.Eventually(t, time.Minute, func() bool { return startedBuilds("slowreq-1") == 1 }, nil)
	kill(server)
	server = startServe(t, bin, cfg, dir, port, nil)
	requested := "basinix / build-requested (x86_64-linux)"
	testenv.Eventually(t, time.Minute, func() bool { r := runs(requested); return len(r) > 0 && r[0].Status == "completed" }, nil)
	if r := runs(requested); len(r) != 1 || r[0].Conclusion != "success" || !strings.Contains(r[0].Summary, "| `slowreq` | success |") {
		t.Errorf("requested build check runs after the restart: %+v", r)
	}
	if got := gh.Reactions(801); len(got) != 1 {
		t.Errorf("the build command's reactions: %v", got)
	}

	// "a merge is killed after GitHub merged".
	held := gh.HoldOpAfterActing("pulls/merge")
	deliver("issue_comment", fakegithub.CommentEvent(t, ghRepo, 1, 802, "maint", "User", "@basinix merge Thanks!"))
	<-held
	kill(server)
	startServe(t, bin, cfg, dir, port, nil)
	testenv.Eventually(t, time.Minute, func() bool {
		return strings.Contains(page("/pr/octo/pkgs/1"), "<td><code>merge Thanks!</code></td><td>done</td>")
	}, nil)
	comments := gh.Comments("octo/pkgs", 1)
	if n := gh.Merges("octo/pkgs", 1); n != 1 || count(comments, "Thanks!") != 1 || count(comments, "Not merged") != 0 {
		t.Errorf("after the restart: merged %d times, comments %q", n, comments)
	}
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub would refuse: %v", v)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}
