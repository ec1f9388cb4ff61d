package eval

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/basinix/basinix/nix"
)

// walkSpec is one walk over attributes: in chunk mode (paths == nil) the
// first process picks its share of the top-level names itself; later
// processes of the same walk get the explicit list of what is left.
type walkSpec struct {
	src, system, config string
	mode                string // "walk" or "tests"
	strict              bool
	paths               []Path
	chunk, chunks       int
}

// rawInfo is the walker's "d" record body (see nix/expr/walker.nix).
type rawInfo struct {
	Drv    *string            `json:"drv"`
	Name   *string            `json:"name"`
	Out    map[string]*string `json:"out"`
	Pos    *string            `json:"pos"`
	Broken bool               `json:"broken"`
	Sup    bool               `json:"sup"`
	Feat   []string           `json:"feat"`
	Tests  []string           `json:"tests"`
}

// sink receives what a walk finds. Calls come from one goroutine per walk;
// a sink shared between walks locks for itself.
type sink interface {
	drv(p Path, info *rawInfo)
	throw(p Path)
	tests(p Path, tests map[string]*string)
	fail(p Path, err *Error)
}

// errSetFailed wraps the error of a package set that does not evaluate at all.
type errSetFailed struct{ err *Error }

func (e *errSetFailed) Error() string { return "package set does not evaluate: " + e.err.Error() }

// walk runs spec to the end: whenever a process dies of an error tryEval
// cannot catch, of a time or of a memory limit, the attribute it was on is
// charged with the error and a new process carries on with what is left.
func (e *Evaluator) walk(ctx context.Context, spec walkSpec, s sink) (processes int, err error) {
	queue := spec.paths
	chunkMode := queue == nil
	soloRetry := false
	unattributed := 0
	for {
		if !chunkMode && len(queue) == 0 {
			return processes, nil
		}
		processes++
		out, err := e.walkOnce(ctx, spec, chunkMode, queue, s)
		if err == nil {
			return processes, nil
		}
		if ctx.Err() != nil {
			return processes, ctx.Err()
		}
		var nerr *nix.Error
		if !errors.As(err, &nerr) {
			return processes, err
		}
		if !out.started {
			// Died before the first attribute: the set itself is broken.
			return processes, &errSetFailed{err: toError(nerr, spec.src)}
		}
		chunkMode = false
		if out.culprit == nil {
			// Killed between attributes: nothing to blame; try the rest
			// again, but not forever.
			unattributed++
			if unattributed > 2 {
				return processes, fmt.Errorf("walk %s: %w", spec.system, err)
			}
			queue = out.remaining
			continue
		}
		unattributed = 0
		if nerr.Kill == nix.KillMemory && !soloRetry && out.steps > 1 {
			// Memory grows over a whole process: retry the attribute
			// alone before blaming it.
			queue = append([]Path{out.culprit}, out.remaining...)
			soloRetry = true
			continue
		}
		soloRetry = false
		s.fail(out.culprit, toError(nerr, spec.src))
		queue = out.remaining
	}
}

// walkOutcome says where a dead process stopped.
type walkOutcome struct {
	started   bool // an attribute was started
	steps     int  // attributes started
	culprit   Path // the attribute being evaluated when the process died; nil if none
	remaining []Path
}

type frame struct {
	paths []Path
	i     int
}

