package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/basinix/basinix/nix"
)

// walkSpec is one walk over attributes: in chunk mode (paths == nil) the
// first process picks its share of the top-level names itself; later
// processes of the same walk get the explicit list of what is left.
type walkSpec struct {
	source
	system, config string
	mode           string // "walk" or "details"
	strict         bool
	write          bool // write the .drv files of the derivations it forces
	paths          []Path
	chunk, chunks  int
	// hold, when set, keeps the walk's last process alive after the walk,
	// for requests, until it is closed or hold ends.
	hold context.Context
	// idle, when set, holds waiting processes of the same evaluation: after
	// a death, what is left is asked of one of them, if there is one,
	// rather than of a new process that would import the set again. The
	// walk's rounds are also registered there, so that a walker with
	// nothing to do can take over half of what one has left.
	idle *idlePool
	// first, when set, is the waiting process the walk starts with.
	first *proc
	// deaths, when set, counts the processes the evaluation lost to errors
	// tryEval cannot catch, against Options.MaxDeaths.
	deaths *atomic.Int32
	// retired, when set, counts the processes that handed their list over
	// past the soft memory bound.
	retired *atomic.Int32
	// state, for a chunk walk, tells walkers that are done whether it
	// may yet have a list to take part of (see walkState).
	state *walkState
}

// sink receives what a walk finds. Calls come from one goroutine per walk;
// a sink shared between walks locks for itself.
type sink interface {
	// drv: p is a derivation; outPath is its first output's path, "" when
	// unknown.
	drv(p Path, drvPath, outPath string)
	// throw: tryEval caught an error; aliasDrv is the drvPath with aliases
	// on, "" when it fails then too.
	throw(p Path, aliasDrv string)
	details(p Path, d *nix.WalkDetails)
	fail(p Path, err *Error)
}

// errSetFailed wraps the error of a package set that does not evaluate at all.
type errSetFailed struct{ err *Error }

func (e *errSetFailed) Error() string { return "package set does not evaluate: " + e.err.Error() }

