package nix

import (
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// LogDir is where Nix keeps build logs: $NIX_LOG_DIR or /nix/var/log/nix.
func LogDir() string {
	if d := os.Getenv("NIX_LOG_DIR"); d != "" {
		return d
	}
	return "/nix/var/log/nix"
}

// ReadLog returns the build log of drv from Nix's log store, at most max
// bytes of it: when longer, the last max bytes after a line saying how much
// was cut (the end of a log is where failures are). It reads the log files
// directly and falls back to `nix-store --read-log` for stores it does not
// know the layout of.
func (r *Runner) ReadLog(ctx context.Context, drv string, max int) ([]byte, error) {
	if err := CheckDrvPath(drv); err != nil {
		return nil, err
	}
	if path, ok := StoredLog(drv); ok {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", drv, err)
		}
		defer f.Close()
		var src io.Reader = f
		if filepath.Ext(path) == ".bz2" {
			src = bzip2.NewReader(f)
		}
		b, err := tailOf(src, max)
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", drv, err)
		}
		return b, nil
	}
	res, err := r.Run(ctx, Cmd{Program: "nix-store", Args: []string{"--read-log", "--", drv}, Limits: Limits{Timeout: time.Minute, MaxStdout: 1 << 30}})
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", drv, err)
	}
	return tailOf(bytes.NewReader(res.Stdout), max)
}

// StoredLog returns the file in Nix's log store holding drv's log
// (bzip2-compressed when it ends in .bz2), and false when there is none.
// drv must have passed CheckDrvPath.
func StoredLog(drv string) (string, bool) {
	base := filepath.Base(drv)
	dir := filepath.Join(LogDir(), "drvs", base[:2])
	for _, name := range []string{base[2:] + ".bz2", base[2:]} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			return path, true
		}
	}
	return "", false
}

// tailOf reads src and keeps its last max bytes (all of it when max <= 0).
func tailOf(src io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		return io.ReadAll(src)
	}
	t := &tailBuffer{max: max}
	total := 0
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		total += n
		t.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			// A build killed mid-way leaves a truncated compressed log:
			// what it has is still worth showing.
			if total == 0 {
				return nil, err
			}
			t.Write([]byte(fmt.Sprintf("\n[basinix: the log ends early: %v]\n", err)))
			break
		}
	}
	out := t.Bytes()
	if cut := total - len(out); cut > 0 {
		return append([]byte(fmt.Sprintf("[basinix: the first %d bytes of this log were cut]\n", cut)), out...), nil
	}
	return out, nil
}
