package checkout_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/internal/testenv"
)

// treeRepo makes a repository of 400 files in nested directories, with
// attributes that change line endings, an executable and symlinks, then a
// second commit that changes, removes and adds a file.
func treeRepo(t *testing.T) (dir, first, second string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "src")
	files := map[string]string{
		".gitattributes":     "*.txt text eol=crlf\n",
		"d07/.gitattributes": "*.txt -text\n",
		"bin/run.sh":         "#!/bin/sh\necho run\n",
	}
	for i := range 400 {
		files[fmt.Sprintf("d%02d/sub%d/f%03d.txt", i%20, i%3, i)] = fmt.Sprintf("line one %d\nline two\n", i)
	}
	first = testenv.Commit(t, dir, files, "first")
	if err := os.Chmod(filepath.Join(dir, "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"link": "d00/sub0/f000.txt", "d01/abs": "/etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	first = testenv.Commit(t, dir, nil, "first, with links")
	os.Remove(filepath.Join(dir, "d05/sub2/f005.txt"))
	second = testenv.Commit(t, dir, map[string]string{"d01/sub1/f001.txt": "changed\n", "d19/new.txt": "added\n"}, "second")
	return dir, first, second
}

// gitCheckout writes commit with git alone, into a new directory beside
// its own index: what a checkout must equal.
func gitCheckout(t *testing.T, m *checkout.Mirror, commit string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("git", "--git-dir="+m.Dir, "--work-tree="+dir, "read-tree", "-u", "--reset", commit)
	cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+dir+".index", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git read-tree: %v: %s", err, out)
	}
	return dir
}

// describe lists a tree: each path with its type, permissions and content
// (a symlink's target).
func describe(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			out[rel] = "link " + target
			return err
		case fi.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(path)
			out[rel] = fmt.Sprintf("%v %q", fi.Mode().Perm(), b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// git runs git on checkout wt with its own index.
func worktreeGit(wt *checkout.Worktree, m *checkout.Mirror, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"--git-dir=" + m.Dir, "--work-tree=" + wt.Path}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+wt.Path+".index", "GIT_CONFIG_NOSYSTEM=1")
	return cmd.CombinedOutput()
}

func inode(t *testing.T, path string) (ino uint64, ctime syscall.Timespec) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino, st.Ctim
}

// debugMirror is mirrorLogged with the workspace's debug log kept in a
// buffer.
func debugMirror(t *testing.T, src string) (*checkout.Mirror, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	return mirrorLogged(t, src, zerolog.New(&log).Level(zerolog.DebugLevel)), &log
}

// commitSubmodule commits, in the repository src, a submodule vendor/sub
// at commit, and returns the new commit.
func commitSubmodule(t *testing.T, src, commit string) string {
	t.Helper()
	testenv.Git(t, src, "update-index", "--add", "--cacheinfo", "160000,"+commit+",vendor/sub")
	testenv.Git(t, src, "commit", "--quiet", "-m", "a submodule")
	return strings.TrimSpace(testenv.Git(t, src, "rev-parse", "HEAD"))
}

// A new checkout written by several git processes is the tree git alone
// writes (line endings its attributes ask for, modes, symlinks), and its
// index holds the stat data git would record: git sees no file changed,
// and the next move rewrites only what the next commit changes.
func TestParallelCheckoutIsGits(t *testing.T) {
	defer checkout.SetParallel(3, 10)()
	src, first, second := treeRepo(t)
	m, log := debugMirror(t, src)
	ctx := context.Background()
	wt, err := m.Worktree(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "written by one git") {
		t.Fatalf("the new checkout was left to one git:\n%s", log.String())
	}
	want := describe(t, gitCheckout(t, m, first))
	if want["d00/sub0/f000.txt"] != `-rw-r--r-- "line one 0\r\nline two\r\n"` || want["d07/sub1/f007.txt"] != `-rw-r--r-- "line one 7\nline two\n"` {
		t.Fatalf("the attributes did not apply as the test means: %q, %q", want["d00/sub0/f000.txt"], want["d07/sub1/f007.txt"])
	}
	if diff := cmp.Diff(want, describe(t, wt.Path)); diff != "" {
		t.Fatalf("the parallel checkout differs from git's (-git +parallel):\n%s", diff)
	}
	if out, err := worktreeGit(wt, m, "diff-files", "--name-only", "--exit-code"); err != nil {
		t.Fatalf("git sees changed files in a new checkout (the index's stat data are wrong): %v\n%s", err, out)
	}
	if out, err := worktreeGit(wt, m, "ls-files", "--stage"); err != nil || !strings.Contains(string(out), "100755 ") || !strings.Contains(string(out), "120000 ") {
		t.Fatalf("git ls-files: %v\n%s", err, out)
	}

	kept, keptCtime := inode(t, filepath.Join(wt.Path, "d02/sub2/f002.txt"))
	path := wt.Path
	wt.Release()
	wt, err = m.Worktree(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if wt.Path != path {
		t.Fatalf("the checkout was not reused: %s, then %s", path, wt.Path)
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, second)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("the moved checkout differs from git's (-git +moved):\n%s", diff)
	}
	if ino, ctime := inode(t, filepath.Join(wt.Path, "d02/sub2/f002.txt")); ino != kept || ctime != keptCtime {
		t.Errorf("the move rewrote a file the commits share (inode %d → %d, ctime %v → %v)", kept, ino, keptCtime, ctime)
	}
	wt.Release()
}

// A tree the parallel writer leaves to git (here: one with a submodule)
// is written by one git, as before.
func TestParallelCheckoutLeavesSubmodulesToGit(t *testing.T) {
	defer checkout.SetParallel(3, 10)()
	src, _, second := treeRepo(t)
	commit := commitSubmodule(t, src, second)
	m, log := debugMirror(t, src)
	ctx := context.Background()
	wt, err := m.Worktree(ctx, commit)
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Release()
	if !strings.Contains(log.String(), "written by one git") || !strings.Contains(log.String(), "submodule vendor/sub") {
		t.Errorf("the log does not say the tree was left to one git:\n%s", log.String())
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, commit)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("the checkout differs from git's (-git +basinix):\n%s", diff)
	}
	if out, err := worktreeGit(wt, m, "diff-files", "--name-only", "--exit-code"); err != nil {
		t.Fatalf("git sees changed files: %v\n%s", err, out)
	}
}
