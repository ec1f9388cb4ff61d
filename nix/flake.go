package nix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A flake is evaluated the way flake-compat evaluates one, without Nix's
// flakes feature: with flakes on, restricted evaluation can be escaped
// (builtins.fetchTree of a path, builtins.getFlake; see UntrustedEvalArgs).
// basinix reads flake.lock itself, fetches each locked input through Nix in
// an expression of its own (the lock's values are arguments, never code),
// copies the flake's source into the store as Nix would, and hands the
// walker the store paths: the untrusted evaluation may read those and
// nothing else, and calls the flakes' outputs functions itself.

// Lock is a flake.lock (version 5 to 7, as Nix 2.4 to 2.x write it).
type Lock struct {
	Version int                 `json:"version"`
	Root    string              `json:"root"`
	Nodes   map[string]LockNode `json:"nodes"`
}

// LockNode is one input of a Lock. Inputs name other nodes: a string is a
// node's id, a list follows a path of input names from the root.
type LockNode struct {
	Inputs map[string]json.RawMessage `json:"inputs,omitempty"`
	Locked map[string]any             `json:"locked,omitempty"`
	Flake  *bool                      `json:"flake,omitempty"`
}

// ErrFlake marks a flake that cannot be evaluated as committed: a lock
// that is missing, malformed or names an input basinix may not fetch. It is
// the repository's fault, shown as the evaluation's error.
var ErrFlake = errors.New("flake")

// ParseLock reads flake.lock's content.
func ParseLock(b []byte) (*Lock, error) {
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%w: flake.lock: %v", ErrFlake, err)
	}
	if l.Version < 5 || l.Version > 7 {
		return nil, fmt.Errorf("%w: flake.lock: version %d is not supported (5 to 7 are)", ErrFlake, l.Version)
	}
	if l.Root == "" {
		l.Root = "root"
	}
	if _, ok := l.Nodes[l.Root]; !ok {
		return nil, fmt.Errorf("%w: flake.lock: no root node %q", ErrFlake, l.Root)
	}
	return &l, nil
}

// resolve returns the id of the node an input reference names.
func (l *Lock) resolve(ref json.RawMessage, depth int) (string, error) {
	if depth > 32 {
		return "", fmt.Errorf("%w: flake.lock: follows loop", ErrFlake)
	}
	var id string
	if json.Unmarshal(ref, &id) == nil {
		if _, ok := l.Nodes[id]; !ok {
			return "", fmt.Errorf("%w: flake.lock: no node %q", ErrFlake, id)
		}
		return id, nil
	}
	var follows []string
	if err := json.Unmarshal(ref, &follows); err != nil {
		return "", fmt.Errorf("%w: flake.lock: input reference %s", ErrFlake, ref)
	}
	id = l.Root
	for _, name := range follows {
		next, ok := l.Nodes[id].Inputs[name]
		if !ok {
			return "", fmt.Errorf("%w: flake.lock: follows %q: no input %q", ErrFlake, strings.Join(follows, "/"), name)
		}
		var err error
		if id, err = l.resolve(next, depth+1); err != nil {
			return "", err
		}
	}
	return id, nil
}

// FlakeNode is what the walker needs of one node: its source in the store,
// whether it is a flake, its inputs by node id, and the lock's facts about
// it (rev, narHash, lastModified...) for sourceInfo.
type FlakeNode struct {
	Path string `json:"path"`
	// Dir is the flake's directory in its source, "" for its root.
	Dir    string            `json:"dir,omitempty"`
	Flake  bool              `json:"flake"`
	Inputs map[string]string `json:"inputs"`
	Info   map[string]any    `json:"info"`
}

// FlakeSpec is the walker's view of a flake and its locked inputs.
type FlakeSpec struct {
	Root  string               `json:"root"`
	Nodes map[string]FlakeNode `json:"nodes"`
	// Jobs are the outputs looked for, first found wins: basinixJobs,
	// hydraJobs (walked whole), checks, packages (their system's set).
	Jobs []string `json:"jobs"`
}

// Paths returns the store paths of the spec's nodes, the only ones its
// evaluation may read.
func (s *FlakeSpec) Paths() []string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, n.Path)
	}
	sort.Strings(out)
	return out
}

// FlakeFetcher fetches what flakes need into the store, remembering what
// it fetched: a locked input never changes, so it is fetched once per
// process.
type FlakeFetcher struct {
	run interface {
		Run(ctx context.Context, cmd Cmd) (*Result, error)
	}
	expr string // the fetch expression's file
	// local are the directories below which path: and git+file: inputs
	// may be fetched: anything else would let a PR copy any file of the
	// machine into the world-readable store.
	local []string

	mu      sync.Mutex
	fetched map[string]string // locked attributes as JSON → store path
	copies  map[string]string // a checkout's fingerprint → its copy
}

