package nix

import (
	"compress/bzip2"
	"context"
	"errors"
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

// MaxLogRead bounds how much of one log ReadLog reads, decompressed: a
// bzip2 file of 2 KB can hold a gigabyte of output, and its end is not
// worth unpacking all of it. A log longer than this is cut, saying so.
const MaxLogRead = 256 << 20

// ReadLog returns the build log of drv from Nix's log store, at most max
// bytes of it: when longer, the last max bytes after a line saying how much
// was cut (the end of a log is where failures are). It reads the log files
// directly and falls back to `nix-store --read-log` for stores it does not
// know the layout of; either way it reads at most MaxLogRead bytes.
func (r *Runner) ReadLog(ctx context.Context, drv string, max int) ([]byte, error) {
	if err := CheckDrvPath(drv); err != nil {
		return nil, err
	}
	if path, ok := StoredLog(drv); ok {
		b, err := ReadLogFile(path, max)
		if err != nil {
			return nil, fmt.Errorf("read log of %s: %w", drv, err)
		}
		return b, nil
	}
	t := newLogTail(max)
	_, err := r.Run(ctx, Cmd{Program: "nix-store", Args: []string{"--read-log", "--", drv}, Stdout: t, Limits: Limits{Timeout: time.Minute}})
	if err != nil && !t.full() {
		return nil, fmt.Errorf("read log of %s: %w", drv, err)
	}
	return t.bytes(nil), nil
}

// ReadLogFile reads a log file (bzip2-compressed when it ends in .bz2) as
// ReadLog does: at most MaxLogRead bytes of it, keeping the last max.
func ReadLogFile(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var src io.Reader = f
	if filepath.Ext(path) == ".bz2" {
		src = bzip2.NewReader(f)
	}
	t := newLogTail(max)
	_, err = io.Copy(t, src)
	if err != nil && !t.full() {
		// A build killed mid-way leaves a truncated compressed log: what
		// it has is still worth showing.
		if t.total == 0 {
			return nil, err
		}
		return t.bytes(err), nil
	}
	return t.bytes(nil), nil
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

// errLogFull stops a copy into a logTail that has read MaxLogRead bytes.
var errLogFull = errors.New("log read limit reached")

// logTail keeps the last max bytes written to it (all when max <= 0) and
// refuses writes past MaxLogRead bytes in all.
type logTail struct {
	tail  tailBuffer
	total int
}

func newLogTail(max int) *logTail {
	if max <= 0 {
		max = MaxLogRead
	}
	return &logTail{tail: tailBuffer{max: max}}
}

func (t *logTail) Write(p []byte) (int, error) {
	room := MaxLogRead - t.total
	if room <= 0 {
		return 0, errLogFull
	}
	n := min(room, len(p))
	t.tail.Write(p[:n])
	t.total += n
	if n < len(p) {
		return n, errLogFull
	}
	return n, nil
}

func (t *logTail) full() bool { return t.total >= MaxLogRead }

// bytes returns what is kept, with lines saying what was cut and, when
// err is set, why the log ends early.
func (t *logTail) bytes(err error) []byte {
	out := t.tail.Bytes()
	var head, foot string
	if cut := t.total - len(out); cut > 0 {
		head = fmt.Sprintf("[basinix: the first %d bytes of this log were cut]\n", cut)
	}
	if t.full() {
		foot = fmt.Sprintf("\n[basinix: the log is longer than %d MiB: the rest was not read]\n", MaxLogRead>>20)
	} else if err != nil {
		foot = fmt.Sprintf("\n[basinix: the log ends early: %v]\n", err)
	}
	if head == "" && foot == "" {
		return out
	}
	return append(append([]byte(head), out...), foot...)
}
