package review

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/store"
)

// CacheConfig names the binary cache basinix uploads successful outputs
// to, and how long they stay there.
type CacheConfig struct {
	// URL is a Nix store URL Nix can copy to: file:///srv/cache,
	// s3://bucket?region=…, https://cache.example (PUT). Empty: no cache.
	URL string `yaml:"url"`
	// SecretKeyFile signs what is uploaded (nix-store --generate-binary-cache-key).
	SecretKeyFile string `yaml:"secret_key_file"`
	// SubstituteURL is where builders and reviewers substitute from
	// (default: URL), trusting the key's public half.
	SubstituteURL string `yaml:"substitute_url"`
	// BranchKeep: a branch's outputs stay this long after a newer
	// evaluation superseded them; PRKeep: a PR's, after it is closed.
	// An archived branch's (gc.branches: archive) stay forever.
	BranchKeep time.Duration `yaml:"branch_keep"`
	PRKeep     time.Duration `yaml:"pr_keep"`
	// RetryMin is the wait after a first failed upload; it doubles, to an hour.
	RetryMin time.Duration `yaml:"retry_min"`
	// Batch is how many paths one `nix copy` uploads.
	Batch int `yaml:"batch"`
}

func (c CacheConfig) validate() error {
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("config: cache.url %q is not a store URL (file://, s3://, https://)", c.URL)
	}
	if c.BranchKeep < 0 || c.PRKeep < 0 || c.RetryMin < 0 || c.Batch < 0 {
		return fmt.Errorf("config: cache limits must not be negative")
	}
	if c.SecretKeyFile != "" {
		if _, err := publicKey(c.SecretKeyFile); err != nil {
			return fmt.Errorf("config: cache.secret_key_file: %w", err)
		}
	}
	return nil
}

// publicKey reads a Nix secret key file ("name:base64 of the 64-byte
// ed25519 key") and returns its public key as Nix writes it.
func publicKey(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	name, key, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	raw, err := base64.StdEncoding.DecodeString(key)
	if !ok || name == "" || err != nil || len(raw) != ed25519.PrivateKeySize {
		return "", errors.New("not a Nix secret key (name:base64)")
	}
	return name + ":" + base64.StdEncoding.EncodeToString(ed25519.PrivateKey(raw).Public().(ed25519.PublicKey)), nil
}

// cacheOptions are the Nix options that make builders substitute from
// the cache.
func cacheOptions(c CacheConfig) (map[string]string, error) {
	if c.URL == "" {
		return nil, nil
	}
	opts := map[string]string{"extra-substituters": cmp.Or(c.SubstituteURL, c.URL)}
	if c.SecretKeyFile != "" {
		pub, err := publicKey(c.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cache.secret_key_file: %w", err)
		}
		opts["extra-trusted-public-keys"] = pub
	}
	return opts, nil
}

// uploadURL is the cache's URL with the signing key.
func (c CacheConfig) uploadURL() string {
	if c.SecretKeyFile == "" {
		return c.URL
	}
	sep := "?"
	if strings.Contains(c.URL, "?") {
		sep = "&"
	}
	return c.URL + sep + "secret-key=" + url.QueryEscape(c.SecretKeyFile)
}

// queueUploads queues the outputs of successful builds for the cache,
// leased for as long as either reason would keep them; the next lease
// refresh says which.
func (r *Reviewer) queueUploads(ctx context.Context, drvs []string) {
	c := r.cfg.Cache
	if c.URL == "" || len(drvs) == 0 {
		return
	}
	outs := outputPaths(drvs)
	if err := r.store.QueueUploads(ctx, outs, time.Now().Add(max(c.BranchKeep, c.PRKeep))); err != nil {
		r.log.Warn().Err(err).Int("paths", len(outs)).Msg("queueing uploads")
		return
	}
	select {
	case r.uploadKick <- struct{}{}:
	default:
	}
}

