package checkout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Worktree is a checkout of one commit, leased from its mirror: Release it
// when done. It is a plain directory with an index of its own beside it (no
// git metadata inside, nothing for an evaluation to see), so leases are
// independent of each other and of fetches.
//
// Checkouts persist: a released one stays on disk, across processes, to be
// moved to the next commit asked for, which writes only the files that
// differ (on nixpkgs' 45,000 files, writing a whole tree costs seconds of
// system time, more than the evaluation). Below the mirror's checkout
// directory, checkout NAME is the directory NAME, its index NAME.index, the
// commit it is at NAME.commit, and NAME.lock, which a lease holds locked
// (flock), so that two leases, of one process or two (the CLI beside a
// server), never share a checkout. A crashed process's locks go with it.
//
// NAME.commit also says, on its second line, that the tree is exactly
// that commit's: a move removes NAME.commit before it touches the tree
// and writes it again, with the mark, once it has completed. Only
// basinix's evaluations read a leased tree, and they cannot write it, so
// a tree with the mark needs no walk for files git does not know when it
// is moved again (git clean: 0.2 s of system time on 20,000 files, 0.9 s
// on 100,000), in this process or the next. The mark names the boot
// (/proc/sys/kernel/random/boot_id): after a crash of the machine, the
// file system may keep a half-done move's files and lose its removal of
// NAME.commit. A tree without this boot's mark (a process killed
// mid-move, an older basinix, another machine's data directory) is
// cleaned before use. (With the Nix sandbox off a build could write a
// kept tree, as it could write the whole data directory and read the
// App's key: basinix warns about a sandbox that is off when it starts.)
type Worktree struct {
	Path   string
	Commit string
	index  string
	lock   *os.File
	m      *Mirror
	fresh  bool // no file git does not know can be in the tree (see Worktree)
	empty  bool // a directory made just now: written by writeParallel
}

// bootMark is the mark a completed move writes (see Worktree): "" where
// the boot cannot be named, and then no tree is trusted.
var bootMark = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if id := strings.TrimSpace(string(b)); err == nil && id != "" {
		return "boot " + id
	}
	return ""
})

// defaultKeep is how many released checkouts a mirror keeps by default.
const defaultKeep = 4

// Worktree leases a checkout of commit: a kept one that is not leased,
// preferably one at commit already, moved to commit and cleaned of what
// git does not know; a new one when none is free.
func (m *Mirror) Worktree(ctx context.Context, commit string) (*Worktree, error) {
	dir, err := m.checkoutDir()
	if err != nil {
		return nil, fmt.Errorf("worktree %s: %w", commit, err)
	}
	kept, err := m.kept(dir)
	if err != nil {
		return nil, fmt.Errorf("worktree %s: %w", commit, err)
	}
	// The ones at commit first: nothing to move.
	slices.SortStableFunc(kept, func(a, b string) int {
		return boolRank(readCommit(b) == commit) - boolRank(readCommit(a) == commit)
	})
	for _, name := range kept {
		w, err := m.lease(dir, name)
		if err != nil {
			continue // leased, or gone
		}
		if err := w.checkout(ctx, commit); err != nil {
			if ctx.Err() != nil {
				w.unlock()
				return nil, ctx.Err()
			}
			m.ws.log.Warn().Err(err).Str("checkout", w.Path).Msg("a kept checkout cannot be moved: removing it")
			w.remove()
			continue
		}
		return w, nil
	}
	d, err := os.MkdirTemp(dir, shortSHA(commit)+"-")
	if err != nil {
		return nil, fmt.Errorf("worktree %s: %w", commit, err)
	}
	w, err := m.lease(dir, filepath.Base(d))
	if err != nil {
		os.RemoveAll(d)
		return nil, fmt.Errorf("worktree %s: %w", commit, err)
	}
	w.fresh, w.empty = true, true // made just now: nothing to clean
	if err := w.checkout(ctx, commit); err != nil {
		w.remove()
		return nil, err
	}
	return w, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkoutDir returns the directory of the mirror's checkouts.
func (m *Mirror) checkoutDir() (string, error) {
	dir := filepath.Join(m.ws.dir, "worktrees", filepath.Base(m.Dir))
	return dir, os.MkdirAll(dir, 0o755)
}

// kept returns the names of the checkouts kept in dir (leased or not).
func (m *Mirror) kept(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name()+".index")); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out, nil
}

