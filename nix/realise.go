package nix

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RealiseCmd is one `nix-store --realise --keep-going` of a batch of
// derivations, on this machine or on one remote machine.
type RealiseCmd struct {
	Drvs      []string
	MaxJobs   int           // -j; 0 with Builders set builds only remotely
	Cores     int           // --cores; 0 leaves Nix's default
	Timeout   time.Duration // --timeout, per derivation
	MaxSilent time.Duration // --max-silent-time, per derivation
	// Builders is one line in the /etc/nix/machines format; "" builds
	// locally and ignores the machines Nix is configured with.
	Builders string
	// SSHOptions become NIX_SSHOPTS (a port, an ssh config file, ...).
	SSHOptions string
	// OnLog, when set, sees each line a build prints, as it prints it.
	OnLog func(drv string, line string)
	// Cgroup, when set, are the groups the local builds run in (see
	// Cmd.Cgroup).
	Cgroup []string
	// OnStart, when set, is told when Nix starts building a derivation;
	// OnEnd when it says the build ended: its failure, or its stop (Nix
	// 2.8 with --keep-going says both only when the whole run ends).
	OnStart, OnEnd func(drv string)
}

// FailureKind says how Nix reported a derivation's failure.
type FailureKind string

const (
	FailBuilder      FailureKind = "builder"      // the builder failed (or produced bad output)
	FailTimeout      FailureKind = "timeout"      // --timeout or --max-silent-time
	FailDependencies FailureKind = "dependencies" // an input derivation failed
	FailOther        FailureKind = "other"        // e.g. no machine can build it
	// FailMachine is a builder killed by SIGKILL, which neither Nix nor
	// basinix sends a builder (Nix ends timed-out builds otherwise, and
	// basinix kills nix-store): the OOM killer or an administrator did.
	FailMachine FailureKind = "machine"
)

// Failure is Nix's report of one derivation that did not build.
type Failure struct {
	Kind    FailureKind
	Message string
}

// Build is one derivation Nix built (or tried to) during a run.
type Build struct {
	Start, End time.Time
}

// Realised is what Nix reported about a realise run. Nix prints no result
// per derivation, so a derivation that is neither in Failures nor has its
// outputs valid afterwards was not reached (the run was cut short).
type Realised struct {
	Builds   map[string]*Build
	Failures map[string]*Failure
	// Unreachable are the remote machines Nix could not connect to.
	Unreachable []string
	// Errors are Nix's other error messages, for the record.
	Errors []string
	Result *Result
}

// Realise runs cmd. The error is nil when Nix built everything; with
// failures it is an *Error and the Realised is still filled.
func (r *Runner) Realise(ctx context.Context, cmd RealiseCmd) (*Realised, error) {
	args := []string{"--realise", "--keep-going", "--log-format", "internal-json",
		"-j", strconv.Itoa(cmd.MaxJobs), "--builders", cmd.Builders}
	if cmd.Cores > 0 {
		args = append(args, "--cores", strconv.Itoa(cmd.Cores))
	}
	if cmd.Timeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(int(cmd.Timeout.Seconds())))
	}
	if cmd.MaxSilent > 0 {
		args = append(args, "--max-silent-time", strconv.Itoa(int(cmd.MaxSilent.Seconds())))
	}
	args = append(args, "--")
	args = append(args, cmd.Drvs...)
	var env []string
	if cmd.SSHOptions != "" {
		env = append(env, "NIX_SSHOPTS="+cmd.SSHOptions)
	}
	p := &realiseParser{out: &Realised{Builds: map[string]*Build{}, Failures: map[string]*Failure{}}, ids: map[uint64]string{}, onLog: cmd.OnLog, onStart: cmd.OnStart, onEnd: cmd.OnEnd}
	res, err := r.Run(ctx, Cmd{
		Program:      "nix-store",
		Args:         args,
		Env:          env,
		Limits:       Limits{MaxStdout: 16 << 20},
		OnStderrLine: p.line,
		Cgroup:       cmd.Cgroup,
	})
	p.out.Result = res
	return p.out, err
}

// realiseParser reads Nix's internal-json log ("@nix {...}" lines).
type realiseParser struct {
	mu             sync.Mutex
	out            *Realised
	ids            map[uint64]string // activity id → derivation
	onLog          func(drv, line string)
	onStart, onEnd func(drv string)
}

type logLine struct {
	Action string            `json:"action"`
	ID     uint64            `json:"id"`
	Type   int               `json:"type"`
	Level  int               `json:"level"`
	Msg    string            `json:"msg"`
	Fields []json.RawMessage `json:"fields"`
}

const actBuild = 105

