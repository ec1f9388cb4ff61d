// Package testenv holds what basinix's tests share: the check that the real
// Nix is there, a logger writing to the test log, and generated sample sets.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/sampleset"
)

// RequireNix fails the test when the Nix CLI is missing: tests that claim to
// evaluate or build use the real Nix, never a stand-in, and do not skip.
func RequireNix(t testing.TB) {
	t.Helper()
	for _, p := range []string{"nix-instantiate", "nix-store", "nix-env"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found: these tests need the real Nix (run .ci/install-nix, see NIX.md)", p)
		}
	}
}

// Logger returns a logger writing to the test's log.
func Logger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewConsoleWriter(zerolog.ConsoleTestWriter(t))).Level(zerolog.DebugLevel)
}

// Sample generates a sample package set in a temporary directory.
func Sample(t testing.TB, opt sampleset.Options) *sampleset.Repo {
	t.Helper()
	r, err := sampleset.Generate(filepath.Join(t.TempDir(), "repo"), opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Checkout checks ref out in the sample's working tree and returns its path.
func Checkout(t testing.TB, r *sampleset.Repo, ref string) string {
	t.Helper()
	Git(t, r.Dir, "checkout", "--quiet", ref)
	return r.Dir
}

// Git runs git in dir and returns its output, failing the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return string(out)
}
