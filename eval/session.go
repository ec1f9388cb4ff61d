package eval

import (
	"context"
	"fmt"
	"sync"
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
	e           *Evaluator
	src, system string
	ev          *Evaluation

	mu    sync.Mutex
	procs []*proc        // guarded by mu; nil where none waits
	owner map[string]int // top-level name → index of the process that walked it
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
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.close() }()
		}
	}
	wg.Wait()
}

// walk has req done by the waiting processes, each the paths it walked
// (others are shared out), and by new processes what they could not finish.
// It returns the number of new processes.
func (s *Session) walk(ctx context.Context, req walkRequest, sink sink) (int, error) {
	s.mu.Lock()
	var live []int
	for i, p := range s.procs {
		if p != nil {
			live = append(live, i)
		}
	}
	// Each process gets the paths it walked, up to its fair share (its
	// values are evaluated already, but a process that has many would
	// finish late); the others go to the least busy.
	parts := map[int][]Path{}
	procs := map[int]*proc{}
	var rest, spill []Path
	fair := (len(req.Paths) + len(live) - 1) / max(1, len(live))
	for _, p := range req.Paths {
		if len(live) == 0 {
			rest = append(rest, p)
			continue
		}
		if i, ok := s.owner[p[0]]; ok && s.procs[i] != nil && len(parts[i]) < fair {
			parts[i] = append(parts[i], p)
			continue
		}
		spill = append(spill, p)
	}
	for _, p := range spill {
		least := live[0]
		for _, i := range live {
			if len(parts[i]) < len(parts[least]) {
				least = i
			}
		}
		parts[least] = append(parts[least], p)
	}
	for i := range parts {
		procs[i] = s.procs[i]
	}
	s.mu.Unlock()

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i, part := range parts {
		g.Go(func() error {
			r := req
			r.Paths = part
			start := time.Now()
			unfinished, err := procs[i].request(gctx, r, sink)
			s.e.log.Debug().Str("mode", r.Mode).Bool("aliases", r.Aliases).Int("paths", len(part)).Int("unfinished", len(unfinished)).
				Err(err).Dur("took", time.Since(start)).Msg("asked a waiting walker")
			if err == nil {
				return nil
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			s.mu.Lock()
			if s.procs != nil {
				s.procs[i] = nil
			}
			s.mu.Unlock()
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
	return s.e.walkParts(ctx, walkSpec{src: s.src, system: s.system, config: s.e.config(req.Aliases), mode: req.Mode, paths: rest}, sink)
}

// ownerSink passes records on, noting the top-level names a walk saw.
// Each walk has its own, so it needs no lock.
type ownerSink struct {
	sink
	names map[string]bool
}

func (o *ownerSink) drv(p Path, drvPath string) { o.names[p[0]] = true; o.sink.drv(p, drvPath) }
func (o *ownerSink) throw(p Path, aliasDrv string) {
	o.names[p[0]] = true
	o.sink.throw(p, aliasDrv)
}
