// Package checkout keeps a bare git mirror per repository and makes the
// commits basinix evaluates: resolved refs, the PR head merged onto its base,
// and worktrees of them. It stands alone because the CLI, the GitHub App and
// bisection all need it and none of them owns git.
package checkout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/internal/childenv"
)

// ErrUnknownRef is returned when a ref or commit is not in the repository.
var ErrUnknownRef = errors.New("unknown ref")

// ErrNoRepository is returned when the repository cannot be fetched.
var ErrNoRepository = errors.New("repository not found")

// Workspace holds the mirrors under one directory.
type Workspace struct {
	dir string
	log zerolog.Logger
	// Auth, when set, returns extra git configuration for fetching url
	// (see Mirror.Auth). Set it before the first fetch.
	Auth func(ctx context.Context, url string) ([]string, error)
	// Keep is how many checkouts each mirror keeps for reuse (default
	// 4); more are made when more are leased at once, and removed when
	// released.
	Keep int
	// Seeds name, by repository URL (as NormalizeURL gives it), a local
	// clone a new mirror of it is seeded from (see Mirror.seed): basinix
	// pr in a nixpkgs checkout fetches only what the checkout lacks. Set
	// it before the first fetch.
	Seeds map[string]string

	mu      sync.Mutex
	mirrors map[string]*Mirror // by mirror directory

	// checkoutWall and checkoutSys add up the wall and system time the
	// checkouts' git processes took, in nanoseconds (see CheckoutTime).
	checkoutWall, checkoutSys atomic.Int64
}

// CheckoutTime returns the wall and system time the workspace's checkouts
// (writing trees, moving and cleaning them) have taken so far.
func (w *Workspace) CheckoutTime() (wall, sys time.Duration) {
	return time.Duration(w.checkoutWall.Load()), time.Duration(w.checkoutSys.Load())
}

// New returns a Workspace keeping its mirrors and worktrees below dir.
func New(dir string, log zerolog.Logger) *Workspace {
	return &Workspace{dir: dir, log: log, mirrors: map[string]*Mirror{}}
}

// Mirror is a bare mirror of one repository. Its methods are safe for
// concurrent use: git operations that change the mirror hold mu.
type Mirror struct {
	URL string // what git fetches from: an absolute path, file:// or https:// URL
	Dir string // the bare repository

	ws *Workspace
	mu sync.Mutex // held by git operations that change the mirror
	// Auth, when set, returns extra git configuration for fetches
	// ("http.extraHeader=Authorization: Basic ..."); the workspace's Auth
	// is used when it is nil.
	Auth func(ctx context.Context) ([]string, error)
}

// NormalizeURL turns a local path into an absolute path and leaves file://,
// http(s):// and ssh URLs as they are. Anything else is an error, so that no
// git transport helper ("ext::") is ever reached from user input.
func NormalizeURL(repo string) (string, error) {
	switch {
	case repo == "":
		return "", fmt.Errorf("repository: empty")
	case strings.HasPrefix(repo, "file://"), strings.HasPrefix(repo, "https://"),
		strings.HasPrefix(repo, "http://"), strings.HasPrefix(repo, "ssh://"):
		return repo, nil
	case strings.Contains(repo, "::"), strings.HasPrefix(repo, "-"):
		return "", fmt.Errorf("repository %q: unsupported URL", repo)
	}
	abs, err := filepath.Abs(repo)
	if err != nil {
		return "", fmt.Errorf("repository %q: %w", repo, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("repository %q: %w", repo, ErrNoRepository)
	}
	return abs, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Mirror returns the mirror of repo (a path or URL), creating the bare
// repository on first use. It does not fetch.
func (w *Workspace) Mirror(repo string) (*Mirror, error) {
	url, err := NormalizeURL(repo)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(url))
	base := unsafeName.ReplaceAllString(strings.TrimSuffix(filepath.Base(url), ".git"), "_")
	dir := filepath.Join(w.dir, "mirrors", hex.EncodeToString(sum[:6])+"-"+base+".git")

	w.mu.Lock()
	defer w.mu.Unlock()
	if m, ok := w.mirrors[dir]; ok {
		return m, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, fmt.Errorf("mirror %s: %w", url, err)
		}
		if _, err := runGit(context.Background(), "", "init", "--quiet", "--bare", dir); err != nil {
			return nil, fmt.Errorf("mirror %s: %w", url, err)
		}
	}
	m := &Mirror{URL: url, Dir: dir, ws: w}
	w.mirrors[dir] = m
	return m, nil
}

