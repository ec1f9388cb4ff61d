package build

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// FileChange is one file that differs between a base and a head output.
type FileChange struct {
	// Output is the output's name ("out", "dev", …), Path the file's path
	// inside it ("bin/hello").
	Output string `json:"output"`
	Path   string `json:"path"`
	// Change is "added", "removed" or "changed".
	Change string `json:"change"`
	// Kind is "file", "executable", "symlink" or "directory" (the head's,
	// or the base's for a removed file).
	Kind     string `json:"kind"`
	BaseSize int64  `json:"baseSize"`
	HeadSize int64  `json:"headSize"`
}

// Name is the file's output and path ("out/bin/hello"); an output that
// is a single file is named by its output alone.
func (f FileChange) Name() string {
	if f.Path == "." {
		return f.Output
	}
	return f.Output + "/" + f.Path
}

// Delta is how much the file grew (negative: shrank).
func (f FileChange) Delta() int64 { return f.HeadSize - f.BaseSize }

// FileDiff is what a change did to the files of an attribute's outputs.
type FileDiff struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
	// Unchanged counts the files equal on both sides.
	Unchanged int `json:"unchanged"`
	// Entries are the differing files, the biggest size changes first,
	// at most the limit given; Truncated says some were left out.
	Entries   []FileChange `json:"entries,omitempty"`
	Truncated bool         `json:"truncated,omitempty"`
}

// DiffLimits bound an output diff.
type DiffLimits struct {
	// MaxFiles ends the walk of an output with this many files (0: 1,000,000).
	MaxFiles int
	// MaxEntries is how many differing files are listed (0: 50).
	MaxEntries int
}

// ErrTooManyFiles is returned when an output has more files than DiffLimits.MaxFiles.
var ErrTooManyFiles = errors.New("too many files to compare")

type fileEntry struct {
	kind   string
	size   int64
	target string // a symlink's
}

// storeHash matches a store path's hash part wherever it appears, so that
// a file that differs only by the outputs' own paths (a script naming
// itself, a symlink into the output) is not counted as changed.
var storeHash = regexp.MustCompile(`/nix/store/[0-9a-df-np-sv-z]{32}-`)

