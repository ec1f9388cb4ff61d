package build

import (
	"context"
	"os"
	"strings"
	"testing"
)

// A build that prints a line of 540 MB (past the 512 MiB that once failed
// the whole batch, other PRs' packages included) is cut, not fatal: it and
// the package built beside it get their own results, and its kept log is
// bounded although Nix's compressed copy unpacks to 540 MB.
func TestLongLineDoesNotFailTheBatch(t *testing.T) {
	f := newFixture(t, Options{LogMaxBytes: 1 << 20})
	got := f.build(false, "longline", "good")
	for _, a := range []string{"longline", "good"} {
		if got[a].Result != Success {
			t.Errorf("%s: %s (%s)", a, got[a].Result, got[a].Message)
		}
	}
	st, err := os.Stat(got["longline"].Log)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20+1<<10 {
		t.Errorf("kept log of %d bytes for a bound of 1 MiB", st.Size())
	}
	if end := string(LogEnd(got["longline"].Log, 4096)); !strings.Contains(end, "the rest was not read") {
		t.Errorf("the kept log does not say it was cut: %q", end)
	}
}

// A builder killed by a signal neither Nix nor basinix sent, and a build
// that failed for want of disk space, fail now but are not remembered:
// the machine was at fault, and the next review builds them again.
func TestMachineFaultsOfBuildsAreNotRemembered(t *testing.T) {
	f := newFixture(t, Options{})
	got := f.build(false, "killed", "diskfull", "bad")
	for _, a := range []string{"killed", "diskfull"} {
		if got[a].Result != Failure {
			t.Errorf("%s: %s, want failure", a, got[a].Result)
		}
	}
	if m := got["killed"].Message; !strings.Contains(m, "signal 9") {
		t.Errorf("killed: message %q", m)
	}
	if m := got["diskfull"].Message; !strings.Contains(m, "no space left") {
		t.Errorf("diskfull: message %q", m)
	}
	kept, err := f.results.Results(context.Background(), []string{f.drvs["killed"], f.drvs["diskfull"], f.drvs["bad"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kept[f.drvs["bad"]]; !ok {
		t.Error("bad, the package's own failure, is not remembered")
	}
	for _, a := range []string{"killed", "diskfull"} {
		if o, ok := kept[f.drvs[a]]; ok {
			t.Errorf("%s remembered as %s", a, o.Result)
		}
	}
	f.build(false, "killed", "diskfull", "bad")
	n := map[string]int{}
	for _, b := range f.builds() {
		n[b]++
	}
	if n["killed"] != 2 || n["diskfull"] != 2 || n["bad"] != 1 {
		t.Errorf("builds Nix ran: %v; want killed and diskfull twice, bad once", n)
	}
}

// A fixed-output derivation whose hash does not match fails with both
// hashes in its message: what its author needs to fix it.
func TestHashMismatchNamesBothHashes(t *testing.T) {
	f := newFixture(t, Options{})
	got := f.build(false, "fodmismatch")["fodmismatch"]
	if got.Result != Failure || !strings.Contains(got.Message, "specified sha256-AAAA") || !strings.Contains(got.Message, ", got sha256-") {
		t.Errorf("fodmismatch: %s %q", got.Result, got.Message)
	}
}
