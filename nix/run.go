// Package nix is the only place in basinix that runs Nix. It starts the Nix
// CLI with a context, bounds every process in time, silence and memory,
// keeps bounded copies of what it prints, parses Nix's error messages into
// message and position, and ships the Nix expressions basinix evaluates.
package nix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/internal/childenv"
)

// Limits bound one Nix process. A zero field means "no bound".
type Limits struct {
	// Timeout ends the process this long after it started.
	Timeout time.Duration
	// Silence ends the process when it printed no line for this long.
	Silence time.Duration
	// MaxMemory ends the process when its resident memory exceeds this many bytes.
	MaxMemory int64
	// MaxStdout is how many bytes of stdout are kept (default 64 MiB); more is an error.
	MaxStdout int
	// StderrTail is how many bytes of unconsumed stderr are kept, the last ones (default 256 KiB).
	StderrTail int
	// MaxLine is the longest stderr line handed on whole (default 1 MiB):
	// a longer one is cut to it, never held whole.
	MaxLine int
}

// Cmd is one Nix invocation. Args are passed to the program as they are:
// nothing is ever given to a shell.
type Cmd struct {
	Program string // "nix-instantiate", "nix-store", ...
	Args    []string
	Dir     string
	// Stdout, when set, gets the process's stdout instead of Result.Stdout
	// (Limits.MaxStdout does not apply; a write error stops the copy).
	Stdout io.Writer
	// Env is added to the environment the process gets, which is the
	// host's cut to an allow-list (see internal/childenv), never all of
	// basinix's.
	Env    []string
	Limits Limits
	// OnStderrLine, when set, sees every stderr line (without its newline,
	// cut to Limits.MaxLine, cut saying so); lines for which it returns
	// true are not kept in the stderr tail. Only those lines count as
	// progress for Limits.Silence then: a process that prints other lines
	// without end (a package tracing in a loop) is still silent.
	OnStderrLine func(line []byte, cut bool) bool
	// Waiting, when set and true, says the process waits for basinix
	// (for its next request): its silence is not counted then.
	Waiting func() bool
	// OnMemory, when set, sees the process's resident memory each time it
	// is measured (ten times a second), before Limits.MaxMemory is applied.
	OnMemory func(rss int64)
	// Cgroup, when set, are the cgroup.procs files (Cgroup.Procs) the
	// process joins before it runs the program: everything it starts is
	// in the groups and under their limits.
	Cgroup []string
}

// Kill says why basinix ended a process.
type Kill string

const (
	KillNone    Kill = ""
	KillTimeout Kill = "timeout"
	KillSilence Kill = "silence"
	KillMemory  Kill = "memory"
	KillCancel  Kill = "cancelled"
)

// Result is what a finished process left. It is returned also when the
// process failed, together with an *Error.
type Result struct {
	Stdout     []byte
	StderrTail []byte
	ExitCode   int
	Killed     Kill
	// Signal is the signal that ended the process when basinix did not
	// send it (Killed is KillNone then): the OOM killer, an administrator.
	Signal   syscall.Signal
	PeakRSS  int64
	Duration time.Duration
}

// Runner runs Nix commands. The zero value is not usable: use New.
type Runner struct {
	binDir  string
	options []string
	log     zerolog.Logger

	versionOnce sync.Once
	version     string
	versionErr  error
}

// New returns a Runner. binDir is where the Nix programs are ("" looks them
// up in PATH); options are "--option NAME VALUE" pairs added to every
// command, as name/value pairs.
func New(binDir string, options map[string]string, log zerolog.Logger) *Runner {
	r := &Runner{binDir: binDir, log: log}
	for _, k := range sortedKeys(options) {
		r.options = append(r.options, "--option", k, options[k])
	}
	return r
}

// ErrNotInstalled is returned when a Nix program cannot be found.
var ErrNotInstalled = errors.New("nix is not installed (apt-get install nix-bin, see NIX.md)")

