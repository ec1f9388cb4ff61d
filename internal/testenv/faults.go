package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Fault makes the next Count calls of a Nix program fail the way a sick
// machine makes them fail: printing Stderr and exiting 1, or, with Signal
// set, killed by that signal (as the OOM killer would) before doing
// anything. Calls past Count run the real program.
type Fault struct {
	Program string // nix-instantiate, nix-store, nix
	// When, when set, limits the fault to calls whose arguments contain
	// it (as one string, space-separated): "--eval".
	When   string
	Count  int
	Stderr string
	Signal int
}

// FaultyNix returns a directory to use as nix.bin_dir: each Nix program in
// it is a wrapper that runs the real one from PATH, except for the calls
// the faults name. Faults of one program are served in order.
func FaultyNix(t testing.TB, faults ...Fault) string {
	t.Helper()
	RequireNix(t)
	dir := t.TempDir()
	byProgram := map[string][]Fault{}
	for _, f := range faults {
		byProgram[f.Program] = append(byProgram[f.Program], f)
	}
	for _, prog := range []string{"nix-instantiate", "nix-store", "nix", "nix-env"} {
		real, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString("#!/bin/sh\n")
		for i, f := range byProgram[prog] {
			counter := filepath.Join(dir, fmt.Sprintf("%s.%d.left", prog, i))
			if err := os.WriteFile(counter, []byte(fmt.Sprint(f.Count)), 0o600); err != nil {
				t.Fatal(err)
			}
			stderr := filepath.Join(dir, fmt.Sprintf("%s.%d.stderr", prog, i))
			if err := os.WriteFile(stderr, []byte(f.Stderr+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fail := fmt.Sprintf("cat '%s' >&2; exit 1", stderr)
			if f.Signal != 0 {
				fail = fmt.Sprintf("kill -%d $$", f.Signal)
			}
			match := "*"
			if f.When != "" {
				match = "*" + strings.ReplaceAll(f.When, "'", "") + "*"
			}
			// Calls run at once (base and head evaluate in parallel): the
			// counter is taken under a lock, or two calls read it while a
			// third rewrites it and the fault is skipped; and it is replaced
			// by a rename, since a call killed mid-write (a cancelled
			// sibling walker) must not leave it empty.
			take := fmt.Sprintf("( flock 9; n=$(cat '%[1]s'); [ \"$n\" -gt 0 ] || exit 1; echo $((n - 1)) > '%[1]s.new' && mv '%[1]s.new' '%[1]s' ) 9>>'%[1]s.lock'", counter)
			fmt.Fprintf(&b, "case \"$*\" in %s)\n  if %s; then %s; fi;;\nesac\n", match, take, fail)
		}
		fmt.Fprintf(&b, "exec '%s' \"$@\"\n", real)
		if err := os.WriteFile(filepath.Join(dir, prog), []byte(b.String()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ClearFaults ends the faults of a FaultyNix directory: every later call
// runs the real program.
func ClearFaults(t testing.TB, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*.left"))
	for _, m := range matches {
		if err := os.WriteFile(m, []byte("0"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// FaultsLeft returns how many calls of the faults of program are still to
// fail, for a test to check that they were reached.
func FaultsLeft(t testing.TB, dir, program string) int {
	t.Helper()
	total := 0
	matches, _ := filepath.Glob(filepath.Join(dir, program+".*.left"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(string(b), &n)
		total += n
	}
	return total
}