// line takes Nix's internal-json lines. A line cut for its length (a
// build printing a line of gigabytes) is no JSON any more: it is a build's
// output, dropped, and the batch goes on.
func (p *realiseParser) line(line []byte, cut bool) bool {
	body, ok := bytes.CutPrefix(line, []byte("@nix "))
	if !ok {
		return false
	}
	if cut {
		return true
	}
	// Most lines are progress counters and build output, which basinix
	// does not need (logs come from the log store): skip them unparsed,
	// since the builds compete for the same cores.
	if bytes.HasPrefix(body, []byte(`{"action":"result"`)) {
		if p.onLog != nil && bytes.Contains(body, []byte(`"type":101`)) {
			p.logLine(body)
		}
		return true
	}
	var l logLine
	if json.Unmarshal(body, &l) != nil {
		return false
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch l.Action {
	case "start":
		if l.Type != actBuild || len(l.Fields) < 1 {
			return true
		}
		var drv string
		if json.Unmarshal(l.Fields[0], &drv) != nil {
			return true
		}
		p.ids[l.ID] = drv
		p.out.Builds[drv] = &Build{Start: now}
		if p.onStart != nil {
			p.onStart(drv)
		}
	case "stop":
		if drv, ok := p.ids[l.ID]; ok {
			p.out.Builds[drv].End = now
			if p.onEnd != nil {
				p.onEnd(drv)
			}
		}
	case "msg":
		if l.Level <= 1 {
			p.message(ansiRe.ReplaceAllString(l.Msg, ""))
		}
	}
	return true
}

// logLine hands a build's output line (result type 101) to onLog.
func (p *realiseParser) logLine(body []byte) {
	var l logLine
	if json.Unmarshal(body, &l) != nil || l.Type != 101 || len(l.Fields) == 0 {
		return
	}
	var line string
	if json.Unmarshal(l.Fields[0], &line) != nil {
		return
	}
	p.mu.Lock()
	drv, ok := p.ids[l.ID]
	p.mu.Unlock()
	if ok {
		p.onLog(drv, line)
	}
}

var (
	// Nix 2.8 to 2.23 and newer ("Cannot build '…'.\n Reason: …") wordings.
	builderFailedRe = regexp.MustCompile(`builder for '(/[^']+\.drv)' failed|Cannot build '(/[^']+\.drv)'\.\s+Reason: builder failed|hash mismatch in fixed-output derivation '(/[^']+\.drv)'`)
	depsFailedRe    = regexp.MustCompile(`dependencies of derivation '(/[^']+\.drv)' failed to build|Cannot build '(/[^']+\.drv)'\.\s+Reason: \d+ dependenc`)
	timedOutRe      = regexp.MustCompile(`'(/[^'!^]+\.drv)[^']*'[^\n]*timed out after|Cannot build '(/[^']+\.drv)'\.\s+Reason: timed out`)
	requiredRe      = regexp.MustCompile(`is required to build '(/[^']+\.drv)'`)
	killedRe        = regexp.MustCompile(`builder for '(/[^']+\.drv)' failed due to signal 9\b|Cannot build '(/[^']+\.drv)'\.\s+Reason: builder failed due to signal 9\b`)
	cannotBuildOnRe = regexp.MustCompile(`^cannot build on '([^']+)'`)
)

func firstGroup(m []string) string {
	for _, g := range m[1:] {
		if g != "" {
			return g
		}
	}
	return ""
}

// hashMismatchRe finds the two hashes of a fixed-output derivation's
// mismatch, on the lines after the first (Nix 2.8 and newer alike).
var hashMismatchRe = regexp.MustCompile(`specified:\s*(\S+)\s+got:\s*(\S+)`)

func (p *realiseParser) message(msg string) {
	msg = strings.TrimPrefix(msg, "error: ")
	first, _, _ := strings.Cut(msg, "\n")
	if m := hashMismatchRe.FindStringSubmatch(msg); m != nil {
		// What a reviewer needs to fix the hash is on the next lines.
		first = strings.TrimSuffix(strings.TrimSpace(first), ":") + ": specified " + m[1] + ", got " + m[2]
	}
	put := func(re *regexp.Regexp, kind FailureKind) bool {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			return false
		}
		drv := firstGroup(m)
		if f, ok := p.out.Failures[drv]; !ok || f.Kind == FailDependencies {
			p.out.Failures[drv] = &Failure{Kind: kind, Message: strings.TrimSpace(first)}
		}
		if p.onEnd != nil {
			p.onEnd(drv)
		}
		return true
	}
	switch {
	case put(killedRe, FailMachine), put(timedOutRe, FailTimeout), put(builderFailedRe, FailBuilder), put(depsFailedRe, FailDependencies), put(requiredRe, FailOther):
	default:
		if m := cannotBuildOnRe.FindStringSubmatch(msg); m != nil {
			p.out.Unreachable = append(p.out.Unreachable, m[1])
		}
		p.out.Errors = append(p.out.Errors, strings.TrimSpace(msg))
	}
}

// diskFullRe is what a build log says when the build failed for want of
// disk space: the machine's fault, not the package's.
var diskFullRe = regexp.MustCompile(`No space left on device|Disk quota exceeded`)

// LogMachineFault says why a failed build's log tail shows the machine at
// fault, "" when it does not.
func LogMachineFault(tail []byte) string {
	if diskFullRe.Match(tail) {
		return "no space left on the device"
	}
	return ""
}

// InvalidPaths returns those of paths that are not valid in the store
// (not built, or garbage-collected).
func (r *Runner) InvalidPaths(ctx context.Context, paths []string) ([]string, error) {
	var out []string
	for len(paths) > 0 {
		n := min(len(paths), 2000)
		res, err := r.Run(ctx, Cmd{
			Program: "nix-store",
			Args:    append([]string{"--check-validity", "--print-invalid", "--"}, paths[:n]...),
			Limits:  Limits{Timeout: 5 * time.Minute},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, strings.Fields(string(res.Stdout))...)
		paths = paths[n:]
	}
	return out, nil
}