func (e *Evaluator) walkOnce(ctx context.Context, spec walkSpec, chunkMode bool, queue []Path, s sink) (walkOutcome, error) {
	nonce := randomHex(8)
	args := []string{
		"--eval", "--strict", "--show-trace",
		"--option", "allow-import-from-derivation", "false",
		"--option", "restrict-eval", "true",
		"--option", "allowed-uris", "",
		"-I", spec.src, "-I", filepath.Dir(e.walker),
		e.walker,
		"--argstr", "src", spec.src,
		"--argstr", "system", spec.system,
		"--arg", "config", spec.config,
		"--argstr", "nonce", nonce,
		"--argstr", "mode", spec.mode,
		"--arg", "strict", strconv.FormatBool(spec.strict),
	}
	var stack []*frame
	if chunkMode {
		args = append(args, "--arg", "chunk", strconv.Itoa(spec.chunk), "--arg", "chunks", strconv.Itoa(spec.chunks))
	} else {
		f, err := e.writePaths(queue)
		if err != nil {
			return walkOutcome{}, err
		}
		defer os.Remove(f)
		args = append(args, "-I", filepath.Dir(f), "--argstr", "pathsFile", f)
		stack = []*frame{{paths: queue}}
	}

	var (
		out      walkOutcome
		last     Path
		lastDone = true
		protoErr error
	)
	prefix := []byte("trace: " + nonce + " ")
	onLine := func(line []byte) bool {
		body, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			return false
		}
		var rec []json.RawMessage
		if err := json.Unmarshal(body, &rec); err != nil || len(rec) < 2 {
			protoErr = fmt.Errorf("walker record %q: bad JSON", truncate(string(body), 120))
			return true
		}
		var kind string
		_ = json.Unmarshal(rec[0], &kind)
		if kind == "c" {
			var names []string
			_ = json.Unmarshal(rec[1], &names)
			paths := make([]Path, len(names))
			for i, n := range names {
				paths[i] = Path{n}
			}
			stack = []*frame{{paths: paths}}
			return true
		}
		var p Path
		if err := json.Unmarshal(rec[1], &p); err != nil {
			protoErr = fmt.Errorf("walker record %q: bad path", truncate(string(body), 120))
			return true
		}
		switch kind {
		case "s":
			for len(stack) > 0 && stack[len(stack)-1].i >= len(stack[len(stack)-1].paths) {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 || !slices.Equal(stack[len(stack)-1].paths[stack[len(stack)-1].i], p) {
				protoErr = fmt.Errorf("walker started %s out of order", p)
				return true
			}
			stack[len(stack)-1].i++
			last, lastDone = p, false
			out.started = true
			out.steps++
		case "r":
			var names []string
			_ = json.Unmarshal(rec[2], &names)
			children := make([]Path, len(names))
			for i, n := range names {
				children[i] = append(slices.Clip(p), n)
			}
			stack = append(stack, &frame{paths: children})
			lastDone = true
		case "d":
			var info rawInfo
			if len(rec) < 3 || json.Unmarshal(rec[2], &info) != nil {
				protoErr = fmt.Errorf("walker record for %s: bad info", p)
				return true
			}
			s.drv(p, &info)
			lastDone = true
		case "x":
			s.throw(p)
			lastDone = true
		case "t":
			var tests map[string]*string
			if len(rec) >= 3 {
				_ = json.Unmarshal(rec[2], &tests)
			}
			s.tests(p, tests)
			lastDone = true
		}
		return true
	}

	release, err := e.acquire(ctx)
	if err != nil {
		return out, err
	}
	_, runErr := e.run.Run(ctx, nix.Cmd{
		Program:      "nix-instantiate",
		Args:         args,
		Env:          e.env,
		Limits:       nix.Limits{Silence: e.opt.AttrTimeout, MaxMemory: e.opt.MaxMemory},
		OnStderrLine: onLine,
	})
	release()
	if protoErr != nil {
		return out, fmt.Errorf("walk %s: %w", spec.system, protoErr)
	}
	if runErr == nil {
		return out, nil
	}
	if !lastDone {
		out.culprit = last
	}
	for i := len(stack) - 1; i >= 0; i-- {
		out.remaining = append(out.remaining, stack[i].paths[stack[i].i:]...)
	}
	return out, runErr
}

// writePaths writes an attribute list for the walker's pathsFile.
func (e *Evaluator) writePaths(paths []Path) (string, error) {
	f, err := os.CreateTemp(e.listDir, "paths-*.json")
	if err != nil {
		return "", fmt.Errorf("write attribute list: %w", err)
	}
	if err := json.NewEncoder(f).Encode(paths); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("write attribute list: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write attribute list: %w", err)
	}
	return f.Name(), nil
}

// toError turns a Nix error into an evaluation error pinned inside src.
func toError(nerr *nix.Error, src string) *Error {
	e := &Error{Message: nerr.Message}
	if nerr.Kill == nix.KillSilence || nerr.Kill == nix.KillMemory || nerr.Kill == nix.KillTimeout {
		e.Message = "evaluation " + nerr.Message
	}
	if pos, ok := nerr.PositionUnder(src); ok {
		e.File, e.Line = pos.File, pos.Line
	}
	return e
}

// relativePosition turns meta.position ("/abs/src/pkgs/foo.nix:12") into a
// position relative to the checkout.
func relativePosition(pos, src string) string {
	rel, ok := strings.CutPrefix(pos, strings.TrimSuffix(src, "/")+"/")
	if !ok {
		return pos
	}
	return rel
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
