// Package testenv holds what basinix's tests share: the check that the real
// Nix is there, a logger writing to the test log, and generated sample sets.
package testenv

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// RequireDiffoscope fails the test when diffoscope is missing (.ci/run
// installs Debian's diffoscope-minimal).
func RequireDiffoscope(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("diffoscope"); err != nil {
		t.Fatal("diffoscope not found: apt-get install --no-install-recommends diffoscope-minimal (as .ci/run does)")
	}
}

// Logger returns a logger writing to the test's log.
func Logger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewConsoleWriter(zerolog.ConsoleTestWriter(t))).Level(zerolog.DebugLevel)
}

// BenchLogger is the log of a benchmark's reviews: none, unless
// BASINIX_BENCH_LOG=1 asks for every step (Nix commands included) on
// stderr, with times, to see where a run spends them.
func BenchLogger() zerolog.Logger {
	if os.Getenv("BASINIX_BENCH_LOG") != "1" {
		return zerolog.Nop()
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	cw := zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: "15:04:05.000"}
	return zerolog.New(cw).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// BenchDir returns a temporary directory for a benchmark's files, under
// BASINIX_BENCH_DIR when set (else the test's own temporary directory),
// removed at the end. It warns when that directory is on ext4 without a
// journal: there a tree written in the minutes after another was deleted
// costs several times the system time (the inode allocator skips inodes
// freed recently, for 360 s once their table block is dirty again), so
// checkout figures say more about the disk than about the code. A
// journaled file system, the usual one, does not do this.
func BenchDir(b testing.TB) string {
	parent := os.Getenv("BASINIX_BENCH_DIR")
	if parent == "" {
		parent = b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if dev, ok := journalless(dir); ok {
		b.Logf("warning: %s is on ext4 without a journal (%s): checkouts written after deletions cost far more here than on a journaled file system; set BASINIX_BENCH_DIR to one (README, \"The nixpkgs-shaped sample\")", dir, dev)
	}
	return dir
}

// journalless says whether dir is on an ext4 file system without a
// journal, with its device's name.
func journalless(dir string) (string, bool) {
	dir, err := filepath.Abs(dir) // mount points are absolute
	if err != nil {
		return "", false
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	// The mount whose point is the longest prefix of dir.
	var point, fstype, source string
	for _, line := range strings.Split(string(mounts), "\n") {
		// ID PARENT MAJ:MIN ROOT POINT OPTIONS... - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		p := f[4]
		if (dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/")) && len(p) >= len(point) {
			point, fstype, source = p, g[0], g[1]
		}
	}
	if fstype != "ext4" {
		return "", false
	}
	dev := filepath.Base(source)
	task, err := os.ReadFile(filepath.Join("/sys/fs/ext4", dev, "journal_task"))
	if err != nil {
		return "", false
	}
	return source, strings.TrimSpace(string(task)) == "<none>"
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

// EnvInt reads a benchmark's size from the environment: the positive
// integer in variable name, def when unset or not one.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Eventually polls cond every 20 ms until it holds, failing the test with
// failure() (nil: "condition not met") after timeout. What tests wait for
// (a fake GitHub's state, the store, processes, files) sends no
// notification: this is the one way they wait.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "condition not met within " + timeout.String()
			if failure != nil {
				msg = failure()
			}
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Update says whether the test run was asked to rewrite what it compares
// with (-update).
func Update() bool { return *update }

// Golden compares got with testdata/name, or rewrites the file with
// -update (read the diff before committing it).
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from what the test made (-update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the lines that differ, the golden file's with "-", the
// new ones with "+".
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, a, c)
		}
	}
	return b.String()
}

// Commit writes files (path → content) into the git repository dir,
// creating it on first use, commits them all and returns the commit.
func Commit(t testing.TB, dir string, files map[string]string, message string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		Git(t, dir, "init", "--quiet", "--initial-branch=main")
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "--quiet", "--allow-empty", "-m", message)
	return strings.TrimSpace(Git(t, dir, "rev-parse", "HEAD"))
}

// Median returns the middle of ds (the upper one of an even count), leaving
// ds as it is: the figure the benches report of their rounds.
func Median[T int64 | float64 | time.Duration](ds []T) T {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
