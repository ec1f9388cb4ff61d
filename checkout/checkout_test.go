package checkout_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/internal/testenv"
)

// repo makes a repository: a base commit on master, then master and the
// branch "pr" both change file a (conflicting when conflict is true) and pr
// adds file b.
func repo(t *testing.T, conflict bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(dir, 0o755)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, dir, "init", "--quiet", "--initial-branch=master")
	write("a", "one\ntwo\nthree\n")
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "--quiet", "-m", "base")
	testenv.Git(t, dir, "tag", "v1")
	testenv.Git(t, dir, "checkout", "--quiet", "-b", "pr")
	if conflict {
		write("a", "one\nTWO from pr\nthree\n")
	}
	write("b", "new\n")
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "--quiet", "-m", "pr")
	testenv.Git(t, dir, "checkout", "--quiet", "master")
	write("a", "one\nTWO from master\nthree\n")
	testenv.Git(t, dir, "commit", "--quiet", "-am", "master moves on")
	return dir
}

// prMirror mirrors repo(t, false) and resolves its pr head and master base.
func prMirror(t *testing.T) (src string, m *checkout.Mirror, head, base string) {
	t.Helper()
	src = repo(t, false)
	m = mirror(t, src)
	ctx := context.Background()
	head, _ = m.Resolve(ctx, "pr")
	base, _ = m.Resolve(ctx, "master")
	return src, m, head, base
}

func mirror(t *testing.T, src string) *checkout.Mirror {
	t.Helper()
	return mirrorLogged(t, src, zerolog.Nop())
}

