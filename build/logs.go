package build

import (
	"compress/bzip2"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/basinix/basinix/nix"
)

// keepLogs copies the logs of the derivations Nix built from its log store
// into the pool's log directory, a few at once, and returns where each is
// kept. A compressed log small enough is copied as it is (decompressing
// costs more than the build of a small derivation); a larger one is
// decompressed and cut to LogMaxBytes, keeping its end.
func (p *Pool) keepLogs(ctx context.Context, built map[string]*nix.Build) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for drv := range built {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if path := p.keepLog(ctx, drv); path != "" {
				mu.Lock()
				out[drv] = path
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// keepLog keeps one derivation's log and returns its file, "" when Nix
// kept none.
func (p *Pool) keepLog(ctx context.Context, drv string) string {
	base := filepath.Join(p.opt.LogDir, strings.TrimSuffix(filepath.Base(drv), ".drv")+".log")
	if src, ok := nix.StoredLog(drv); ok && filepath.Ext(src) == ".bz2" {
		if st, err := os.Stat(src); err == nil && st.Size() <= int64(p.opt.LogMaxBytes/8) {
			// A hard link costs one system call (a copy costs the build
			// phase of small derivations ~10%). Nix rewrites the same file
			// in place when the derivation is built again, which only a
			// failed one is: the link then follows its latest build, as the
			// remembered result does.
			dst := base + ".bz2"
			os.Remove(dst)
			os.Remove(base)
			if os.Link(src, dst) == nil {
				return dst
			}
			if b, err := os.ReadFile(src); err == nil { // another file system
				return p.writeLog(drv, dst, b)
			}
		}
	}
	b, err := p.nix.ReadLog(ctx, drv, p.opt.LogMaxBytes)
	if err != nil {
		var nerr *nix.Error
		if !errors.As(err, &nerr) { // Nix saying it has no log is no news
			p.log.Warn().Err(err).Str("drv", drv).Msg("reading build log")
		}
		return ""
	}
	return p.writeLog(drv, base, b)
}

func (p *Pool) writeLog(drv, path string, b []byte) string {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.log.Warn().Err(err).Str("drv", drv).Msg("keeping build log")
		return ""
	}
	// A log kept the other way by an earlier build is stale now.
	other := strings.TrimSuffix(path, ".bz2")
	if other == path {
		other = path + ".bz2"
	}
	os.Remove(other)
	return path
}

// OpenLog opens a log the pool kept, decompressing it when it is kept
// compressed.
func OpenLog(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if filepath.Ext(path) != ".bz2" {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{bzip2.NewReader(f), f}, nil
}

// liveLogs keeps, in memory, the output of the builds that run (their
// last maxLive bytes), so that a running build can be followed; a build's
// output goes once its log is kept.
type liveLogs struct {
	mu   sync.Mutex
	logs map[string]*liveLog // guarded by mu
}

type liveLog struct {
	buf  []byte
	base int // offset of buf[0] in the whole output
}

const maxLive = 256 << 10

func (l *liveLogs) line(drv, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg := l.logs[drv]
	if lg == nil {
		lg = &liveLog{}
		l.logs[drv] = lg
	}
	lg.buf = append(append(lg.buf, line...), '\n')
	if over := len(lg.buf) - maxLive; over > maxLive/4 {
		lg.buf = append(lg.buf[:0:0], lg.buf[over:]...)
		lg.base += over
	}
}

func (l *liveLogs) drop(drvs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range drvs {
		delete(l.logs, d)
	}
}

// Live returns the output of drv's running build from offset from on (or
// from the oldest byte kept), the offset to ask from next time, and
// whether the build is still running.
func (p *Pool) Live(drv string, from int) ([]byte, int, bool) {
	p.live.mu.Lock()
	defer p.live.mu.Unlock()
	lg := p.live.logs[drv]
	if lg == nil {
		return nil, from, false
	}
	from = max(from, lg.base)
	end := lg.base + len(lg.buf)
	if from >= end {
		return nil, end, true
	}
	return append([]byte(nil), lg.buf[from-lg.base:]...), end, true
}

// KeptLog returns the kept log of drv under dir, "" when there is none.
func KeptLog(dir, drv string) string {
	base := filepath.Join(dir, strings.TrimSuffix(filepath.Base(drv), ".drv")+".log")
	for _, p := range []string{base + ".bz2", base} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