// runUploads uploads the queued paths until ctx ends: a batch at a time,
// each with its closure, retried later when the cache fails. Nothing
// waits for it: verdicts never do.
func (r *Reviewer) runUploads(ctx context.Context) {
	c := r.cfg.Cache
	if c.URL == "" {
		return
	}
	for {
		batch, err := r.store.TakeUploads(ctx, max(c.Batch, 1), time.Now())
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("queued uploads")
		}
		if len(batch) > 0 {
			r.upload(ctx, batch)
			continue
		}
		wait := time.Minute
		if next, err := r.store.NextUploadAt(ctx); err == nil && !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.uploadKick:
		case <-time.After(wait):
		}
	}
}

func (r *Reviewer) upload(ctx context.Context, batch []store.CachedPath) {
	c := r.cfg.Cache
	paths := make([]string, len(batch))
	var lease time.Time
	forever := false
	for i, b := range batch {
		paths[i] = b.Path
		forever = forever || b.LiveUntil.IsZero()
		if b.LiveUntil.After(lease) {
			lease = b.LiveUntil
		}
	}
	if forever {
		lease = time.Time{}
	}
	// Paths collected meanwhile are not uploaded (and not retried).
	gone, err := r.gone(ctx, paths)
	valid := without(paths, gone)
	if err == nil && len(gone) > 0 {
		err = r.store.ForgetCached(ctx, slices.Collect(maps.Keys(gone)))
	}
	var closure map[string]nix.PathInfo
	if err == nil && len(valid) > 0 {
		if err = r.nix.CopyTo(ctx, c.uploadURL(), valid); err == nil {
			closure, err = r.nix.PathInfos(ctx, valid, true)
		}
	}
	if err == nil {
		err = r.store.PutUploaded(ctx, slices.Collect(maps.Keys(closure)), lease)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		wait := c.RetryMin << min(batch[0].Attempts, 20)
		wait = min(max(wait, time.Second), time.Hour)
		r.log.Warn().Err(err).Int("paths", len(paths)).Dur("retry_in", wait).Msg("upload to the cache failed")
		if err := r.store.UploadFailed(context.WithoutCancel(ctx), paths, err.Error(), time.Now().Add(wait)); err != nil {
			r.log.Warn().Err(err).Msg("recording a failed upload")
		}
		return
	}
	r.log.Info().Int("paths", len(valid)).Int("closure", len(closure)).Msg("uploaded to the cache")
}

