package app

import (
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// A story of a sick machine: the Nix store is read-only when the PR comes,
// so the review fails for the machine's fault; its check runs stay in
// progress, saying so and when basinix tries again, and nothing is
// remembered as the change's result. Once the store is writable the
// revision is tried again on its own and gets its real verdicts.
func TestServeRetriesAfterAMachineFault(t *testing.T) {
	bin := testenv.FaultyNix(t, testenv.Fault{Program: "nix-instantiate", When: "--eval", Count: 1000,
		Stderr: "error: opening lock file '/nix/var/nix/db/big-lock': Read-only file system"})
	f := newAppConfig(t, sampleset.Options{Bulk: 5}, func(c *Config) {
		c.Nix.BinDir = bin
		c.Server.MachineRetry = 300 * time.Millisecond
	})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))

	// "the store is read-only": the eval check run says it tries again.
	var ev fakegithub.CheckRun
	testenv.Eventually(t, time.Minute, func() bool {
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.Name == "basinix / eval" {
				ev = c
			}
		}
		return strings.Contains(ev.Summary, "It tries again at")
	}, func() string { return "eval check run: " + ev.Summary })
	if ev.Status == "completed" || !strings.Contains(ev.Summary, "Read-only file system") {
		t.Errorf("while the store is read-only, the eval check run is %s:\n%s", ev.Status, ev.Summary)
	}

	// "the store is writable again": the revision gets its verdicts.
	testenv.ClearFaults(t, bin)
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	if c := runs["basinix / eval"]; c.Conclusion != "failure" || !strings.Contains(c.Summary, "evalbreaks") {
		t.Errorf("eval check run after the fault: %s\n%s", c.Conclusion, c.Summary)
	}
	if c := runs["basinix / build (x86_64-linux)"]; c.Conclusion != "failure" || !strings.Contains(c.Title, "newly-failing") {
		t.Errorf("build check run after the fault: %s %q", c.Conclusion, c.Title)
	}
}