// DiffOutputs compares, output by output, the files of base and head
// (output name → store path). Outputs on one side only count as all their
// files added or removed. Files are equal when their kinds, sizes and
// contents are, store hashes in them ignored.
func DiffOutputs(base, head map[string]string, lim DiffLimits) (*FileDiff, error) {
	lim.MaxFiles = cmp.Or(lim.MaxFiles, 1_000_000)
	lim.MaxEntries = cmp.Or(lim.MaxEntries, 50)
	d := &FileDiff{}
	var all, compare []FileChange
	names := map[string]bool{}
	for n := range base {
		names[n] = true
	}
	for n := range head {
		names[n] = true
	}
	for _, out := range slices.Sorted(maps.Keys(names)) {
		var b, h map[string]fileEntry
		var g errgroup.Group
		g.Go(func() (err error) { b, err = listTree(base[out], lim.MaxFiles); return err })
		g.Go(func() (err error) { h, err = listTree(head[out], lim.MaxFiles); return err })
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for p, he := range h {
			be, ok := b[p]
			switch {
			case !ok:
				all = append(all, FileChange{Output: out, Path: p, Change: "added", Kind: he.kind, HeadSize: he.size})
			case be.kind != he.kind || be.size != he.size || be.target != he.target && !sameModuloStore(be.target, he.target):
				all = append(all, FileChange{Output: out, Path: p, Change: "changed", Kind: he.kind, BaseSize: be.size, HeadSize: he.size})
			case he.kind == "file" || he.kind == "executable":
				compare = append(compare, FileChange{Output: out, Path: p, Change: "changed", Kind: he.kind, BaseSize: be.size, HeadSize: he.size})
			default:
				d.Unchanged++
			}
		}
		for p, be := range b {
			if _, ok := h[p]; !ok {
				all = append(all, FileChange{Output: out, Path: p, Change: "removed", Kind: be.kind, BaseSize: be.size})
			}
		}
	}
	// Files of equal size are read, by a few workers: the time goes to
	// opening them, which the file system does in parallel.
	differ := make([]bool, len(compare))
	var g errgroup.Group
	workers := min(runtime.GOMAXPROCS(0)*2, 8)
	for w := range workers {
		g.Go(func() error {
			bufs := [2][]byte{make([]byte, 64<<10), make([]byte, 64<<10)}
			for i := w; i < len(compare); i += workers {
				c := compare[i]
				same, err := sameContent(filepath.Join(base[c.Output], c.Path), filepath.Join(head[c.Output], c.Path), &bufs)
				if err != nil {
					return err
				}
				differ[i] = !same
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("compare output files: %w", err)
	}
	for i, c := range compare {
		if differ[i] {
			all = append(all, c)
		} else {
			d.Unchanged++
		}
	}
	for _, c := range all {
		switch c.Change {
		case "added":
			d.Added++
		case "removed":
			d.Removed++
		default:
			d.Changed++
		}
	}
	slices.SortFunc(all, func(a, b FileChange) int {
		if c := cmp.Compare(abs(b.Delta()), abs(a.Delta())); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Output, b.Output), cmp.Compare(a.Path, b.Path))
	})
	if len(all) > lim.MaxEntries {
		all, d.Truncated = all[:lim.MaxEntries], true
	}
	d.Entries = all
	return d, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// listTree lists the files under root by their path relative to it ("."
// for root itself, which may be a single file). An empty root lists nothing.
func listTree(root string, max int) (map[string]fileEntry, error) {
	out := map[string]fileEntry{}
	if root == "" {
		return out, nil
	}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if len(out) >= max {
			return fmt.Errorf("%s: %w (more than %d)", root, ErrTooManyFiles, max)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		e := fileEntry{kind: "file"}
		switch {
		case de.Type()&fs.ModeSymlink != 0:
			e.kind = "symlink"
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
			e.size = int64(len(e.target))
		case de.IsDir():
			e.kind = "directory"
		default:
			info, err := de.Info()
			if err != nil {
				return err
			}
			e.size = info.Size()
			if info.Mode()&0o111 != 0 {
				e.kind = "executable"
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list output files: %w", err)
	}
	return out, nil
}

func sameModuloStore(a, b string) bool {
	return storeHash.ReplaceAllString(a, "/nix/store/") == storeHash.ReplaceAllString(b, "/nix/store/")
}

// sameContent compares two files of equal size. Files are read in chunks
// into bufs (two reused buffers) with plain system calls (os.File would
// register each with the poller: most of the time on small files); where
// bytes differ, they are compared again with store hashes blanked, which
// needs the whole files (store paths cross chunk borders).
func sameContent(a, b string, bufs *[2][]byte) (bool, error) {
	fa, err := openRead(a)
	if err != nil {
		return false, err
	}
	defer unix.Close(fa)
	fb, err := openRead(b)
	if err != nil {
		return false, err
	}
	defer unix.Close(fb)
	ba, bb := bufs[0], bufs[1]
	for {
		na, err := readFull(fa, ba)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", a, err)
		}
		nb, err := readFull(fb, bb)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", b, err)
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			break
		}
		if na < len(ba) {
			return true, nil
		}
	}
	// Bytes differ: the same up to the outputs' own store paths?
	const maxWhole = 64 << 20
	if info, err := os.Stat(a); err != nil || info.Size() > maxWhole {
		return false, err
	}
	wa, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	wb, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(storeHash.ReplaceAll(wa, []byte("/nix/store/")), storeHash.ReplaceAll(wb, []byte("/nix/store/"))), nil
}

func openRead(p string) (int, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != unix.EINTR {
			if err != nil {
				return -1, &fs.PathError{Op: "open", Path: p, Err: err}
			}
			return fd, nil
		}
	}
}

// readFull reads until buf is full or the file ends.
func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// ClosureChange is one package whose versions or size differ between the
// closures of a base and a head output, as `nix store diff-closures` shows.
type ClosureChange struct {
	Name      string   `json:"name"`
	Before    []string `json:"before,omitempty"` // versions ("" for none) in the base's closure
	After     []string `json:"after,omitempty"`
	SizeDelta int64    `json:"sizeDelta"` // NAR bytes
}

// DiffClosures compares two closures (store path → NAR size) by package
// name, as `nix store diff-closures` does: a package whose versions differ,
// or whose size changed, is listed; the biggest size changes first.
func DiffClosures(base, head map[string]int64) []ClosureChange {
	type side struct {
		versions map[string]bool
		size     int64
	}
	group := func(c map[string]int64) map[string]*side {
		out := map[string]*side{}
		for p, size := range c {
			name, version := ParseName(storeName(p))
			s := out[name]
			if s == nil {
				s = &side{versions: map[string]bool{}}
				out[name] = s
			}
			s.versions[version] = true
			s.size += size
		}
		return out
	}
	b, h := group(base), group(head)
	names := map[string]bool{}
	for n := range b {
		names[n] = true
	}
	for n := range h {
		names[n] = true
	}
	var out []ClosureChange
	for n := range names {
		bs, hs := b[n], h[n]
		c := ClosureChange{Name: n}
		if bs != nil {
			c.Before = slices.Sorted(maps.Keys(bs.versions))
			c.SizeDelta -= bs.size
		}
		if hs != nil {
			c.After = slices.Sorted(maps.Keys(hs.versions))
			c.SizeDelta += hs.size
		}
		if c.SizeDelta == 0 && slices.Equal(c.Before, c.After) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ClosureChange) int {
		return cmp.Or(cmp.Compare(abs(b.SizeDelta), abs(a.SizeDelta)), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// storeName is a store path's name: "/nix/store/<hash>-hello-2.12" → "hello-2.12".
func storeName(p string) string {
	base := filepath.Base(p)
	if len(base) > 33 && base[32] == '-' {
		return base[33:]
	}
	return base
}

// ParseName splits a store name into package name and version as
// builtins.parseDrvName does: the version starts at the first dash
// followed by something other than a letter.
func ParseName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !(s[i+1] >= 'a' && s[i+1] <= 'z' || s[i+1] >= 'A' && s[i+1] <= 'Z') {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// SizeChange is a size on both sides.
type SizeChange struct {
	Base int64 `json:"base"`
	Head int64 `json:"head"`
}

// Delta is how much it grew.
func (s SizeChange) Delta() int64 { return s.Head - s.Base }

// OutputDiff is what a change did to an attribute's outputs, built on
// both sides: sizes, files and closure. Error says why it is missing.
type OutputDiff struct {
	NarSize     SizeChange      `json:"narSize"`
	ClosureSize SizeChange      `json:"closureSize"`
	Files       *FileDiff       `json:"files,omitempty"`
	Closure     []ClosureChange `json:"closure,omitempty"`
	Error       string          `json:"error,omitempty"`
	// Diffoscope are the reports asked for (`@basinix diff`, `basinix
	// review --diffoscope`), one per output.
	Diffoscope []DiffoscopeRun `json:"diffoscope,omitempty"`
}

// DiffoscopeRun is diffoscope's report on one output: File is its name
// under the data directory's diffoscope/ (served at /diffoscope/FILE);
// an empty file when nothing differs.
type DiffoscopeRun struct {
	Output    string `json:"output"`
	File      string `json:"file"`
	Differs   bool   `json:"differs"`
	Size      int64  `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Noteworthy reports whether the diff is worth a line in a summary:
// files changed, or sizes moved.
func (o *OutputDiff) Noteworthy() bool {
	if o == nil || o.Error != "" {
		return false
	}
	return o.NarSize.Delta() != 0 || o.ClosureSize.Delta() != 0 || len(o.Closure) > 0 ||
		o.Files != nil && o.Files.Added+o.Files.Removed+o.Files.Changed > 0
}
