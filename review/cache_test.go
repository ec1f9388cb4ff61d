package review

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// cacheKey makes a signing key pair: the secret key's file and the
// public key.
func cacheKey(t *testing.T) (secretFile, public string) {
	t.Helper()
	dir := t.TempDir()
	secretFile, pubFile := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	mustOutput(t, "nix-store", "--generate-binary-cache-key", "basinix-test-1", secretFile, pubFile)
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	return secretFile, strings.TrimSpace(string(b))
}

// cachedRepo is a repository whose head changes app (on libdep): a
// review builds both sides.
func cachedRepo(t *testing.T) (dir, base, head string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "repo")
	nonce := filepath.Base(t.TempDir())
	base = testenv.Commit(t, dir, map[string]string{"default.nix": outputsSet(nonce, "1.0", "echo one > $out/bin/app")}, "base")
	head = testenv.Commit(t, dir, map[string]string{"default.nix": outputsSet(nonce, "1.1", "echo two > $out/bin/app")}, "head")
	return dir, base, head
}

// waitUploaded waits until every one of paths is recorded as uploaded.
func waitUploaded(t *testing.T, st *store.Store, paths ...string) {
	t.Helper()
	var rows []store.CachedPath
	testenv.Eventually(t, 60*time.Second, func() bool {
		var err error
		if rows, err = st.CachedPaths(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if !slices.ContainsFunc(rows, func(c store.CachedPath) bool { return c.Path == p && c.State == store.CacheUploaded }) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("not all of %v uploaded: %+v", paths, rows) })
}

func appOutputs(t *testing.T, rep *report.Report) (head, base string) {
	t.Helper()
	e := rep.Systems["x86_64-linux"].Attrs["app"]
	if e == nil || e.Head != build.Success || e.Base != build.Success {
		t.Fatalf("app: %+v", e)
	}
	h, err := outputsOf(e.DrvPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := outputsOf(e.BaseDrvPath)
	if err != nil {
		t.Fatal(err)
	}
	return h["out"], b["out"]
}

// Successful outputs are uploaded, signed, with their closure, to a
// file:// cache; served over HTTP on 127.0.0.1 it is substituted by a
// second store; and a reviewer on a store of its own gets the outputs
// from the cache instead of building them (it could not build there).
func TestCacheUploadAndSubstitute(t *testing.T) {
	testenv.RequireNix(t)
	secret, public := cacheKey(t)
	cacheDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Cache = CacheConfig{URL: "file://" + cacheDir, SecretKeyFile: secret, RetryMin: 100 * time.Millisecond, Batch: 64, BranchKeep: time.Hour, PRKeep: time.Hour}
	rv := runningReviewer(t, cfg, testenv.Logger(t))
	repo, base, head := cachedRepo(t)
	rep := review(t, rv, Request{Repo: repo, Base: base, Head: head, Build: true})
	headOut, baseOut := appOutputs(t, rep)
	libdep := strings.Fields(string(mustOutput(t, "nix-store", "--query", "--references", headOut)))
	if len(libdep) != 1 {
		t.Fatalf("app's references: %v", libdep)
	}
	waitUploaded(t, rv.Store(), headOut, baseOut, libdep[0])

	narinfo, err := os.ReadFile(filepath.Join(cacheDir, filepath.Base(headOut)[:32]+".narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(narinfo), "\nSig: basinix-test-1:") {
		t.Errorf("the upload is not signed:\n%s", narinfo)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(cacheDir)))
	defer srv.Close()
	second := "local?root=" + filepath.Join(t.TempDir(), "second")
	mustOutput(t, "nix", "copy", "--option", "trusted-public-keys", public, "--from", srv.URL, "--to", second, headOut)
	if err := exec.Command("nix-store", "--option", "store", second, "--check-validity", headOut, libdep[0]).Run(); err != nil {
		t.Errorf("the second store lacks what it substituted: %v", err)
	}

	// A reviewer whose store cannot build gets every output from the cache.
	cfg2 := cfg
	cfg2.DataDir = t.TempDir()
	cfg2.Nix.Options = map[string]string{"store": "local?root=" + filepath.Join(t.TempDir(), "third")}
	rv2 := runningReviewer(t, cfg2, testenv.Logger(t))
	rep2 := review(t, rv2, Request{Repo: repo, Base: base, Head: head, Build: true})
	if h, b := appOutputs(t, rep2); h != headOut || b != baseOut {
		t.Errorf("outputs %s %s, want %s %s", h, b, headOut, baseOut)
	}
}

// putCache is an HTTP binary cache Nix uploads to with PUT, which can be
// down (503 to everything).
type putCache struct {
	dir  string
	down atomic.Bool
	puts atomic.Int32
}

func (c *putCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p := filepath.Join(c.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
	if !strings.HasPrefix(p, c.dir+string(filepath.Separator)) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodPut {
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, _ := io.ReadAll(r.Body)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		c.puts.Add(1)
		return
	}
	http.ServeFile(w, r, p)
}

// A cache that is down does not hold the verdicts back; what failed to
// go up is uploaded once the cache is back.
func TestCacheDownIsCaughtUpLater(t *testing.T) {
	testenv.RequireNix(t)
	secret, _ := cacheKey(t)
	cache := &putCache{dir: t.TempDir()}
	cache.down.Store(true)
	srv := httptest.NewServer(cache)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Cache = CacheConfig{URL: srv.URL, SecretKeyFile: secret, RetryMin: 200 * time.Millisecond, Batch: 64, BranchKeep: time.Hour, PRKeep: time.Hour}
	rv := runningReviewer(t, cfg, testenv.Logger(t))
	repo, base, head := cachedRepo(t)
	rep := review(t, rv, Request{Repo: repo, Base: base, Head: head, Build: true})
	headOut, _ := appOutputs(t, rep) // the verdicts came while the cache is down

	var rows []store.CachedPath
	testenv.Eventually(t, 30*time.Second, func() bool {
		rows, _ = rv.Store().CachedPaths(context.Background())
		i := slices.IndexFunc(rows, func(c store.CachedPath) bool { return c.Path == headOut })
		return i >= 0 && rows[i].Attempts > 0
	}, func() string { return fmt.Sprintf("no failed attempt recorded: %+v", rows) })
	if i := slices.IndexFunc(rows, func(c store.CachedPath) bool { return c.Path == headOut }); rows[i].State != store.CacheQueued || !strings.Contains(rows[i].Error, "503") {
		t.Errorf("while down: %+v", rows[i])
	}
	cache.down.Store(false)
	waitUploaded(t, rv.Store(), headOut)
	if _, err := os.Stat(filepath.Join(cache.dir, filepath.Base(headOut)[:32]+".narinfo")); err != nil {
		t.Errorf("caught up, yet: %v", err)
	}
}

// basinix gc removes from a file:// cache the paths whose lease ended,
// narinfo and NAR, except those a live path still needs; a dry run only
// tells.
func TestCacheExpiry(t *testing.T) {
	testenv.RequireNix(t)
	cacheDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Cache = CacheConfig{URL: "file://" + cacheDir, RetryMin: time.Second, Batch: 64, BranchKeep: time.Hour, PRKeep: time.Hour}
	rv := runningReviewer(t, cfg, testenv.Logger(t))
	ctx := context.Background()

	nonce := filepath.Base(t.TempDir())
	file := filepath.Join(t.TempDir(), "set.nix")
	os.WriteFile(file, []byte(fmt.Sprintf(`let mk = name: script: derivation { inherit name; system = builtins.currentSystem; nonce = %q; builder = "/bin/sh"; args = [ "-c" script ]; };
  dep = mk "dep-1.0" "echo dep > $out";
in {
  inherit dep;
  expired = mk "expired-1.0" "echo expired ${dep} > $out";
  live = mk "live-1.0" "echo ${dep} > $out";
  twin = mk "twin-1.0" "echo ${dep} > $out"; # live's NAR, byte for byte
  alone = mk "alone-1.0" "echo alone > $out";
}`, nonce)), 0o644)
	out := map[string]string{}
	for _, name := range []string{"dep", "expired", "live", "twin", "alone"} {
		out[name] = strings.TrimSpace(string(mustOutput(t, "nix-build", "--no-out-link", file, "-A", name)))
	}
	if err := rv.nix.CopyTo(ctx, cfg.Cache.uploadURL(), []string{out["expired"], out["live"], out["twin"], out["alone"]}); err != nil {
		t.Fatal(err)
	}
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if err := rv.Store().PutUploaded(ctx, []string{out["dep"], out["expired"], out["twin"], out["alone"]}, past); err != nil {
		t.Fatal(err)
	}
	if err := rv.Store().PutUploaded(ctx, []string{out["live"]}, future); err != nil {
		t.Fatal(err)
	}
	inCache := func(name string) bool {
		_, err := os.Stat(filepath.Join(cacheDir, filepath.Base(out[name])[:32]+".narinfo"))
		return err == nil
	}
	nars := func() int {
		n, _ := filepath.Glob(filepath.Join(cacheDir, "nar", "*"))
		return len(n)
	}
	if n := nars(); n != 4 {
		t.Fatalf("%d NARs uploaded, want 4", n)
	}
	rep, err := rv.GC(ctx, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{out["alone"], out["expired"], out["twin"]}
	slices.Sort(want)
	if c := rep.Cache; c == nil || !slices.Equal(sorted(c.Expired), want) || c.Needed != 1 || c.Live != 1 || c.Removed {
		t.Fatalf("dry run: %+v", rep.Cache)
	}
	if !inCache("expired") || !inCache("alone") {
		t.Fatal("a dry run removed from the cache")
	}
	if rep, err = rv.GC(ctx, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, keep := range map[string]bool{"expired": false, "alone": false, "twin": false, "live": true, "dep": true} {
		if inCache(name) != keep {
			t.Errorf("%s in the cache: %v, want %v", name, !keep, keep)
		}
	}
	if n := nars(); n != 2 {
		t.Errorf("%d NARs left, want 2 (live's, which twin's was too, and dep's)", n)
	}
	rows, _ := rv.Store().CachedPaths(ctx)
	if len(rows) != 2 {
		t.Errorf("records left: %+v", rows)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