// refreshLeases extends the leases of what is still needed: a branch's
// latest evaluation (archived branches: everything built for them), an
// open PR, a PR closed less than cache.pr_keep ago.
func (r *Reviewer) refreshLeases(ctx context.Context, now time.Time) error {
	c := r.cfg.Cache
	branches, err := r.store.Branches(ctx)
	if err != nil {
		return err
	}
	for _, b := range branches {
		n, until, why := 1, now.Add(c.BranchKeep), "branch "+b.Repo+" "+b.Branch
		if r.cfg.GC.Policy(b.Repo, b.Branch) == GCArchive {
			n, until, why = 1<<30, time.Time{}, "archive "+b.Repo+" "+b.Branch
		}
		drvs, err := r.store.BranchDrvs(ctx, b.Repo, b.Branch, n)
		if err != nil {
			return err
		}
		if err := r.extendLeases(ctx, drvs, until, why); err != nil {
			return err
		}
	}
	prs, err := r.store.PRDrvs(ctx, now.Add(-c.PRKeep))
	if err != nil {
		return err
	}
	for _, pr := range prs {
		until := now.Add(c.PRKeep)
		if !pr.Closed.IsZero() {
			until = pr.Closed.Add(c.PRKeep)
		}
		if err := r.extendLeases(ctx, pr.Drvs, until, fmt.Sprintf("pr %s#%d", pr.Repo, pr.PR)); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reviewer) extendLeases(ctx context.Context, drvs []string, until time.Time, why string) error {
	outs := outputPaths(drvs)
	return r.store.ExtendLeases(ctx, outs, until, why)
}

// CacheReport is what `basinix gc` did to the binary cache.
type CacheReport struct {
	URL    string `json:"url"`
	Live   int    `json:"live"`
	Queued int    `json:"queued"`
	// Expired are the paths whose lease ended: removed from a file://
	// cache, listed for the others. Needed are expired paths a live one
	// still needs (in its closure): kept.
	Expired []string `json:"expired,omitempty"`
	Removed bool     `json:"removed"`
	Needed  int      `json:"needed"`
}

// expireCache refreshes the leases and removes from a file:// cache the
// paths whose lease ended that no live path needs (their .narinfo, and
// their NAR unless another .narinfo names it).
func (r *Reviewer) expireCache(ctx context.Context, now time.Time, dryRun bool) (*CacheReport, error) {
	c := r.cfg.Cache
	if !dryRun {
		if err := r.refreshLeases(ctx, now); err != nil {
			return nil, fmt.Errorf("cache leases: %w", err)
		}
	}
	rows, err := r.store.CachedPaths(ctx)
	if err != nil {
		return nil, err
	}
	rep := &CacheReport{URL: c.URL}
	var live, expired []string
	for _, p := range rows {
		switch {
		case p.State == store.CacheQueued:
			rep.Queued++
		case p.Expired(now):
			expired = append(expired, p.Path)
		default:
			live = append(live, p.Path)
		}
	}
	rep.Live = len(live)
	dir, isFile := strings.CutPrefix(c.URL, "file://")
	if i := strings.IndexByte(dir, '?'); i >= 0 {
		dir = dir[:i]
	}
	if !isFile {
		rep.Expired = expired
		return rep, nil
	}
	infos, err := readNarinfos(dir)
	if err != nil {
		return nil, err
	}
	needed := map[string]bool{}
	stack := slices.Clone(live)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if needed[p] {
			continue
		}
		needed[p] = true
		stack = append(stack, infos[p].references...)
	}
	var remove []string
	for _, p := range expired {
		if needed[p] {
			rep.Needed++
		} else {
			remove = append(remove, p)
		}
	}
	rep.Expired, rep.Removed = remove, !dryRun
	if dryRun || len(remove) == 0 {
		return rep, nil
	}
	gone := map[string]bool{}
	for _, p := range remove {
		gone[p] = true
	}
	nars := map[string]bool{} // NAR files another .narinfo names
	for p, i := range infos {
		if !gone[p] {
			nars[i.url] = true
		}
	}
	for _, p := range remove {
		i, ok := infos[p]
		if ok {
			if err := os.Remove(i.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("cache: %w", err)
			}
			if i.url != "" && !nars[i.url] && filepath.IsLocal(i.url) {
				if err := os.Remove(filepath.Join(dir, i.url)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("cache: %w", err)
				}
			}
		}
	}
	if err := r.store.ForgetCached(ctx, remove); err != nil {
		return nil, err
	}
	r.log.Info().Int("removed", len(remove)).Int("needed", rep.Needed).Str("cache", c.URL).Msg("expired paths removed from the cache")
	return rep, nil
}

type narinfo struct {
	file, url  string
	references []string
}

// readNarinfos reads the .narinfo files of a file:// cache, by store path.
func readNarinfos(dir string) (map[string]narinfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cache: %w", err)
	}
	out := map[string]narinfo{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".narinfo") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		i := narinfo{file: file}
		var path string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ": ")
			switch k {
			case "StorePath":
				path = v
			case "URL":
				i.url = v
			case "References":
				for _, ref := range strings.Fields(v) {
					i.references = append(i.references, "/nix/store/"+ref)
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("cache: %s: %w", file, err)
		}
		if path != "" {
			out[path] = i
		}
	}
	return out, nil
}