// walk runs spec to the end: whenever a process dies of an error tryEval
// cannot catch, of a time or of a memory limit, the attribute it was on is
// charged with the error and a new process carries on with what is left.
// With spec.hold, the last process is returned waiting for requests.
func (e *Evaluator) walk(ctx context.Context, spec walkSpec, s sink) (processes int, held *proc, err error) {
	queue := spec.paths
	chunkMode := queue == nil
	fine := 0
	var later []Path // what to walk after a suspect of eating memory is tried alone
	unattributed := 0
	died := false
	defer spec.state.settle() // over
	for {
		if !chunkMode && len(queue) == 0 {
			if len(later) == 0 {
				return processes, nil, nil
			}
			queue, later = later, nil
		}
		// A walk by names can be asked of a waiting walker (a chunk's
		// first process picks its names itself, so it is always new).
		var p *proc
		if !chunkMode {
			if p = spec.first; p == nil {
				p = spec.idle.take()
			}
		}
		spec.first = nil
		fast := e.fast(&spec, died)
		if p != nil {
			if _, err := p.ask(ctx, walkRequest{Mode: spec.mode, Paths: queue, Fine: fine, Fast: fast}, s); err != nil {
				if ctx.Err() != nil {
					return processes, nil, ctx.Err()
				}
				p = nil // gone: a new process does it
			}
		}
		if p == nil {
			processes++
			var err error
			if p, err = e.start(ctx, spec, chunkMode, queue, fine, fast, s); err != nil {
				return processes, nil, err
			}
		}
		spec.idle.running(p, true) // (a started one is already)
		if !chunkMode {
			spec.state.settle() // its list is known: the one it was given
		}
		chunkMode, fine = false, 0
		// A held process lives on after the walk (spec.hold), but not a
		// round of it that the walk gave up on.
		stopOnCancel := context.AfterFunc(ctx, p.cancel)
		parked := p.wait()
		stopOnCancel()
		// Between processes (or over): none to take part of the list
		// from, before it is no longer among the running ones.
		spec.state.unsettle()
		spec.idle.running(p, false)
		// A process that passed the soft memory bound handed the end of
		// its list over: a new one walks it.
		later = append(later, p.takeRetired()...)
		if parked && p.retiring.Load() {
			if spec.retired != nil {
				spec.retired.Add(1)
			}
			p.close()
			parked = false
			queue = nil
			continue
		}
		if parked {
			// Held, and done with its part.
			if len(later) == 0 {
				return processes, p, nil
			}
			p.close()
			queue = nil
			continue
		}
		out, err := p.outcome()
		if err == nil {
			queue = nil
			continue
		}
		if ctx.Err() != nil {
			return processes, nil, ctx.Err()
		}
		if errors.Is(err, nix.ErrWalkerLineTooLong) {
			return processes, nil, &errSetFailed{err: &Error{Message: nix.ErrWalkerLineTooLong.Error()}}
		}
		var nerr *nix.Error
		if !errors.As(err, &nerr) {
			return processes, nil, err
		}
		if why := nerr.MachineFault(); why != "" {
			// Not the package set's doing: nothing of it is a result.
			return processes, nil, fmt.Errorf("%w: %s: %s", ErrInfrastructure, why, nerr.Message)
		}
		if !out.started {
			// Died before the first attribute (of an error, or looping
			// or eating memory past the bounds): the set itself is broken.
			return processes, nil, &errSetFailed{err: e.toError(nerr, spec.src)}
		}
		died = true
		if spec.deaths != nil && int(spec.deaths.Add(1)) > e.opt.MaxDeaths {
			// Each death costs an import of the set: give up on the rest.
			given := &Error{Message: fmt.Sprintf("not evaluated: more than %d attributes of this evaluation died of errors tryEval cannot catch (abort, undefined variable, ...), and the rest was given up", e.opt.MaxDeaths)}
			// The one that died now, when known, gets its own error.
			var known Path
			switch {
			case out.exact:
				known = out.culprit
			case nerr.Kill == nix.KillNone:
				known = out.marked
			}
			if known != nil {
				s.fail(known, e.toError(nerr, spec.src))
			}
			for _, p := range append(append([]Path{out.culprit}, out.remaining...), later...) {
				if p != nil && !p.Equal(known) {
					s.fail(p, given)
				}
			}
			return processes, nil, nil
		}
		if out.culprit == nil {
			// Killed after the last attribute: nothing to blame and
			// nothing left; a kill in between is tried again, not forever.
			unattributed++
			if len(out.remaining) == 0 || unattributed > 2 {
				return processes, nil, fmt.Errorf("walk %s: %w", spec.system, err)
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
				s.fail(unreported[i], e.toError(nerr, spec.src))
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
		if nerr.Kill == nix.KillMemory && (out.steps > 0 || out.reused) {
			// Memory grows over a whole process: try the attribute alone
			// before blaming it.
			queue, later = []Path{out.culprit}, append(out.remaining, later...)
			continue
		}
		s.fail(out.culprit, e.toError(nerr, spec.src))
		queue = out.remaining
	}
}

// fast says whether spec's next process may walk fast (a group under
// one tryEval: see expr/walker.nix, which does so only in a walk that is
// not strict). It may until a process of the walk, or of the evaluation,
// has died: a fast walker's death in a drvPath (an aborting dependency,
// say, which often fails many attributes) is not named by its trace, and
// costs a walk of its group one record at a time to learn the culprit,
// while the exact walk names every death at once.
func (e *Evaluator) fast(spec *walkSpec, died bool) bool {
	return !e.exactWalks && !died && (spec.deaths == nil || spec.deaths.Load() == 0)
}

// walkBatch is how many top-level attributes the walker reports in one line.
const walkBatch = 256

// walkOutcome says where a dead process stopped.
type walkOutcome struct {
	started bool // the package set evaluated (the "c" record came)
	steps   int  // attributes finished
	reused  bool // the process had done other rounds before (its memory is theirs too)
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

// records handles one walker line of round r. It says whether the line
// was the walker's "w" (waiting for a request). The caller holds r.mu.
func records(recs []nix.WalkRecord, r *round) (waiting bool, err error) {
	for i := range recs {
		rec := &recs[i]
		if rec.Kind == nix.RecordWaiting {
			waiting = true
			continue
		}
		if r.cut && r.ord.next() == nil {
			// The rest of the list was taken by another walker, and
			// this one did not stop: what it says of it is not wanted.
			r.reached = true
			break
		}
		if err := record(rec, r.ord, &r.out, r.sink); err != nil {
			return false, err
		}
	}
	return waiting, nil
}

// record handles one walker record.
func record(rec *nix.WalkRecord, ord *order, out *walkOutcome, s sink) error {
	if rec.Kind == nix.RecordImported {
		out.started = true
		if rec.Names != nil {
			paths := make([]Path, len(rec.Names))
			for i, n := range rec.Names {
				paths[i] = Path{n}
			}
			ord.frames = []*frame{{paths: paths}}
		}
		return nil
	}
	p := Path(rec.Path)
	if err := ord.finish(p); err != nil {
		return err
	}
	out.steps++
	switch rec.Kind {
	case nix.RecordDrv:
		s.drv(p, rec.DrvPath, rec.OutPath)
	case nix.RecordThrow:
		s.throw(p, rec.DrvPath)
	case nix.RecordRecurse:
		children := make([]Path, len(rec.Names))
		for i, n := range rec.Names {
			children[i] = append(slices.Clip(p), n)
		}
		ord.frames = append(ord.frames, &frame{paths: children})
	case nix.RecordDetails:
		s.details(p, rec.Details)
	}
	return nil
}

// toError turns a Nix error into an evaluation error pinned inside src,
// its message free of the server's paths (see relativeText).
func (e *Evaluator) toError(nerr *nix.Error, src string) *Error {
	out := &Error{Message: e.relativeText(nerr.Message, src)}
	if nerr.Kill == nix.KillSilence || nerr.Kill == nix.KillMemory || nerr.Kill == nix.KillTimeout {
		out.Message = "evaluation " + out.Message
	}
	if pos, ok := nerr.PositionUnder(src); ok {
		out.File, out.Line = pos.File, pos.Line
	}
	return out
}

// relativeText makes the paths Nix names in a message relative to the
// checkout ("anonymous function at pkgs/foo/package.nix:1:1 called
// without …"), and names basinix's own files "<basinix>": messages reach
// public check runs, and where the server keeps its data is nobody's
// business.
func (e *Evaluator) relativeText(msg, src string) string {
	src = strings.TrimSuffix(src, "/")
	msg = strings.ReplaceAll(msg, src+"/", "")
	msg = strings.ReplaceAll(msg, src, ".")
	return strings.ReplaceAll(msg, strings.TrimSuffix(e.opt.TempDir, "/"), "<basinix>")
}

// relativePosition turns meta.position ("/abs/src/pkgs/foo.nix:12") into a
// position relative to the checkout, "" when it is outside the checkout
// (an annotation can only point into the repository).
func relativePosition(pos, src string) string {
	rel, ok := strings.CutPrefix(pos, strings.TrimSuffix(src, "/")+"/")
	if !ok {
		return ""
	}
	return rel
}