// lease locks checkout name of dir for this Worktree; an error when another
// lease holds it.
func (m *Mirror) lease(dir, name string) (*Worktree, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := os.Stat(path); err != nil { // removed by the lease before
		f.Close()
		return nil, err
	}
	commit, mark := readCommitFile(path)
	return &Worktree{Path: path, index: path + ".index", lock: f, m: m, Commit: commit,
		fresh: mark != "" && mark == bootMark()}, nil
}

func readCommit(path string) string {
	commit, _ := readCommitFile(path)
	return commit
}

// readCommitFile returns the commit checkout path is at and the mark its
// last move wrote ("" for none).
func readCommitFile(path string) (commit, mark string) {
	b, _ := os.ReadFile(path + ".commit")
	commit, mark, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	return commit, strings.TrimSpace(mark)
}

// checkout makes the tree exactly commit's: files that differ from it (by
// content, or, unless the tree is fresh, by stat data for files changed
// behind git's back) are written, files it does not have are removed, and
// files git does not know (none should be there) are removed too, unless
// the tree is fresh (see Worktree).
func (w *Worktree) checkout(ctx context.Context, commit string) error {
	// Only a move that completes is trusted: one stopped half-way (its
	// context ended, git failed, the process was killed) may leave files
	// of a third tree.
	if err := os.Remove(w.Path + ".commit"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("worktree %s: %w", commit, err)
	}
	start := time.Now()
	env := []string{"GIT_INDEX_FILE=" + w.index}
	// The index stays git's plain format whatever the host's git config
	// says (writeParallel reads it; moveByDiff and read-tree rewrite it).
	git := []string{"--git-dir=" + w.m.Dir, "--work-tree=" + w.Path,
		"-c", "index.version=2", "-c", "core.splitIndex=false", "-c", "core.untrackedCache=false", "-c", "core.fsmonitor=false"}
	sys1, err := w.write(ctx, commit, env, git)
	if err != nil {
		return fmt.Errorf("worktree %s: %w", commit, err)
	}
	// A file written in the second the index is written in is "racily
	// clean" to the next git that reads the index (git built without
	// USE_NSEC, as Debian's, compares whole seconds): it hashes the file
	// again rather than trust its stat data. After a fresh checkout that
	// is the files of its last second, on average half the tree: 0.3 s of
	// the next move on 20,000 files, 10,000 files read. Nothing writes a
	// leased tree but this git (see Worktree), so the index is dated past
	// every file it describes, in the next second.
	next := time.Now().Truncate(time.Second).Add(time.Second)
	if err := os.Chtimes(w.index, next, next); err != nil {
		return fmt.Errorf("worktree %s: %w", commit, err)
	}
	var sys2 time.Duration
	if !w.fresh {
		if _, sys2, err = runGitProc(ctx, w.Path, env, append(git, "clean", "-ffdxq")...); err != nil {
			return fmt.Errorf("worktree %s: %w", commit, err)
		}
	}
	took := time.Since(start)
	w.m.ws.checkoutWall.Add(int64(took))
	w.m.ws.checkoutSys.Add(int64(sys1 + sys2))
	w.m.ws.log.Debug().Str("checkout", w.Path).Str("from", shortSHA(w.Commit)).Str("commit", shortSHA(commit)).
		Bool("cleaned", !w.fresh).Dur("took", took).Dur("sys", sys1+sys2).Msg("checkout at commit")
	if err := os.WriteFile(w.Path+".commit", []byte(commit+"\n"+bootMark()+"\n"), 0o644); err != nil {
		return fmt.Errorf("worktree %s: %w", commit, err)
	}
	w.Commit = commit
	return nil
}

