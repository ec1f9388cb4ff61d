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
// kept.
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

// keepLog keeps one derivation's log, uncompressed and cut to LogMaxBytes
// (its end), and returns its file, "" when Nix kept none. A compressed log
// is never kept as it is: its size says nothing of what it unpacks to.
func (p *Pool) keepLog(ctx context.Context, drv string) string {
	path := filepath.Join(p.opt.LogDir, strings.TrimSuffix(filepath.Base(drv), ".drv")+".log")
	b, err := p.nix.ReadLog(ctx, drv, p.opt.LogMaxBytes)
	if err != nil {
		var nerr *nix.Error
		if !errors.As(err, &nerr) { // Nix saying it has no log is no news
			p.log.Warn().Err(err).Str("drv", drv).Msg("reading build log")
		}
		return ""
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.log.Warn().Err(err).Str("drv", drv).Msg("keeping build log")
		return ""
	}
	// A log kept compressed by an older basinix is stale now.
	os.Remove(path + ".bz2")
	return path
}

// maxServedLog bounds what OpenLog gives of a log kept compressed by an
// older basinix (new ones are kept cut already).
const maxServedLog = 16 << 20

// OpenLog opens a log the pool kept. One kept compressed (by an older
// basinix) is decompressed, at most maxServedLog bytes of it.
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
	}{io.LimitReader(bzip2.NewReader(f), maxServedLog), f}, nil
}

// LogEnd returns the last n bytes of a kept log, nil when it cannot be
// read: only its end is read (or, for a log kept compressed, at most
// maxServedLog bytes of it).
func LogEnd(path string, n int) []byte {
	if path == "" {
		return nil
	}
	f, err := OpenLog(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if s, ok := f.(io.Seeker); ok {
		if size, err := s.Seek(0, io.SeekEnd); err == nil && size > int64(n) {
			if _, err := s.Seek(size-int64(n), io.SeekStart); err != nil {
				return nil
			}
		} else if _, err := s.Seek(0, io.SeekStart); err != nil {
			return nil
		}
	}
	var ring []byte
	buf := make([]byte, 32<<10)
	for {
		k, err := f.Read(buf)
		ring = append(ring, buf[:k]...)
		if len(ring) > 2*n {
			ring = append(ring[:0], ring[len(ring)-n:]...)
		}
		if err != nil {
			break
		}
	}
	if len(ring) > n {
		ring = ring[len(ring)-n:]
	}
	return ring
}

// liveLogs keeps, in memory, the output of the builds that run (their
// last maxLive bytes), so that a running build can be followed; a build's
// output goes once its log is kept.
type liveLogs struct {
	mu   sync.Mutex
	logs map[string]*liveLog // guarded by mu
}

type liveLog struct {
	buf   []byte
	base  int  // offset of buf[0] in the whole output
	ended bool // Nix stopped building it (its batch may still run)
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

// start notes that Nix started building drv: its output can be followed
// from now, even before it prints anything.
func (l *liveLogs) start(drv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logs[drv] == nil {
		l.logs[drv] = &liveLog{}
	}
}

// end notes that Nix stopped building drv. Its output stays until its
// batch delivers it, so that it can be followed to the end.
func (l *liveLogs) end(drv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lg := l.logs[drv]; lg != nil {
		lg.ended = true
	}
}

// running reports whether Nix is building drv now.
func (l *liveLogs) running(drv string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg := l.logs[drv]
	return lg != nil && !lg.ended
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
