package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/basinix/basinix/build"
)

// logWriter is where the logger writes; while a progress bar is shown it
// writes above the bar instead of through it.
type logWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *logWriter) set(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

// progress shows build progress: a live bar on a terminal, a plain line
// every interval otherwise (and on the last update).
type progress struct {
	out      io.Writer
	logs     *logWriter
	interval time.Duration

	mu        sync.Mutex // guards bars, bar and lastLine; not taken by the bar's renderer
	bars      *mpb.Progress
	bar       *mpb.Bar
	lastLine  time.Time
	lastShown build.Progress

	lastMu sync.Mutex // guards last, which the bar's renderer reads
	last   build.Progress
}

func newProgress(out io.Writer, logs *logWriter) *progress {
	return &progress{out: out, logs: logs, interval: 10 * time.Second}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// update shows p; it is called on every change.
func (pr *progress) update(p build.Progress) {
	pr.lastMu.Lock()
	pr.last = p
	pr.lastMu.Unlock()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if isTerminal(pr.out) {
		if pr.bars == nil {
			pr.bars = mpb.New(mpb.WithOutput(pr.out), mpb.WithWidth(40))
			pr.bar = pr.bars.AddBar(int64(p.Total),
				mpb.PrependDecorators(decor.Name("building "), decor.CountersNoUnit("%d/%d")),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					pr.lastMu.Lock()
					defer pr.lastMu.Unlock()
					return fmt.Sprintf(" %d building, %d failed, %d known before", pr.last.Building, pr.last.Failed, pr.last.Cached)
				})))
			pr.logs.set(pr.bars)
		}
		pr.bar.SetCurrent(int64(p.Done))
		return
	}
	if now := time.Now(); now.Sub(pr.lastLine) >= pr.interval || p.Done == p.Total && !sameCounts(p, pr.lastShown) {
		pr.lastLine, pr.lastShown = now, p
		fmt.Fprintf(pr.out, "builds: %d/%d done, %d building, %d failed, %d known before\n", p.Done, p.Total, p.Building, p.Failed, p.Cached)
	}
}

// finish removes the bar and gives the logger its writer back.
func (pr *progress) finish() {
	pr.mu.Lock()
	bars, bar := pr.bars, pr.bar
	pr.mu.Unlock()
	if bars == nil {
		return
	}
	if !bar.Completed() {
		bar.Abort(false)
	}
	bars.Wait()
	pr.logs.set(pr.out)
}

// sameCounts reports whether two progresses show the same counts.
func sameCounts(a, b build.Progress) bool {
	return a.Total == b.Total && a.Done == b.Done && a.Failed == b.Failed && a.Cached == b.Cached && a.Building == b.Building
}
