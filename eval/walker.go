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
	"regexp"
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
	mode                string // "walk" or "details"
	strict              bool
	write               bool // write the .drv files of the derivations it forces
	paths               []Path
	chunk, chunks       int
}

// rawDetails is the walker's "i" record body (see nix/expr/walker.nix).
type rawDetails struct {
	Name   *string            `json:"name"`
	Out    map[string]*string `json:"out"`
	Pos    *string            `json:"pos"`
	Broken bool               `json:"broken"`
	Sup    bool               `json:"sup"`
	Feat   []string           `json:"feat"`
	Tests  map[string]*string `json:"tests"`
}

// sink receives what a walk finds. Calls come from one goroutine per walk;
// a sink shared between walks locks for itself.
type sink interface {
	drv(p Path, drvPath string)
	// throw: tryEval caught an error; aliasDrv is the drvPath with aliases
	// on, "" when it fails then too.
	throw(p Path, aliasDrv string)
	details(p Path, d *rawDetails)
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
	fine := 0
	var later []Path // what to walk after a suspect of eating memory is tried alone
	unattributed := 0
	for {
		if !chunkMode && len(queue) == 0 {
			if len(later) == 0 {
				return processes, nil
			}
			queue, later = later, nil
		}
		processes++
		out, err := e.walkOnce(ctx, spec, chunkMode, queue, fine, s)
		chunkMode, fine = false, 0
		if err == nil {
			queue = nil
			continue
		}
		if ctx.Err() != nil {
			return processes, ctx.Err()
		}
		var nerr *nix.Error
		if !errors.As(err, &nerr) {
			return processes, err
		}
		if !out.started {
			// Died before the first attribute (of an error, or looping
			// or eating memory past the bounds): the set itself is broken.
			return processes, &errSetFailed{err: toError(nerr, spec.src)}
		}
		if out.culprit == nil {
			// Killed after the last attribute: nothing to blame and
			// nothing left; a kill in between is tried again, not forever.
			unattributed++
			if len(out.remaining) == 0 || unattributed > 2 {
				return processes, fmt.Errorf("walk %s: %w", spec.system, err)
			}
			queue = out.remaining
			continue
		}
		unattributed = 0
		if !out.exact {
			unreported := append([]Path{out.culprit}, out.remaining...)
			if i := slices.IndexFunc(unreported, out.marked.Equal); i >= 0 && nerr.Kill == nix.KillNone {
				// The walker's error context names the attribute whose
				// own value killed the process: it is broken with this
				// error, and the walk goes on with the others at once
				// (another death among them is named the same way).
				s.fail(unreported[i], toError(nerr, spec.src))
				queue = slices.Delete(unreported, i, i+1)
				continue
			}
			// Died inside a group that reports at its end: walk that
			// group again one record at a time to learn the attribute.
			// (Walking it beside the rest was measured: with the cores
			// busy it only adds a process.)
			queue, fine = append([]Path{out.culprit}, out.remaining...), walkBatch
			continue
		}
		if nerr.Kill == nix.KillMemory && out.steps > 0 {
			// Memory grows over a whole process: try the attribute alone
			// before blaming it.
			queue, later = []Path{out.culprit}, append(out.remaining, later...)
			continue
		}
		s.fail(out.culprit, toError(nerr, spec.src))
		queue = out.remaining
	}
}

// markedPath returns the path the walker's error context names in a dead
// process's trace ("… NONCE [json path]"), nil when there is none: the
// first one, which is the innermost.
func markedPath(stderr []byte, nonce string) Path {
	marker := []byte("… " + nonce + " ")
	for line := range bytes.Lines(stderr) {
		_, body, ok := bytes.Cut(ansiRe.ReplaceAll(line, nil), marker)
		if !ok {
			continue
		}
		var p Path
		if json.Unmarshal(bytes.TrimSpace(body), &p) == nil && len(p) > 0 {
			return p
		}
	}
	return nil
}

var ansiRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

// walkBatch is how many top-level attributes the walker reports in one line.
const walkBatch = 256

// walkOutcome says where a dead process stopped.
type walkOutcome struct {
	started bool // the package set evaluated (the "c" record came)
	steps   int  // attributes finished
	// culprit is the first attribute without a record when the process
	// died (nil if none); exact says it is the one being evaluated, not
	// the first of a group that had not reported yet.
	culprit   Path
	exact     bool
	remaining []Path
	// marked is the path the walker's error context names in the trace,
	// nil when the trace names none (a kill, or a trace cut short).
	marked Path
}

// order mirrors the walker's depth-first order: a stack of lists of paths,
// each with the index of the next path to finish.
type order struct {
	frames []*frame
}

type frame struct {
	paths []Path
	i     int
}

// next returns the path the walker is on, nil when it is done.
func (o *order) next() Path {
	for len(o.frames) > 0 {
		top := o.frames[len(o.frames)-1]
		if top.i < len(top.paths) {
			return top.paths[top.i]
		}
		o.frames = o.frames[:len(o.frames)-1]
	}
	return nil
}