// Fetch brings the mirror up to date: branches, tags and GitHub's pull refs.
func (m *Mirror) Fetch(ctx context.Context) error {
	return m.FetchRefs(ctx, nil)
}

// FetchRefs fetches refspecs only ("+refs/pull/123/head:refs/pull/123/head",
// ...), or, with none, what Fetch fetches: a nixpkgs mirror has hundreds
// of thousands of pull refs, which a review of one PR need not negotiate.
func (m *Mirror) FetchRefs(ctx context.Context, refspecs []string) error {
	args := []string{"fetch", "--quiet", "--no-tags"}
	if len(refspecs) == 0 {
		args = append(args, "--prune") // only a whole fetch knows what is gone
		refspecs = []string{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+refs/pull/*:refs/pull/*"}
	}
	for _, r := range refspecs {
		if !refspecRe.MatchString(r) {
			return fmt.Errorf("fetch %s: refspec %q", m.URL, r)
		}
	}
	var cfg []string
	var err error
	switch {
	case m.Auth != nil:
		cfg, err = m.Auth(ctx)
	case m.ws.Auth != nil:
		cfg, err = m.ws.Auth(ctx, m.URL)
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", m.URL, err)
	}
	// Through the environment, not -c: arguments are visible to every
	// user of the machine, and tokens must not be.
	env := []string{"GIT_CONFIG_COUNT=" + strconv.Itoa(len(cfg))}
	for i, c := range cfg {
		k, v, _ := strings.Cut(c, "=")
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, k), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, v))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seed(ctx)
	_, err = runGitEnv(ctx, m.Dir, env, append(append(args, "--end-of-options", m.URL), refspecs...)...)
	if err != nil {
		if strings.Contains(err.Error(), "does not appear to be a git repository") ||
			strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("fetch %s: %w", m.URL, ErrNoRepository)
		}
		return fmt.Errorf("fetch %s: %w", m.URL, err)
	}
	m.ws.log.Debug().Str("repo", m.URL).Msg("mirror fetched")
	return nil
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// refspecRe is the refspecs FetchRefs takes: forced, from refs/ to refs/,
// no option, no space.
var refspecRe = regexp.MustCompile(`^\+refs/[A-Za-z0-9._/*-]+:refs/[A-Za-z0-9._/*-]+$`)

// Resolve returns the commit a ref names: a full SHA, a branch, a tag or a
// full ref such as refs/pull/1/head.
func (m *Mirror) Resolve(ctx context.Context, ref string) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return "", fmt.Errorf("resolve %q: %w", ref, ErrUnknownRef)
	}
	candidates := []string{"refs/heads/" + ref, "refs/tags/" + ref, ref}
	if shaRe.MatchString(ref) {
		candidates = []string{ref}
	}
	for _, c := range candidates {
		out, err := runGit(ctx, m.Dir, "rev-parse", "--verify", "--quiet", "--end-of-options", c+"^{commit}")
		if err == nil {
			return strings.TrimSpace(out), nil
		}
	}
	return "", fmt.Errorf("resolve %q in %s: %w", ref, m.URL, ErrUnknownRef)
}

// Commit is a commit and its title.
type Commit struct {
	SHA, Title string
}

// Commits returns the commits on the first-parent line from (excluded) to
// to (included), oldest first; both must be commits (see Resolve).
func (m *Mirror) Commits(ctx context.Context, from, to string) ([]Commit, error) {
	for _, c := range []string{from, to} {
		if !shaRe.MatchString(c) {
			return nil, fmt.Errorf("commits %s..%s: %q is not a commit: %w", from, to, c, ErrUnknownRef)
		}
	}
	out, err := runGit(ctx, m.Dir, "log", "--first-parent", "--reverse", "--format=%H %s", from+".."+to)
	if err != nil {
		return nil, fmt.Errorf("commits %s..%s: %w", from, to, err)
	}
	var cs []Commit
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		sha, title, _ := strings.Cut(line, " ")
		cs = append(cs, Commit{SHA: sha, Title: title})
	}
	return cs, nil
}

// Root returns the first commit of commit's first-parent line.
func (m *Mirror) Root(ctx context.Context, commit string) (string, error) {
	out, err := runGit(ctx, m.Dir, "rev-list", "--first-parent", "--max-parents=0", commit)
	if err != nil {
		return "", fmt.Errorf("root of %s: %w", commit, err)
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", fmt.Errorf("root of %s: none", commit)
	}
	return f[len(f)-1], nil
}

// Title returns a commit's title.
func (m *Mirror) Title(ctx context.Context, commit string) string {
	if !shaRe.MatchString(commit) {
		return ""
	}
	out, err := runGit(ctx, m.Dir, "log", "-1", "--format=%s", commit)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// HasFile says whether commit has a file (or a link) at path.
func (m *Mirror) HasFile(ctx context.Context, commit, path string) bool {
	_, err := runGit(ctx, m.Dir, "cat-file", "-e", commit+":"+path)
	return err == nil
}

// ReadFile returns the content of the regular file at path in commit, at
// most max bytes of it: an error wrapping os.ErrNotExist when there is
// none, ErrNotRegular for a link or a directory there, ErrTooLarge past
// max.
func (m *Mirror) ReadFile(ctx context.Context, commit, path string, max int64) ([]byte, error) {
	out, err := runGit(ctx, m.Dir, "ls-tree", "-l", commit, "--", path)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	// "100644 blob SHA SIZE\tPATH"
	f := strings.Fields(strings.SplitN(out, "\t", 2)[0])
	switch {
	case len(f) == 0:
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, os.ErrNotExist)
	case len(f) != 4 || f[1] != "blob" || (f[0] != "100644" && f[0] != "100755"):
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, ErrNotRegular)
	}
	if size, err := strconv.ParseInt(f[3], 10, 64); err != nil || size > max {
		return nil, fmt.Errorf("read %s at %s: %w (%d bytes at most)", path, commit, ErrTooLarge, max)
	}
	b, err := runGit(ctx, m.Dir, "cat-file", "blob", f[2])
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	return []byte(b), nil
}

// ErrNotRegular marks a path that is not a regular file; ErrTooLarge one
// larger than ReadFile was asked to read.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("too large")
)

// Merge is the commit a PR is evaluated at.
type Merge struct {
	Base   string // the commit the PR is compared against
	Commit string // head merged onto Base, or the head itself on conflict
	// Conflict is true when head does not merge cleanly onto the base tip;
	// then Base is the merge-base and Commit the head.
	Conflict bool
	// Files lists the conflicting paths when Conflict is true.
	Files []string
}

// Merge merges head onto base without a worktree. The merge commit has a
// fixed identity and the head's commit date, so the same base and head give
// the same commit, and evaluations of it are cached across runs.
func (m *Mirror) Merge(ctx context.Context, base, head string) (Merge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok, _ := isAncestor(ctx, m.Dir, head, base); ok {
		return Merge{Base: base, Commit: base}, nil
	}
	if ok, _ := isAncestor(ctx, m.Dir, base, head); ok {
		return Merge{Base: base, Commit: head}, nil
	}
	out, err := runGit(ctx, m.Dir, "merge-tree", "--write-tree", "--name-only", "--no-messages", base, head)
	var exitErr *gitError
	if errors.As(err, &exitErr) && exitErr.code == 1 {
		mb, err := runGit(ctx, m.Dir, "merge-base", base, head)
		if err != nil {
			return Merge{}, fmt.Errorf("merge-base %s %s: %w", base, head, err)
		}
		lines := strings.Split(strings.TrimSpace(exitErr.stdout), "\n")
		return Merge{Base: strings.TrimSpace(mb), Commit: head, Conflict: true, Files: lines[1:]}, nil
	}
	if err != nil {
		return Merge{}, fmt.Errorf("merge %s onto %s: %w", head, base, err)
	}
	tree := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	date, err := runGit(ctx, m.Dir, "log", "-1", "--format=%cI", head)
	if err != nil {
		return Merge{}, fmt.Errorf("merge %s onto %s: %w", head, base, err)
	}
	date = strings.TrimSpace(date)
	env := []string{
		"GIT_AUTHOR_NAME=basinix", "GIT_AUTHOR_EMAIL=basinix@localhost", "GIT_AUTHOR_DATE=" + date,
		"GIT_COMMITTER_NAME=basinix", "GIT_COMMITTER_EMAIL=basinix@localhost", "GIT_COMMITTER_DATE=" + date,
	}
	commit, err := runGitEnv(ctx, m.Dir, env, "commit-tree", tree, "-p", base, "-p", head,
		"-m", fmt.Sprintf("Merge %s into %s", head, base))
	if err != nil {
		return Merge{}, fmt.Errorf("merge %s onto %s: %w", head, base, err)
	}
	commit = strings.TrimSpace(commit)
	// Keep the merge reachable so gc does not drop it while it is used.
	if _, err := runGit(ctx, m.Dir, "update-ref", "refs/basinix/merges/"+commit, commit); err != nil {
		return Merge{}, fmt.Errorf("merge %s onto %s: %w", head, base, err)
	}
	return Merge{Base: base, Commit: commit}, nil
}

func isAncestor(ctx context.Context, dir, a, b string) (bool, error) {
	_, err := runGit(ctx, dir, "merge-base", "--is-ancestor", a, b)
	var exitErr *gitError
	if errors.As(err, &exitErr) && exitErr.code == 1 {
		return false, nil
	}
	return err == nil, err
}

// seed makes a new mirror of a local repository by cloning it with hard
// links to its objects: the fetch that follows then finds every object
// there and transfers nothing, where a fetch into an empty mirror has git
// pack the whole history (0.2 s for the 20k sample, minutes for nixpkgs).
// Anything that goes wrong leaves the empty mirror for the fetch to fill.
// The caller holds mu.
func (m *Mirror) seed(ctx context.Context) {
	src := m.URL
	if !filepath.IsAbs(src) {
		if src = m.ws.Seeds[m.URL]; src == "" {
			return
		}
	}
	if refs, err := runGit(ctx, m.Dir, "for-each-ref", "--count=1"); err != nil || refs != "" {
		return
	}
	tmp := m.Dir + ".seed"
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if _, err := runGit(ctx, "", "clone", "--quiet", "--mirror", "--local", "--", src, tmp); err != nil {
		m.ws.log.Debug().Err(err).Str("repo", src).Msg("clone with hard links failed: fetching")
		return
	}
	old := m.Dir + ".empty"
	if err := os.Rename(m.Dir, old); err != nil {
		return
	}
	if err := os.Rename(tmp, m.Dir); err != nil {
		os.Rename(old, m.Dir)
		return
	}
	os.RemoveAll(old)
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

type gitError struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (e *gitError) Error() string {
	msg := strings.TrimSpace(e.stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit code %d", e.code)
	}
	return fmt.Sprintf("git %s: %s", e.args[0], msg)
}

// runGit runs git (see runGitEnv) and returns its output.
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	return runGitEnv(ctx, dir, nil, args...)
}

// runGitEnv runs git with arguments as they are (never a shell), in dir when
// it is not empty, with only the transports basinix needs allowed.
func runGitEnv(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	out, _, err := runGitProc(ctx, dir, env, args...)
	return out, err
}

// runGitProc is runGitEnv that also returns the system time git took.
func runGitProc(ctx context.Context, dir string, env []string, args ...string) (string, time.Duration, error) {
	return runGitInput(ctx, dir, env, nil, args...)
}

// runGitInput is runGitProc with stdin (nil for none).
func runGitInput(ctx context.Context, dir string, env []string, stdin []byte, args ...string) (string, time.Duration, error) {
	full := args
	if dir != "" {
		full = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = childenv.Environ(
		"GIT_ALLOW_PROTOCOL=file:https:http:ssh",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
		// The error names git's command, not its leading options.
		name := args
		for len(name) > 1 && strings.HasPrefix(name[0], "-") {
			if name[0] == "-c" && len(name) > 2 {
				name = name[1:]
			}
			name = name[1:]
		}
		return "", 0, &gitError{args: name, code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	return stdout.String(), cmd.ProcessState.SystemTime(), nil
}
