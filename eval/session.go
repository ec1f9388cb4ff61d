package eval

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Session is an evaluation whose last walker processes wait after the walk
// (see Evaluator.Open): details of its attributes are asked of them, which
// already imported the set and evaluated the attributes, instead of new
// processes. Where a process is gone (it died, or its Nix cannot read
// requests from a pipe), new processes do the work, so answers are the
// same either way.
type Session struct {
	e *Evaluator
	source
	system    string
	ev        *Evaluation
	idle      *idlePool    // the waiting processes
	handovers atomic.Int32 // times a walker took over the end of another's list
}

// Evaluation returns the session's evaluation.
func (s *Session) Evaluation() *Evaluation { return s.ev }

// Details is Evaluator.Details (without instantiating: the processes are
// read-only) of attributes of this evaluation.
func (s *Session) Details(ctx context.Context, paths []Path, aliases bool) (map[string]*Details, error) {
	col := &detailsCollector{src: s.src, out: map[string]*Details{}}
	if _, err := s.walk(ctx, walkRequest{Mode: "details", Aliases: aliases, Paths: paths}, col); err != nil {
		return nil, fmt.Errorf("details for %s: %w", s.system, err)
	}
	return col.out, nil
}

// Close tells the session's processes to exit, without waiting for them.
func (s *Session) Close() {
	for p := s.idle.take(); p != nil; p = s.idle.take() {
		p.close()
	}
}

// walk has req done by the waiting processes, each the paths it walked
// (others are shared out), and by new processes what they could not finish.
// It returns the number of new processes.
func (s *Session) walk(ctx context.Context, req walkRequest, sink sink) (int, error) {
	// The processes are taken for the time of the request: a concurrent
	// one finds none and uses new processes.
	var live []*proc
	for p := s.idle.take(); p != nil; p = s.idle.take() {
		live = append(live, p)
	}
	// Each process gets the paths it walked, up to its fair share (its
	// values are evaluated already, but a process that has many would
	// finish late); the others go to the least busy.
	parts := make([][]Path, len(live))
	var rest, spill []Path
	fair := (len(req.Paths) + len(live) - 1) / max(1, len(live))
	for _, path := range req.Paths {
		if len(live) == 0 {
			rest = append(rest, path)
			continue
		}
		i := slices.IndexFunc(live, func(p *proc) bool { return p.names[path[0]] })
		if i >= 0 && len(parts[i]) < fair {
			parts[i] = append(parts[i], path)
			continue
		}
		spill = append(spill, path)
	}
	for _, path := range spill {
		least := 0
		for i := range live {
			if len(parts[i]) < len(parts[least]) {
				least = i
			}
		}
		parts[least] = append(parts[least], path)
	}

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range live {
		if len(parts[i]) == 0 {
			s.idle.put(p)
			continue
		}
		g.Go(func() error {
			r := req
			r.Paths = parts[i]
			start := time.Now()
			unfinished, err := p.request(gctx, r, sink)
			s.e.log.Debug().Str("mode", r.Mode).Bool("aliases", r.Aliases).Int("paths", len(r.Paths)).Int("unfinished", len(unfinished)).
				Err(err).Dur("took", time.Since(start)).Msg("asked a waiting walker")
			if err == nil {
				s.idle.put(p)
				return nil
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			rest = append(rest, unfinished...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if len(rest) == 0 {
		return 0, nil
	}
	// What no waiting process finished, new ones do, finding exactly what
	// killed a process the usual way.
	return s.e.walkParts(ctx, walkSpec{source: s.source, system: s.system, config: s.e.config(req.Aliases), mode: req.Mode, paths: rest}, sink)
}

// ownerSink passes records on, noting the top-level names of the
// derivations a walk saw. A process's rounds come one after the other, so
// it needs no lock.
type ownerSink struct {
	sink
	names map[string]bool
}

func (o *ownerSink) drv(p Path, drvPath, outPath string) {
	o.names[p[0]] = true
	o.sink.drv(p, drvPath, outPath)
}
func (o *ownerSink) throw(p Path, aliasDrv string) {
	o.names[p[0]] = true
	o.sink.throw(p, aliasDrv)
}