// finish records that p is done; it must be the next path.
func (o *order) finish(p Path) error {
	n := o.next()
	if n == nil || !slices.Equal(n, p) {
		return fmt.Errorf("walker finished %s out of order (expected %s)", p, n)
	}
	o.frames[len(o.frames)-1].i++
	return nil
}

// rest returns what is left after the next path.
func (o *order) rest() []Path {
	var out []Path
	for i := len(o.frames) - 1; i >= 0; i-- {
		f := o.frames[i]
		from := f.i
		if i == len(o.frames)-1 {
			from++
		}
		if from < len(f.paths) {
			out = append(out, f.paths[from:]...)
		}
	}
	return out
}

func (e *Evaluator) walkOnce(ctx context.Context, spec walkSpec, chunkMode bool, queue []Path, fine int, s sink) (walkOutcome, error) {
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
		"--arg", "batch", strconv.Itoa(walkBatch),
		"--arg", "fine", strconv.Itoa(fine),
	}
	if spec.write {
		args = append(args, "--read-write-mode")
	}
	ord := &order{}
	if chunkMode {
		args = append(args, "--arg", "chunk", strconv.Itoa(spec.chunk), "--arg", "chunks", strconv.Itoa(spec.chunks))
	} else {
		f, err := e.writePaths(queue)
		if err != nil {
			return walkOutcome{}, err
		}
		defer os.Remove(f)
		args = append(args, "-I", filepath.Dir(f), "--argstr", "pathsFile", f)
		ord.frames = []*frame{{paths: queue}}
	}

	var (
		out      walkOutcome
		protoErr error
	)
	prefix := []byte("trace: " + nonce + " ")
	onLine := func(line []byte) bool {
		body, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			return false
		}
		if protoErr != nil {
			return true
		}
		protoErr = e.records(body, ord, &out, s)
		return true
	}

	release, err := e.acquire(ctx)
	if err != nil {
		return out, err
	}
	res, runErr := e.run.Run(ctx, nix.Cmd{
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
	if res != nil {
		out.marked = markedPath(res.StderrTail, nonce)
	}
	out.culprit = ord.next()
	if out.culprit != nil {
		// The first top-level path of a walk is frames[0]; its index says
		// whether the walker was in the leading paths it reports one by one.
		top := ord.frames[0].i // past the recursed set the walker is inside, if any
		if len(ord.frames) > 1 {
			top--
		}
		out.exact = spec.mode == "details" || !chunkMode && top < fine
		out.remaining = ord.rest()
	}
	return out, runErr
}

// records handles one walker line: a list of records.
func (e *Evaluator) records(body []byte, ord *order, out *walkOutcome, s sink) error {
	var recs [][]json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		return fmt.Errorf("walker line %q: bad JSON", truncate(string(body), 120))
	}
	for _, rec := range recs {
		if err := e.record(rec, ord, out, s); err != nil {
			return err
		}
	}
	return nil
}

// record handles one walker record.
func (e *Evaluator) record(rec []json.RawMessage, ord *order, out *walkOutcome, s sink) error {
	if len(rec) < 2 {
		return fmt.Errorf("walker record %s: too short", rec)
	}
	var kind string
	_ = json.Unmarshal(rec[0], &kind)
	if kind == "c" {
		out.started = true
		var names []string
		if err := json.Unmarshal(rec[1], &names); err == nil && names != nil {
			paths := make([]Path, len(names))
			for i, n := range names {
				paths[i] = Path{n}
			}
			ord.frames = []*frame{{paths: paths}}
		}
		return nil
	}
	var p Path
	if err := json.Unmarshal(rec[1], &p); err != nil {
		return fmt.Errorf("walker record %s: bad path", rec[1])
	}
	if err := ord.finish(p); err != nil {
		return err
	}
	out.steps++
	switch kind {
	case "d":
		var drv string
		if len(rec) < 3 || json.Unmarshal(rec[2], &drv) != nil {
			return fmt.Errorf("walker record for %s: bad drvPath", p)
		}
		s.drv(p, drv)
	case "x":
		var alias string
		if len(rec) >= 3 {
			_ = json.Unmarshal(rec[2], &alias)
		}
		s.throw(p, alias)
	case "r":
		var names []string
		if len(rec) < 3 || json.Unmarshal(rec[2], &names) != nil {
			return fmt.Errorf("walker record for %s: bad names", p)
		}
		children := make([]Path, len(names))
		for i, n := range names {
			children[i] = append(slices.Clip(p), n)
		}
		ord.frames = append(ord.frames, &frame{paths: children})
	case "i":
		var d rawDetails
		if len(rec) < 3 || json.Unmarshal(rec[2], &d) != nil {
			return fmt.Errorf("walker record for %s: bad details", p)
		}
		s.details(p, &d)
	case "n":
	default:
		return fmt.Errorf("walker record of kind %q: unknown", kind)
	}
	return nil
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