// NewFlakeFetcher returns a fetcher running Nix through run, with the
// expressions WriteWalker wrote beside walker. local lists the
// directories local inputs may come from.
func NewFlakeFetcher(run interface {
	Run(ctx context.Context, cmd Cmd) (*Result, error)
}, walker string, local []string) *FlakeFetcher {
	return &FlakeFetcher{run: run, expr: filepath.Join(filepath.Dir(walker), "fetch.nix"), local: local, fetched: map[string]string{}, copies: map[string]string{}}
}

// Prepare copies the repository checked out at src into the store and
// fetches the locked inputs of its flake in dir ("" for the root), and
// returns the walker's spec. jobs is the order of outputs to look for. A
// missing or bad lock, or an input basinix may not fetch, is an ErrFlake
// error.
func (f *FlakeFetcher) Prepare(ctx context.Context, src, dir string, jobs []string) (*FlakeSpec, error) {
	lock := &Lock{Version: 7, Root: "root", Nodes: map[string]LockNode{"root": {}}}
	switch b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(dir), "flake.lock")); {
	case err == nil:
		if lock, err = ParseLock(b); err != nil {
			return nil, err
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read flake.lock: %w", err)
	}
	// No lock is a flake without inputs; one with inputs fails in the
	// walker, which compares the declared inputs with the locked ones.
	self, err := f.copySelf(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("copy the flake into the store: %w", err)
	}
	spec := &FlakeSpec{Root: lock.Root, Nodes: map[string]FlakeNode{}, Jobs: jobs}
	var visit func(id string) error
	visit = func(id string) error {
		if _, done := spec.Nodes[id]; done {
			return nil
		}
		n := lock.Nodes[id]
		node := FlakeNode{Flake: n.Flake == nil || *n.Flake, Inputs: map[string]string{}, Info: map[string]any{}}
		if id == lock.Root {
			node.Path, node.Dir = self, dir
		} else {
			if n.Locked == nil {
				return fmt.Errorf("%w: input %q is not locked in flake.lock", ErrFlake, id)
			}
			p, err := f.fetch(ctx, n.Locked, true)
			if err != nil {
				return fmt.Errorf("input %q: %w", id, err)
			}
			node.Path = p
			if d, _ := n.Locked["dir"].(string); d != "" {
				if node.Dir = path.Clean(d); path.IsAbs(d) || node.Dir == ".." || strings.HasPrefix(node.Dir, "../") {
					return fmt.Errorf("%w: input %q: dir %q is outside its source", ErrFlake, id, d)
				}
			}
			for _, k := range []string{"rev", "shortRev", "narHash", "lastModified", "revCount"} {
				if v, ok := n.Locked[k]; ok {
					node.Info[k] = v
				}
			}
		}
		spec.Nodes[id] = node // before the inputs: a cycle ends here
		for name, ref := range n.Inputs {
			to, err := lock.resolve(ref, 0)
			if err != nil {
				return err
			}
			node.Inputs[name] = to
			if err := visit(to); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(lock.Root); err != nil {
		return nil, err
	}
	return spec, nil
}

// copySelf copies the flake checked out at src into the store, once per
// content: a review evaluates a commit several times (the walk, the
// details, the messages of errors), and Nix would hash every file each
// time. The content is known by every file's path, mode, size and change
// time (as git's index knows a clean file), and the copy must still be in
// the store.
func (f *FlakeFetcher) copySelf(ctx context.Context, src string) (string, error) {
	key, err := fingerprint(src)
	if err == nil {
		f.mu.Lock()
		p, ok := f.copies[key]
		f.mu.Unlock()
		if _, serr := os.Lstat(p); ok && serr == nil {
			return p, nil
		}
	}
	p, ferr := f.fetch(ctx, map[string]any{"type": "self", "path": src}, false)
	if ferr != nil {
		return "", ferr
	}
	if err == nil {
		f.mu.Lock()
		f.copies[key] = p
		f.mu.Unlock()
	}
	return p, nil
}

// fingerprint identifies the files below dir (without .git) by path,
// mode, size and change time.
func fingerprint(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", dir)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" && filepath.Dir(p) == dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var ctime int64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ctime = st.Ctim.Nano()
		}
		fmt.Fprintf(h, "%s %o %d %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano(), ctime)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var (
	sriHash  = regexp.MustCompile(`^sha256-[A-Za-z0-9+/]{43}=$`)
	gitRev   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	ghName   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	storeOut = regexp.MustCompile(`^"(/nix/store/[0-9a-z]{32}-[^"/]+)"\n?$`)
)

// fetch fetches one locked input (or, type "self", copies the flake's own
// source) and returns its store path. Only what a lock pins is fetched:
// a narHash (Nix checks it) and, for git, a rev.
func (f *FlakeFetcher) fetch(ctx context.Context, locked map[string]any, pinned bool) (string, error) {
	str := func(k string) string { s, _ := locked[k].(string); return s }
	typ := str("type")
	args := map[string]string{"type": typ}
	switch typ {
	case "self":
		args["path"] = str("path")
	case "path":
		p := filepath.Clean(str("path"))
		if !f.isLocal(p) {
			return "", fmt.Errorf("%w: path input %q is outside the directories local inputs may come from (eval.flake_local_inputs)", ErrFlake, str("path"))
		}
		args["path"] = p
	case "git":
		u := str("url")
		if rest, ok := strings.CutPrefix(u, "file://"); ok || strings.HasPrefix(u, "/") {
			if !ok {
				rest = u
			}
			if !f.isLocal(filepath.Clean(rest)) {
				return "", fmt.Errorf("%w: git input %q is outside the directories local inputs may come from (eval.flake_local_inputs)", ErrFlake, u)
			}
		} else if !strings.HasPrefix(u, "https://") {
			return "", fmt.Errorf("%w: git input %q: only https:// and local repositories are fetched", ErrFlake, u)
		}
		if !gitRev.MatchString(str("rev")) {
			return "", fmt.Errorf("%w: git input %q is not locked to a revision", ErrFlake, u)
		}
		args["url"], args["rev"] = u, str("rev")
		if ref := str("ref"); ref != "" {
			args["ref"] = ref
		}
		if b, _ := locked["submodules"].(bool); b {
			args["submodules"] = "1"
		}
	case "github":
		owner, repo, rev := str("owner"), str("repo"), str("rev")
		if !ghName.MatchString(owner) || !ghName.MatchString(repo) || !gitRev.MatchString(rev) {
			return "", fmt.Errorf("%w: github input %s/%s is not locked to a revision", ErrFlake, owner, repo)
		}
		args["url"] = fmt.Sprintf("https://github.com/%s/%s/archive/%s.tar.gz", owner, repo, rev)
	case "tarball":
		if !strings.HasPrefix(str("url"), "https://") {
			return "", fmt.Errorf("%w: tarball input %q: only https:// is fetched", ErrFlake, str("url"))
		}
		args["url"] = str("url")
	default:
		return "", fmt.Errorf("%w: inputs of type %q are not supported (path, git, github and tarball are)", ErrFlake, typ)
	}
	if pinned {
		if !sriHash.MatchString(str("narHash")) {
			return "", fmt.Errorf("%w: %s input has no narHash in flake.lock", ErrFlake, typ)
		}
		args["narHash"] = str("narHash")
	}
	key, _ := json.Marshal(args)
	if typ != "self" {
		f.mu.Lock()
		p, ok := f.fetched[string(key)]
		f.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	cmdArgs := []string{"--eval", "--read-write-mode", "--option", "experimental-features", "", f.expr}
	for _, k := range sortedKeys(args) {
		cmdArgs = append(cmdArgs, "--argstr", k, args[k])
	}
	res, err := f.run.Run(ctx, Cmd{Program: "nix-instantiate", Args: cmdArgs, Limits: Limits{Timeout: 30 * time.Minute, MaxStdout: 1 << 16}})
	if err != nil {
		var nerr *Error
		if errors.As(err, &nerr) && nerr.MachineFault() == "" {
			return "", fmt.Errorf("%w: fetch %s input: %s", ErrFlake, typ, nerr.Message)
		}
		return "", err
	}
	m := storeOut.FindSubmatch(res.Stdout)
	if m == nil {
		return "", fmt.Errorf("fetch %s input: unexpected output %q", typ, res.Stdout)
	}
	p := string(m[1])
	if typ != "self" {
		f.mu.Lock()
		f.fetched[string(key)] = p
		f.mu.Unlock()
	}
	return p, nil
}

func (f *FlakeFetcher) isLocal(p string) bool {
	if !filepath.IsAbs(p) {
		return false
	}
	for _, dir := range f.local {
		if rel, err := filepath.Rel(filepath.Clean(dir), p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}