// mirrorLogged is mirror with its workspace logging to log.
func mirrorLogged(t *testing.T, src string, log zerolog.Logger) *checkout.Mirror {
	t.Helper()
	ws := checkout.New(t.TempDir(), log)
	m, err := ws.Mirror(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestResolve(t *testing.T) {
	src := repo(t, false)
	m := mirror(t, src)
	ctx := context.Background()
	master, err := m.Resolve(ctx, "master")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"refs/heads/master", master} {
		if got, err := m.Resolve(ctx, ref); err != nil || got != master {
			t.Errorf("Resolve(%q) = %q, %v; want %q", ref, got, err, master)
		}
	}
	if _, err := m.Resolve(ctx, "v1"); err != nil {
		t.Errorf("Resolve(v1): %v", err)
	}
	for _, ref := range []string{"nope", "--upload-pack=touch /tmp/x", "0000000000000000000000000000000000000000"} {
		if _, err := m.Resolve(ctx, ref); !errors.Is(err, checkout.ErrUnknownRef) {
			t.Errorf("Resolve(%q): want ErrUnknownRef, got %v", ref, err)
		}
	}
}

func TestMergeIsDeterministic(t *testing.T) {
	src := repo(t, false)
	ctx := context.Background()
	var merges []string
	for i := 0; i < 2; i++ {
		m := mirror(t, "file://"+src)
		base, _ := m.Resolve(ctx, "master")
		head, _ := m.Resolve(ctx, "pr")
		mg, err := m.Merge(ctx, base, head)
		if err != nil {
			t.Fatal(err)
		}
		if mg.Conflict || mg.Base != base || mg.Commit == head || mg.Commit == base {
			t.Fatalf("want a clean merge commit, got %+v", mg)
		}
		if !m.HasFile(ctx, mg.Commit, "b") {
			t.Error("the merge lacks the PR's file")
		}
		merges = append(merges, mg.Commit)
	}
	if merges[0] != merges[1] {
		t.Errorf("two merges of the same commits differ: %s, %s", merges[0], merges[1])
	}
}

func TestMergeConflictFallsBackToMergeBase(t *testing.T) {
	src := repo(t, true)
	m := mirror(t, src)
	ctx := context.Background()
	base, _ := m.Resolve(ctx, "master")
	head, _ := m.Resolve(ctx, "pr")
	mb, _ := m.Resolve(ctx, "v1")
	mg, err := m.Merge(ctx, base, head)
	if err != nil {
		t.Fatal(err)
	}
	if !mg.Conflict || mg.Base != mb || mg.Commit != head || len(mg.Files) != 1 || mg.Files[0] != "a" {
		t.Errorf("want a conflict on a with base %s and head %s, got %+v", mb, head, mg)
	}
}

// A released checkout is reused for the next commit and then holds exactly
// that commit: files it lacks are gone, files changed behind git's back are
// restored. Checkouts leased at once are separate directories, and none is
// a git worktree.
func TestWorktreesAreReused(t *testing.T) {
	src, m, head, base := prMirror(t)
	ctx := context.Background()
	read := func(wt *checkout.Worktree, name string) string {
		b, err := os.ReadFile(filepath.Join(wt.Path, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}

	wt, err := m.Worktree(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(wt, "b"); got != "new\n" {
		t.Fatalf("head checkout: b = %q", got)
	}
	other, err := m.Worktree(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if other.Path == wt.Path {
		t.Fatal("two leases share a directory")
	}
	if err := os.WriteFile(filepath.Join(wt.Path, "a"), []byte("changed behind git's back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := wt.Path
	if err := wt.Release(); err != nil {
		t.Fatal(err)
	}

	again, err := m.Worktree(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if again.Path != path {
		t.Errorf("the released checkout %s was not reused (got %s)", path, again.Path)
	}
	if again.Commit != base || read(again, "a") != "one\nTWO from master\nthree\n" {
		t.Errorf("reused checkout: commit %s, a = %q", again.Commit, read(again, "a"))
	}
	if _, err := os.Stat(filepath.Join(again.Path, "b")); !os.IsNotExist(err) {
		t.Errorf("b, which master does not have, is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(again.Path, ".git")); !os.IsNotExist(err) {
		t.Errorf("the checkout holds git metadata: %v", err)
	}
	if out := testenv.Git(t, m.Dir, "worktree", "list"); strings.Contains(out, again.Path) {
		t.Errorf("git lists the checkout as a worktree:\n%s", out)
	}
	other.Release()
	again.Release()

	// A new process's workspace reuses the kept checkouts: moved, and
	// cleaned of what git does not know when the process before it was
	// killed mid-move (it had removed .commit, and left a file of a
	// third tree).
	if err := os.WriteFile(filepath.Join(path, "stray"), []byte("left behind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".commit"); err != nil {
		t.Fatal(err)
	}
	ws := checkout.New(filepath.Dir(filepath.Dir(m.Dir)), zerolog.Nop())
	m2, err := ws.Mirror(src)
	if err != nil {
		t.Fatal(err)
	}
	first, err := m2.Worktree(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	second, err := m2.Worktree(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	reused := []string{first.Path, second.Path}
	sort.Strings(reused)
	if want := []string{other.Path, path}; !slices.Equal(reused, sortedCopy(want)) {
		t.Errorf("the new workspace made %v, want the kept %v", reused, want)
	}
	for _, wt := range []*checkout.Worktree{first, second} {
		if read(wt, "b") != "new\n" {
			t.Errorf("%s: b = %q", wt.Path, read(wt, "b"))
		}
		if _, err := os.Stat(filepath.Join(wt.Path, "stray")); !os.IsNotExist(err) {
			t.Errorf("%s: a file git does not know is left: %v", wt.Path, err)
		}
	}
	// Leased (by either workspace) means not shared: a third lease is a
	// new checkout.
	third, err := m.Worktree(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if third.Path == first.Path || third.Path == second.Path {
		t.Fatal("a leased checkout was leased again")
	}
	// A kept checkout whose index is gone is not trusted: replaced.
	third.Release()
	os.Remove(third.Path + ".index")
	fourth, err := m.Worktree(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Path == third.Path || read(fourth, "a") != "one\nTWO from master\nthree\n" {
		t.Errorf("a damaged checkout was reused: %s", fourth.Path)
	}
	first.Release()
	second.Release()
	fourth.Release()

	// At most Keep checkouts stay once released.
	ws.Keep = 1
	var leases []*checkout.Worktree
	for range 3 {
		wt, err := m2.Worktree(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, wt)
	}
	for _, wt := range leases {
		wt.Release()
	}
	entries, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.index"))
	if len(entries) != 1 {
		t.Errorf("%d checkouts kept with Keep = 1", len(entries))
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func TestBadRepositories(t *testing.T) {
	ws := checkout.New(t.TempDir(), zerolog.Nop())
	for _, repo := range []string{"", "ext::sh -c touch% /tmp/pwned", "--upload-pack=x", "/does/not/exist"} {
		if _, err := ws.Mirror(repo); err == nil {
			t.Errorf("Mirror(%q): want an error", repo)
		}
	}
	m, err := ws.Mirror("file:///does/not/exist")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Fetch(context.Background()); !errors.Is(err, checkout.ErrNoRepository) {
		t.Errorf("Fetch of a missing repository: want ErrNoRepository, got %v", err)
	}
}

// Fetching over HTTP from real git (git http-backend) that wants a token:
// the workspace's Auth gives it, without putting it on the command line.
func TestFetchOverHTTPWithToken(t *testing.T) {
	src := repo(t, false)
	bare := filepath.Join(t.TempDir(), "pkgs.git")
	testenv.Git(t, src, "clone", "--quiet", "--bare", src, bare)
	execPath := strings.TrimSpace(testenv.Git(t, src, "--exec-path"))
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(bare), "GIT_HTTP_EXPORT_ALL=1"},
	}
	const token = "ghs_secret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
		if r.Header.Get("Authorization") != want {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()
	url := srv.URL + "/pkgs.git"

	ws := checkout.New(t.TempDir(), zerolog.Nop())
	m, err := ws.Mirror(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Fetch(context.Background()); err == nil {
		t.Fatal("fetched without the token")
	}
	ws.Auth = func(_ context.Context, u string) ([]string, error) {
		if u != url {
			t.Errorf("auth asked for %q", u)
		}
		return []string{"http.extraHeader=Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))}, nil
	}
	if err := m.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resolve(context.Background(), "pr"); err != nil {
		t.Errorf("pr after the fetch: %v", err)
	}
}

// A new mirror of a local repository shares its objects through hard links
// (no packing of the whole history); later fetches bring new commits.
func TestLocalMirrorIsSeededWithHardLinks(t *testing.T) {
	src := repo(t, false)
	m := mirror(t, src)
	linked := 0
	filepath.WalkDir(filepath.Join(m.Dir, "objects"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil && st.Nlink > 1 {
			linked++
		}
		return nil
	})
	if linked == 0 {
		t.Error("no object of the mirror is a hard link to the source's")
	}
	if err := os.WriteFile(filepath.Join(src, "c"), []byte("later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, src, "add", "c")
	testenv.Git(t, src, "commit", "--quiet", "-m", "later")
	want := strings.TrimSpace(testenv.Git(t, src, "rev-parse", "HEAD"))
	if err := m.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve(context.Background(), "master"); err != nil || got != want {
		t.Errorf("master after a second fetch: %s, %v; want %s", got, err, want)
	}
}

// A checkout that a completed move left marked is moved again without a
// walk for files git does not know, by this process or the next (only
// evaluations, which cannot write, read a leased tree); one whose move did
// not complete, or whose mark is of another boot or none, is cleaned.
func TestMovedCheckoutIsCleanedUnlessMarked(t *testing.T) {
	src, m, head, base := prMirror(t)
	ctx := context.Background()
	lease := func(m *checkout.Mirror, commit string) *checkout.Worktree {
		t.Helper()
		wt, err := m.Worktree(ctx, commit)
		if err != nil {
			t.Fatal(err)
		}
		return wt
	}
	wt := lease(m, base)
	path := wt.Path
	wt.Release()
	moved := lease(m, head)
	if moved.Path != path {
		t.Fatalf("the released checkout was not reused: %s, want %s", moved.Path, path)
	}
	if b, err := os.ReadFile(filepath.Join(path, "b")); err != nil || string(b) != "new\n" {
		t.Fatalf("moved to the head: b = %q, %v", b, err)
	}
	moved.Release()

	// Another process leases it and releases it: its mark is as good as
	// this one's, and neither walks the tree for files git does not know.
	// (A file that appears in a released tree, which no basinix process
	// writes, shows that no walk happened.)
	ws := checkout.New(filepath.Dir(filepath.Dir(m.Dir)), zerolog.Nop())
	m2, err := ws.Mirror(src)
	if err != nil {
		t.Fatal(err)
	}
	lease(m2, base).Release()
	if err := os.WriteFile(filepath.Join(path, "stray"), []byte("not basinix's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := lease(m, head)
	if again.Path != path {
		t.Fatalf("the released checkout was not reused: %s, want %s", again.Path, path)
	}
	if _, err := os.Stat(filepath.Join(path, "stray")); err != nil {
		t.Errorf("a marked checkout was walked for files git does not know: %v", err)
	}
	again.Release()
	lease(m2, base).Release()
	if _, err := os.Stat(filepath.Join(path, "stray")); err != nil {
		t.Errorf("a checkout marked by another process was walked for files git does not know: %v", err)
	}

	// A mark of another boot is no proof: the machine may have crashed
	// mid-move, keeping the move's files and losing its removal of
	// .commit.
	if err := os.WriteFile(path+".commit", []byte(base+"\nboot 00000000-0000-0000-0000-000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lease(m, head).Release()
	if _, err := os.Stat(filepath.Join(path, "stray")); !os.IsNotExist(err) {
		t.Errorf("a file git does not know is left after a mark of another boot: %v", err)
	}

	// A move this workspace began and did not finish (its context ended)
	// is no proof either.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Worktree(stopped, base); err == nil {
		t.Fatal("a checkout with its context ended succeeded")
	}
	if err := os.WriteFile(filepath.Join(path, "stray"), []byte("left behind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lease(m, head).Release()
	if _, err := os.Stat(filepath.Join(path, "stray")); !os.IsNotExist(err) {
		t.Errorf("a file git does not know is left after a move that did not finish: %v", err)
	}

	// An old basinix's .commit (no mark) is no proof.
	if err := os.WriteFile(path+".commit", []byte(head+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "stray"), []byte("left behind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	last := lease(m, base)
	if _, err := os.Stat(filepath.Join(path, "stray")); !os.IsNotExist(err) {
		t.Errorf("a file git does not know is left after an unmarked .commit: %v", err)
	}
	last.Release()

	// A marked tree is moved from the commit it names, by the commits'
	// difference alone; one naming a commit the mirror lacks is written
	// and cleaned as an unmarked one.
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".commit", []byte(strings.Repeat("0", 40)+"\nboot "+strings.TrimSpace(string(boot))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "stray"), []byte("left behind\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt = lease(m, head)
	if b, err := os.ReadFile(filepath.Join(path, "b")); err != nil || string(b) != "new\n" {
		t.Errorf("moved from a commit the mirror lacks: b = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(path, "stray")); !os.IsNotExist(err) {
		t.Errorf("a file git does not know is left after a move from a commit the mirror lacks: %v", err)
	}
	wt.Release()
}

// TestCheckoutLeavesNoRacyEntries checks that a checkout's index is dated
// past every file it describes, in a later second: git (without USE_NSEC)
// hashes again each file written in the index's own second before it
// trusts its stat data, which after a fresh checkout of nixpkgs' size is
// half the tree read on the next move. This repository is written in a
// few milliseconds, so without the dating every file would be racy.
func TestCheckoutLeavesNoRacyEntries(t *testing.T) {
	_, m, head, base := prMirror(t)
	ctx := context.Background()
	for _, commit := range []string{head, base} { // written, then moved
		wt, err := m.Worktree(ctx, commit)
		if err != nil {
			t.Fatal(err)
		}
		index, err := os.Stat(wt.Path + ".index")
		if err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(wt.Path, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.ModTime().Unix() >= index.ModTime().Unix() {
				t.Errorf("at %s, %s was written at %s, in the second of the index (%s): the next move reads it again",
					commit[:7], path, fi.ModTime(), index.ModTime())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := wt.Release(); err != nil {
			t.Fatal(err)
		}
	}
}