// write brings the tree and its index to commit, the cheapest way the
// tree allows, and returns the system time git took: a new directory by
// writeParallel; a marked tree, exactly w.Commit's, index included (see
// Worktree), by moveByDiff, or by a two-tree read-tree for a difference
// moveByDiff leaves to git (both write what differs between the commits
// and leave the rest unread, where one tree stats every file), or anew
// when its attributes change; anything else, or what those leave, by a
// one-tree read-tree.
func (w *Worktree) write(ctx context.Context, commit string, env, git []string) (time.Duration, error) {
	var sys time.Duration
	switch {
	case w.empty:
		w.empty = false
		s, err := w.writeParallel(ctx, commit, env, git)
		sys += s
		if !errors.Is(err, errLeaveToGit) {
			return sys, err
		}
	case w.fresh && w.Commit != "":
		s, err := w.moveByDiff(ctx, commit, env, git)
		sys += s
		if errors.Is(err, errRewrite) { // nothing touched
			w.m.ws.log.Debug().Err(err).Str("checkout", w.Path).Msg("a checkout is written anew")
			if err := emptyDir(w.Path); err != nil {
				return sys, err
			}
			w.empty = true
			s, err := w.write(ctx, commit, env, git)
			return sys + s, err
		}
		if errors.Is(err, errLeaveToGit) { // nothing touched
			w.m.ws.log.Debug().Err(err).Str("checkout", w.Path).Msg("a checkout is moved by read-tree")
			_, s, err = runGitProc(ctx, "", env, append(git, "read-tree", "-u", "--reset", w.Commit+"^{commit}", commit+"^{commit}")...)
			sys += s
		}
		if err == nil {
			return sys, nil
		}
		if ctx.Err() != nil {
			return sys, ctx.Err()
		}
		// (w.Commit gone from the mirror, say.) What a failed git left is
		// cleaned after the move below.
		w.m.ws.log.Debug().Err(err).Str("checkout", w.Path).Msg("a checkout is moved from its index alone")
		w.fresh = false
	}
	_, s, err := runGitProc(ctx, "", env, append(git, "read-tree", "-u", "--reset", commit+"^{commit}")...)
	return sys + s, err
}

// Release gives the checkout back for reuse, or removes it when its mirror
// keeps enough already. The Worktree must not be used after.
func (w *Worktree) Release() error {
	keep := w.m.ws.Keep
	if keep <= 0 {
		keep = defaultKeep
	}
	if kept, err := w.m.kept(filepath.Dir(w.Path)); err == nil && len(kept) > keep {
		return w.remove()
	}
	w.unlock()
	return nil
}

func (w *Worktree) unlock() {
	if w.lock != nil {
		w.lock.Close() // releases the flock
		w.lock = nil
	}
}

// remove deletes the checkout, lease held, then lets the lock go.
func (w *Worktree) remove() error {
	err := errors.Join(os.RemoveAll(w.Path), os.RemoveAll(w.index), os.RemoveAll(w.Path+".commit"))
	if w.lock != nil {
		os.Remove(w.Path + ".lock")
	}
	w.unlock()
	if err != nil {
		return fmt.Errorf("remove worktree %s: %w", w.Path, err)
	}
	return nil
}

// FreeCheckouts returns how many kept checkouts are not leased now (a
// moment's answer: another lease may take one at once).
func (m *Mirror) FreeCheckouts() int {
	dir, err := m.checkoutDir()
	if err != nil {
		return 0
	}
	kept, err := m.kept(dir)
	if err != nil {
		return 0
	}
	free := 0
	for _, name := range kept {
		if w, err := m.lease(dir, name); err == nil {
			w.unlock()
			free++
		}
	}
	return free
}