func (r *Runner) program(name string) (string, error) {
	if r.binDir != "" {
		return filepath.Join(r.binDir, name), nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	return p, nil
}

var versionRe = regexp.MustCompile(`\(Nix\) (\S+)`)

// Version returns the version of the Nix that this Runner talks to, e.g.
// "2.8.0". It is asked once and remembered.
func (r *Runner) Version(ctx context.Context) (string, error) {
	r.versionOnce.Do(func() {
		res, err := r.Run(ctx, Cmd{Program: "nix-instantiate", Args: []string{"--version"}, Limits: Limits{Timeout: 30 * time.Second}})
		if err != nil {
			r.versionErr = err
			return
		}
		m := versionRe.FindSubmatch(res.Stdout)
		if m == nil {
			r.versionErr = fmt.Errorf("nix version: cannot parse %q", res.Stdout)
			return
		}
		r.version = string(m[1])
	})
	return r.version, r.versionErr
}

// Run starts cmd and waits for it. A non-zero exit, a kill by a limit or a
// cancelled context give an *Error (with the Result filled as far as known).
func (r *Runner) Run(ctx context.Context, cmd Cmd) (*Result, error) {
	path, err := r.program(cmd.Program)
	if err != nil {
		return nil, err
	}
	lim := cmd.Limits
	if lim.MaxStdout == 0 {
		lim.MaxStdout = 64 << 20
	}
	if lim.StderrTail == 0 {
		lim.StderrTail = 256 << 10
	}
	if lim.MaxLine == 0 {
		lim.MaxLine = 1 << 20
	}
	args := append(append([]string{}, r.options...), cmd.Args...)
	if len(cmd.Cgroup) > 0 {
		// A shell writes its own pid into each group, then becomes the
		// program: no child of it starts outside. Every value is an
		// argument, never shell text.
		join := `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; n=$((n-1)); shift; done; exec "$@"`
		args = append(append(append([]string{"-c", join, "sh", strconv.Itoa(len(cmd.Cgroup))}, cmd.Cgroup...), path), args...)
		path = "/bin/sh"
	}
	c := exec.Command(path, args...)
	c.Dir = cmd.Dir
	c.Env = childenv.Environ(cmd.Env...)
	// Own process group, so a kill reaches whatever Nix started; and it
	// dies with basinix, so that a basinix killed with -9 leaves no
	// walker waiting for requests that never come.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout := &cappedBuffer{max: lim.MaxStdout}
	c.Stdout = stdout
	if cmd.Stdout != nil {
		c.Stdout = cmd.Stdout
	}
	stderr, err := c.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stderr pipe: %w", cmd.Program, err)
	}
	start := time.Now()
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Program, err)
	}
	r.log.Debug().Str("program", cmd.Program).Strs("args", cmd.Args).Int("pid", c.Process.Pid).Msg("nix started")

	var (
		mu       sync.Mutex
		lastLine = time.Now()
		killed   = KillNone
		peak     int64
	)
	kill := func(why Kill) {
		mu.Lock()
		if killed == KillNone {
			killed = why
		}
		mu.Unlock()
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}

	tail := &tailBuffer{max: lim.StderrTail}
	readDone := make(chan error, 1)
	progress := func() {
		mu.Lock()
		lastLine = time.Now()
		mu.Unlock()
	}
	onRead := progress
	if cmd.OnStderrLine != nil {
		onRead = nil // only the lines it takes are progress
	}
	go func() {
		lr := newLineReader(stderr, lim.MaxLine, onRead)
		for {
			line, cut, err := lr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					// Keep draining so the process is never blocked on a full pipe.
					_, _ = io.Copy(io.Discard, stderr)
					readDone <- err
					return
				}
				readDone <- nil
				return
			}
			if cmd.OnStderrLine != nil && cmd.OnStderrLine(line, cut) {
				progress()
				continue
			}
			tail.Write(line)
			if cut {
				tail.Write([]byte(" [basinix: line cut]"))
			}
			tail.Write([]byte{'\n'})
		}
	}()

	watchDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watchDone:
				return
			case <-ctx.Done():
				kill(KillCancel)
				return
			case now := <-tick.C:
				if lim.Timeout > 0 && now.Sub(start) > lim.Timeout {
					kill(KillTimeout)
					return
				}
				mu.Lock()
				if cmd.Waiting != nil && cmd.Waiting() {
					lastLine = now
				}
				silent := now.Sub(lastLine)
				mu.Unlock()
				if lim.Silence > 0 && silent > lim.Silence {
					kill(KillSilence)
					return
				}
				rss := ResidentBytes(c.Process.Pid)
				mu.Lock()
				if rss > peak {
					peak = rss
				}
				mu.Unlock()
				if cmd.OnMemory != nil && rss > 0 {
					cmd.OnMemory(rss)
				}
				if lim.MaxMemory > 0 && rss > lim.MaxMemory {
					kill(KillMemory)
					return
				}
			}
		}
	}()

	scanErr := <-readDone
	waitErr := c.Wait()
	close(watchDone)

	mu.Lock()
	res := &Result{
		Stdout:     stdout.Bytes(),
		StderrTail: tail.Bytes(),
		ExitCode:   c.ProcessState.ExitCode(),
		Killed:     killed,
		PeakRSS:    peak,
		Duration:   time.Since(start),
	}
	mu.Unlock()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && res.Killed == KillNone {
		res.Signal = ws.Signal()
	}
	r.log.Debug().Str("program", cmd.Program).Int("pid", c.Process.Pid).Int("exit", res.ExitCode).
		Dur("took", res.Duration).Dur("user", c.ProcessState.UserTime()).Dur("sys", c.ProcessState.SystemTime()).
		Int64("peak_mib", res.PeakRSS>>20).Msg("nix finished")

	switch {
	case res.Killed != KillNone:
		e := ParseError(res.StderrTail)
		e.Stderr = string(res.StderrTail)
		e.Op, e.ExitCode, e.Kill = cmd.Program, res.ExitCode, res.Killed
		e.Message = killMessage(res.Killed, lim)
		if res.Killed == KillCancel && ctx.Err() != nil {
			return res, fmt.Errorf("%s: %w", cmd.Program, ctx.Err())
		}
		return res, e
	case stdout.overflow:
		return res, fmt.Errorf("%s: output exceeds %d bytes", cmd.Program, lim.MaxStdout)
	case scanErr != nil:
		return res, fmt.Errorf("%s: reading stderr: %w", cmd.Program, scanErr)
	case res.Signal != 0:
		// Not a limit of basinix's: the machine's fault (the OOM killer, an
		// administrator), never a result.
		e := ParseError(res.StderrTail)
		e.Stderr = string(res.StderrTail)
		e.Op, e.ExitCode, e.Signal = cmd.Program, res.ExitCode, res.Signal
		e.Message = fmt.Sprintf("killed by signal %d (%s), which basinix did not send", int(res.Signal), res.Signal)
		return res, e
	case waitErr != nil:
		e := ParseError(res.StderrTail)
		e.Stderr = string(res.StderrTail)
		e.Op, e.ExitCode = cmd.Program, res.ExitCode
		if e.Message == "" {
			e.Message = strings.TrimSpace(lastLines(res.StderrTail, 5))
			if e.Message == "" {
				e.Message = waitErr.Error()
			}
		}
		return res, e
	}
	return res, nil
}

func killMessage(k Kill, lim Limits) string {
	switch k {
	case KillTimeout:
		return fmt.Sprintf("killed after the time limit of %s", lim.Timeout)
	case KillSilence:
		return fmt.Sprintf("killed after %s without progress (time limit)", lim.Silence)
	case KillMemory:
		return fmt.Sprintf("killed for using more than the memory limit of %d MiB", lim.MaxMemory>>20)
	case KillCancel:
		return "cancelled"
	}
	return ""
}

// ResidentBytes returns the resident set size of pid, 0 when unknown.
func ResidentBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// cappedBuffer keeps at most max bytes and remembers whether more came.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 && over > b.max/4 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
}

func (b *tailBuffer) Bytes() []byte {
	if over := len(b.buf) - b.max; over > 0 {
		return b.buf[over:]
	}
	return b.buf
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
