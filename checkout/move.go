package checkout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// moveByDiff moves a marked tree (exactly w.Commit's, its index included:
// see Worktree) to commit by what differs between the two commits, which
// `git diff-tree` finds without reading the trees they share:
//
//   - `git update-index --index-info` gives the index the new commit's
//     entries for those paths (and checks each path as read-tree does);
//   - the files of removed paths are removed, and the directories that
//     leaves empty, as git does;
//   - `git checkout-index -f -u` writes the added and changed files and
//     records their stat data.
//
// A two-tree `read-tree -u --reset` does the same but reads and merges both
// whole trees and the index first: on the 20,000-attribute nixpkgs-shaped
// sample a move takes 99 ms that way against 59 ms (BenchmarkMove), all of
// it before the evaluation can start.
//
// It returns, having touched nothing, errLeaveToGit for a difference it
// leaves to read-tree (a submodule, a kind of change it does not know),
// and errRewrite for a change of a .gitattributes, which changes how files
// the commits share are written (line endings): no move rewrites those,
// so the tree is written anew.
func (w *Worktree) moveByDiff(ctx context.Context, commit string, env, git []string) (time.Duration, error) {
	if moveByReadTree { // BenchmarkMove's other side
		return 0, errLeaveToGit
	}
	out, sys, err := runGitProc(ctx, "", env, append(git, "diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", w.Commit+"^{commit}", commit+"^{commit}")...)
	if err != nil {
		return sys, fmt.Errorf("diff-tree: %w", err)
	}
	changes, err := parseRawDiff(out)
	if err != nil {
		return sys, err
	}
	if len(changes) == 0 {
		return sys, nil
	}
	var info, write []byte
	var removed []string
	for _, c := range changes {
		if c.status == 'D' {
			info = fmt.Appendf(info, "0 %s\t%s\x00", strings.Repeat("0", len(c.oid)), c.name)
			removed = append(removed, c.name)
			continue
		}
		info = fmt.Appendf(info, "%s %s\t%s\x00", c.mode, c.oid, c.name)
		write = append(append(write, c.name...), 0)
	}
	_, s, err := runGitInput(ctx, "", env, info, append(git, "update-index", "-z", "--index-info")...)
	sys += s
	if err != nil {
		return sys, fmt.Errorf("update-index: %w", err)
	}
	if err := removeFiles(w.Path, removed); err != nil {
		return sys, err
	}
	if len(write) > 0 {
		_, s, err = runGitInput(ctx, "", env, write, append(git, "checkout-index", "-f", "-u", "-z", "--stdin")...)
		sys += s
		if err != nil {
			return sys, fmt.Errorf("checkout-index: %w", err)
		}
	}
	return sys, nil
}

// moveByReadTree leaves every move to the two-tree read-tree, for
// BenchmarkMove to compare the two ways in one run (SetMoveByReadTree).
var moveByReadTree bool

// errRewrite is a difference after which a tree is written anew.
var errRewrite = errors.New("written anew")

// treeChange is one path of `git diff-tree -r --raw`: its status (A, D, M
// or T) and, unless removed, its new mode and object.
type treeChange struct {
	status    byte
	mode, oid string
	name      string
}

// parseRawDiff parses the -z raw output of diff-tree without renames:
// ":OLDMODE NEWMODE OLDOID NEWOID STATUS\0PATH\0" a path. A difference
// moveByDiff leaves to git is errLeaveToGit or errRewrite.
func parseRawDiff(out string) ([]treeChange, error) {
	var changes []treeChange
	for out != "" {
		head, rest, ok := strings.Cut(out, "\x00")
		name, next, ok2 := strings.Cut(rest, "\x00")
		f := strings.Fields(strings.TrimPrefix(head, ":"))
		if !ok || !ok2 || !strings.HasPrefix(head, ":") || len(f) != 5 || len(f[4]) != 1 || name == "" {
			return nil, fmt.Errorf("diff-tree: unexpected output %q", head)
		}
		c := treeChange{status: f[4][0], mode: f[1], oid: f[3], name: name}
		switch {
		case !strings.Contains("ADMT", f[4]):
			return nil, fmt.Errorf("%w: %s is %s", errLeaveToGit, name, f[4])
		case f[0] == "160000" || f[1] == "160000":
			return nil, fmt.Errorf("%w: submodule %s", errLeaveToGit, name)
		case path.Base(name) == ".gitattributes":
			return nil, fmt.Errorf("%w: %s changes", errRewrite, name)
		}
		changes = append(changes, c)
		out = next
	}
	return changes, nil
}

// removeFiles removes the files (or symlinks) names below dir, and then
// each parent directory that is left empty, as git does. Names are the old
// tree's, checked when it was written; the removals stay below dir anyway
// (os.Root).
func removeFiles(dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, name := range names {
		if err := root.Remove(name); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if root.Remove(d) != nil { // not empty (or gone): its parents are not either
				break
			}
		}
	}
	return nil
}
