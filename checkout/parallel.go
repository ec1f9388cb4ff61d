package checkout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// A new checkout's tree is written by several git processes at once.
// Writing files is the kernel's work, and one git keeps one core busy
// with it: 1.0 s of a cold 20,000-file review here, on a machine of two
// cores whose other one idles meanwhile. Two `git checkout-index`
// processes, each given half of the files, take 0.6 s. (git's own
// checkout.workers is no faster here: its main process makes every
// directory and stats every file.)
var (
	// checkoutWorkers is the most git processes a new checkout uses.
	checkoutWorkers = min(runtime.GOMAXPROCS(0), 4)
	// filesPerWorker is the fewest files worth one more process.
	filesPerWorker = 2000
)

// errLeaveToGit is a tree writeParallel does not write: a plain
// `read-tree -u` does.
var errLeaveToGit = errors.New("left to a single git")

// writeParallel writes commit's tree into the empty directory w.Path and
// its index beside it, exactly as `git read-tree -u --reset` would:
//
//   - `git read-tree` (no -u) makes the index, which also checks every
//     path (no "..", no ".git", no absolute path);
//   - every .gitattributes is written first, by one git, so that the
//     others read each whole (git reads a checkout's attributes from the
//     work tree, and a half-written one would change line endings);
//   - the remaining entries, in index order (each directory's files are
//     adjacent there), are cut into one contiguous run per process; the
//     directories the runs share are made beforehand, so no two
//     processes make the same one;
//   - each process is `git checkout-index --stdin` without -f: it never
//     replaces or removes what is there, and a tree with a file and a
//     directory of one name fails rather than racing;
//   - the index gets each file's stat data, read back after the writes.
//
// It returns errLeaveToGit, the directory emptied again, for a tree it
// leaves to git: few files, one core, submodules, an index of another
// shape, or a git that failed (a machine's fault fails again there and is
// reported as such).
//
// env and git are the environment and leading arguments of the
// checkout's git (its index, mirror and work tree).
func (w *Worktree) writeParallel(ctx context.Context, commit string, env, git []string) (time.Duration, error) {
	if checkoutWorkers < 2 {
		return 0, errLeaveToGit
	}
	_, sys, err := runGitProc(ctx, "", env, append(git, "read-tree", commit+"^{commit}")...)
	if err != nil {
		return sys, fmt.Errorf("read-tree: %w", err)
	}
	x, err := readIndex(w.index)
	if err != nil {
		return sys, w.leaveToGit(err)
	}
	workers := min(checkoutWorkers, len(x.entries)/filesPerWorker)
	if workers < 2 {
		return sys, errLeaveToGit
	}
	var attrs []int
	rest := make([]int, 0, len(x.entries))
	for i, e := range x.entries {
		switch {
		case e.mode&0o170000 == 0o160000:
			return sys, w.leaveToGit(fmt.Errorf("submodule %s", e.name))
		case path.Base(e.name) == ".gitattributes":
			attrs = append(attrs, i)
		default:
			rest = append(rest, i)
		}
	}
	// write writes entries of x and records their stat data.
	write := func(ctx context.Context, entries []int) (time.Duration, error) {
		var names []byte
		for _, i := range entries {
			names = append(append(names, x.entries[i].name...), 0)
		}
		_, s, err := runGitInput(ctx, "", env, names, append(git, "checkout-index", "-z", "--stdin")...)
		if err == nil {
			err = x.stat(w.Path, entries)
		}
		return s, err
	}
	if len(attrs) > 0 {
		s, err := write(ctx, attrs)
		sys += s
		if err != nil {
			return sys, w.leaveToGit(err)
		}
	}
	runs := make([][]int, workers)
	for k := range runs {
		runs[k] = rest[k*len(rest)/workers : (k+1)*len(rest)/workers]
	}
	root, err := os.OpenRoot(w.Path)
	if err != nil {
		return sys, err
	}
	defer root.Close()
	for _, run := range runs[1:] {
		if len(run) == 0 {
			continue
		}
		if dir := path.Dir(x.entries[run[0]].name); dir != "." {
			if err := root.MkdirAll(dir, 0o777); err != nil {
				return sys, w.leaveToGit(err)
			}
		}
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, run := range runs {
		wg.Go(func() {
			s, err := write(wctx, run)
			mu.Lock()
			defer mu.Unlock()
			sys += s
			if err != nil {
				errs = append(errs, err)
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return sys, ctx.Err()
		}
		return sys, w.leaveToGit(err)
	}
	if err := x.write(w.index); err != nil {
		return sys, fmt.Errorf("index: %w", err)
	}
	return sys, nil
}

// stat records the stat data of entries of x written below root, and fails
// when one is not what its entry says (a file where git meant a symlink).
func (x *gitIndex) stat(root string, entries []int) error {
	for _, i := range entries {
		e := x.entries[i]
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, e.name), &st); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if st.Mode&syscall.S_IFMT != e.mode&0o170000 {
			return fmt.Errorf("%s: mode %o, not the tree's %o", e.name, st.Mode, e.mode)
		}
		x.setStat(i, &st)
	}
	return nil
}

// leaveToGit empties the directory again for a single git to write, and
// says why the parallel writer did not.
func (w *Worktree) leaveToGit(why error) error {
	if err := emptyDir(w.Path); err != nil {
		return err
	}
	w.m.ws.log.Debug().Err(why).Str("checkout", w.Path).Msg("a new checkout is written by one git")
	return fmt.Errorf("%w: %v", errLeaveToGit, why)
}

// emptyDir removes everything in dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
