package checkout_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/internal/testenv"
)

// A kept checkout moved to another commit by the commits' difference is
// the tree git alone writes, its index git's (entries and fresh stat
// data), through every kind of change: content, mode, symlinks, a file
// that becomes a directory and back, a directory left empty; the files
// the commits share are not rewritten. A change of .gitattributes, which
// changes how the files the commits share are written, writes the tree
// anew; a submodule is left to read-tree.
func TestMoveByDiffIsGits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	in := func(name string) string { return filepath.Join(dir, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c1 := testenv.Commit(t, dir, map[string]string{
		"a.txt": "one\n", "dir/x": "x\n", "dir/sub/y": "y\n", "f": "file f\n",
		"keep/k": "kept\n", "exec.sh": "#!/bin/sh\n", "t": "a file, then a link\n",
	}, "first")
	must(os.Symlink("a.txt", in("link")))
	c1 = testenv.Commit(t, dir, nil, "first, with a link")

	must(os.Remove(in("dir/sub/y")))
	must(os.Remove(in("f")))
	must(os.Chmod(in("exec.sh"), 0o755))
	must(os.Remove(in("link")))
	must(os.Symlink("keep/k", in("link")))
	must(os.Remove(in("t")))
	must(os.Symlink("a.txt", in("t")))
	c2 := testenv.Commit(t, dir, map[string]string{"a.txt": "two\n", "f/inside": "now a directory\n", "new/deep/n": "added\n"}, "second")

	must(os.RemoveAll(in("dir")))
	must(os.RemoveAll(in("f")))
	c3 := testenv.Commit(t, dir, map[string]string{"dir": "a file now\n", "f": "a file again\n"}, "third")

	c4 := testenv.Commit(t, dir, map[string]string{".gitattributes": "*.txt text eol=crlf\n", "b.txt": "b\n"}, "attributes")
	c5 := commitSubmodule(t, dir, c1)

	m, log := debugMirror(t, dir)
	ctx := context.Background()
	wt, err := m.Worktree(ctx, c1)
	must(err)
	path := wt.Path
	kept, keptCtime := inode(t, filepath.Join(path, "keep/k"))
	for i, commit := range []string{c2, c3, c1, c3, c2} {
		wt.Release()
		log.Reset()
		if wt, err = m.Worktree(ctx, commit); err != nil {
			t.Fatal(err)
		}
		if wt.Path != path {
			t.Fatalf("move %d: the checkout was not reused: %s, then %s", i, path, wt.Path)
		}
		if strings.Contains(log.String(), "read-tree") || strings.Contains(log.String(), "index alone") {
			t.Errorf("move %d was not made by the commits' difference:\n%s", i, log.String())
		}
		gits := gitCheckout(t, m, commit)
		if diff := cmp.Diff(describe(t, gits), describe(t, wt.Path)); diff != "" {
			t.Fatalf("move %d to %.7s differs from git's checkout (-git +moved):\n%s", i, commit, diff)
		}
		if out, err := worktreeGit(wt, m, "diff-files", "--name-only", "--exit-code"); err != nil {
			t.Fatalf("move %d: git sees changed files (the index's stat data are wrong): %v\n%s", i, err, out)
		}
		got, err := worktreeGit(wt, m, "ls-files", "--stage")
		must(err)
		want := testenv.Git(t, m.Dir, "ls-tree", "-r", "--format=%(objectmode) %(objectname) 0\t%(path)", commit)
		if string(got) != want {
			t.Fatalf("move %d: the index is not the commit's:\n%s\nwant:\n%s", i, got, want)
		}
	}
	if ino, ctime := inode(t, filepath.Join(path, "keep/k")); ino != kept || ctime != keptCtime {
		t.Errorf("the moves rewrote a file every commit shares (inode %d → %d, ctime %v → %v)", kept, ino, keptCtime, ctime)
	}

	wt.Release()
	log.Reset()
	wt, err = m.Worktree(ctx, c4)
	must(err)
	if !strings.Contains(log.String(), "written anew") || !strings.Contains(log.String(), ".gitattributes changes") {
		t.Errorf("a change of .gitattributes did not write the tree anew:\n%s", log.String())
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, c4)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("the move to new attributes differs from git's checkout (-git +moved):\n%s", diff)
	}
	if _, err := worktreeGit(wt, m, "diff-files", "--quiet"); err != nil {
		t.Errorf("git sees changed files after the move to new attributes: %v", err)
	}

	// A submodule is left to read-tree.
	wt.Release()
	log.Reset()
	wt, err = m.Worktree(ctx, c5)
	must(err)
	defer wt.Release()
	if !strings.Contains(log.String(), "moved by read-tree") || !strings.Contains(log.String(), "submodule vendor/sub") {
		t.Errorf("a submodule was not left to read-tree:\n%s", log.String())
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, c5)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("the move to a submodule differs from git's checkout (-git +moved):\n%s", diff)
	}
}

// A move by the difference that fails half-way (here checkout-index, after
// the index took the new entries and the removed files went) falls back to
// a move from the index alone and a clean: the tree is still exactly the
// commit's, and the next move is by the difference again.
func TestMoveFailingHalfWayEndsExact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	c1 := testenv.Commit(t, dir, map[string]string{"a": "one\n", "gone/x": "x\n", "keep": "kept\n"}, "first")
	if err := os.RemoveAll(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	c2 := testenv.Commit(t, dir, map[string]string{"a": "two\n", "new/y": "y\n"}, "second")

	m, log := debugMirror(t, dir)
	ctx := context.Background()
	wt, err := m.Worktree(ctx, c1)
	if err != nil {
		t.Fatal(err)
	}
	wt.Release()

	// git, but checkout-index fails once.
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	flag := filepath.Join(bin, "fail-once")
	script := "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = checkout-index ] && [ -e " + flag + " ]; then rm -f " + flag + "; echo injected >&2; exit 128; fi\ndone\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	log.Reset()
	if wt, err = m.Worktree(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(flag); !os.IsNotExist(err) {
		t.Fatalf("checkout-index was not run (the failure was not injected): %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "moved from its index alone") || !strings.Contains(log.String(), "injected") {
		t.Errorf("the failed move did not fall back to the index, or did not say why:\n%s", log.String())
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, c2)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("after the failed move the tree differs from git's checkout (-git +moved):\n%s", diff)
	}
	if out, err := worktreeGit(wt, m, "diff-files", "--exit-code"); err != nil {
		t.Fatalf("the index does not describe the tree: %v\n%s", err, out)
	}

	wt.Release()
	log.Reset()
	if wt, err = m.Worktree(ctx, c1); err != nil {
		t.Fatal(err)
	}
	defer wt.Release()
	if strings.Contains(log.String(), "read-tree") || strings.Contains(log.String(), "index alone") {
		t.Errorf("the move after the fallback was not by the difference:\n%s", log.String())
	}
	if diff := cmp.Diff(describe(t, gitCheckout(t, m, c1)), describe(t, wt.Path)); diff != "" {
		t.Fatalf("the move back differs from git's checkout (-git +moved):\n%s", diff)
	}
}
