package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app/commands"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// Job kinds. A PR revision's review is a row of its own table (revisions);
// everything else the server does is one of these rows first.
// The command worker's kinds are commands.Kind*.
const (
	jobBranchTip    = "branch-tip"    // a tracked branch's new tip, evaluated and recorded
	jobBranchBuilds = "branch-builds" // the builds a recorded tip asks for
	jobPushReview   = "push-review"   // a recorded tip's push revision, queued
	jobInstallation = "installation"  // an installation's open PRs, queued
	jobAnnounce     = "announce"      // a new revision's queued check run
	jobRestart      = "restart"       // a build page's "build again"
)

// registerJobs tells the runner how the pipeline's jobs run, and how many
// of each at once: builds and requested builds mostly wait for the
// builder pool, which bounds the machines' work itself.
func (p *pipeline) registerJobs() {
	r := p.jobs
	r.handle(commands.KindCommand, 4, p.cmds.RunCommands)
	r.handle(commands.KindRequested, max(2, p.cfg.Server.Concurrent), p.cmds.RunRequested)
	r.handle(jobBranchTip, 2, p.runBranchTip)
	r.handle(jobBranchBuilds, 64, p.runBranchBuilds)
	r.handle(jobPushReview, 2, p.runPushReview)
	r.handle(jobInstallation, 2, p.runInstallation)
	r.handle(jobAnnounce, 8, p.runAnnounce)
	r.handle(commands.KindDiffoscope, 1, p.cmds.RunDiffoscope)
	r.handle(jobRestart, 4, p.runRestart)
}

// jobKind is how the runner carries out a kind of job.
type jobKind struct {
	run func(ctx context.Context, j *store.Job) error
	// limit is how many of the kind run at once.
	limit int
}

// jobStore is the job table the runner works from.
type jobStore interface {
	AddJob(ctx context.Context, j store.NewJob, done ...store.StepDone) (int64, error)
	TakeJob(ctx context.Context, busy []string) (*store.Job, error)
	FinishJob(ctx context.Context, id int64, msg string) error
	RetryJob(ctx context.Context, id int64, at time.Time, msg string) error
	RequeueJobs(ctx context.Context) (int64, error)
	NextJobAt(ctx context.Context) (time.Time, error)
}

// jobRunner takes jobs from the store and runs them, each kind within its
// limit. A job's error decides its row: the machine's or GitHub's fault is
// tried again later (a few times, waits doubling), any other fails it. A
// job stopped by the server stopping stays running in the store and is
// queued again at the next start.
type jobRunner struct {
	st    jobStore
	log   zerolog.Logger
	kinds map[string]jobKind
	wake  chan struct{}
	// retryBase is the first wait before a job is tried again.
	retryBase time.Duration

	mu      sync.Mutex
	running map[string]int // by kind; guarded by mu
}

// maxJobAttempts is how many times a job is taken before a fault that
// lasts fails it.
const maxJobAttempts = 8

// newJobRunner returns a runner whose first retry waits retryBase.
func newJobRunner(st jobStore, retryBase time.Duration, log zerolog.Logger) *jobRunner {
	return &jobRunner{st: st, log: log, kinds: map[string]jobKind{}, wake: make(chan struct{}, 1), retryBase: retryBase, running: map[string]int{}}
}

// handle registers how jobs of kind run.
func (r *jobRunner) handle(kind string, limit int, run func(ctx context.Context, j *store.Job) error) {
	r.kinds[kind] = jobKind{run: run, limit: max(1, limit)}
}

// add records a job and wakes the runner: the job is in the store before
// anything is done about it.
func (r *jobRunner) add(ctx context.Context, j store.NewJob, done ...store.StepDone) error {
	if _, ok := r.kinds[j.Kind]; !ok {
		return fmt.Errorf("add job: unknown kind %q", j.Kind)
	}
	if _, err := r.st.AddJob(ctx, j, done...); err != nil {
		return err
	}
	r.poke()
	return nil
}

func (r *jobRunner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run resumes the jobs a stopped server left unfinished and runs jobs
// until ctx ends; it returns once every job it started has returned.
func (r *jobRunner) Run(ctx context.Context) error {
	if n, err := r.st.RequeueJobs(ctx); err != nil {
		return err
	} else if n > 0 {
		r.log.Info().Int64("jobs", n).Msg("resuming unfinished jobs")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		for {
			j, err := r.st.TakeJob(ctx, r.busy())
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error().Err(err).Msg("taking a job")
				}
				break
			}
			kind, ok := r.kinds[j.Kind]
			if !ok { // a kind this version does not know: an older or newer binary's
				r.finish(ctx, j, fmt.Errorf("unknown job kind %q", j.Kind))
				continue
			}
			r.mu.Lock()
			r.running[j.Kind]++
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := r.runOne(ctx, kind, j)
				if ctx.Err() == nil {
					r.finish(ctx, j, err)
				}
				r.mu.Lock()
				r.running[j.Kind]--
				r.mu.Unlock()
				r.poke()
			}()
		}
		wait := time.Minute
		if at, err := r.st.NextJobAt(ctx); err == nil && !at.IsZero() {
			wait = min(wait, max(time.Until(at), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-time.After(wait):
		}
	}
}

// runOne runs a job, a panic in it becoming its error.
func (r *jobRunner) runOne(ctx context.Context, kind jobKind, j *store.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job %d (%s) panicked: %v", j.ID, j.Kind, p)
		}
	}()
	return kind.run(ctx, j)
}

// busy returns the kinds running at their limit.
func (r *jobRunner) busy() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, k := range r.kinds {
		if r.running[name] >= k.limit {
			out = append(out, name)
		}
	}
	return out
}

// finish records how a job ended.
func (r *jobRunner) finish(ctx context.Context, j *store.Job, err error) {
	log := r.log.With().Int64("job", j.ID).Str("kind", j.Kind).Int("attempt", j.Attempts).Logger()
	var serr error
	switch {
	case err == nil:
		serr = r.st.FinishJob(ctx, j.ID, "")
	case transient(err) && j.Attempts < maxJobAttempts:
		wait := min(r.retryBase<<(j.Attempts-1), 10*time.Minute)
		log.Warn().Err(err).Dur("in", wait).Msg("job failed for the machine's or GitHub's fault: trying again later")
		serr = r.st.RetryJob(ctx, j.ID, time.Now().Add(wait), err.Error())
	default:
		log.Error().Err(err).Msg("job failed")
		serr = r.st.FinishJob(ctx, j.ID, err.Error())
	}
	if serr != nil {
		log.Error().Err(serr).Msg("recording a job's end")
	}
}

// transient reports whether err is a fault of the machine or of GitHub
// (5xx, rate limits, no answer, a busy database) that says nothing of the
// work: the job is tried again.
func transient(err error) bool {
	var ge *github.ErrorResponse
	var rl *github.RateLimitError
	var al *github.AbuseRateLimitError
	var te *ghinstallation.HTTPError // creating an installation token
	var ne net.Error
	switch {
	case errors.Is(err, review.ErrInfrastructure), errors.As(err, &rl), errors.As(err, &al), errors.As(err, &ne):
		return true
	case errors.As(err, &ge) && ge.Response != nil:
		return retryableStatus(ge.Response.StatusCode)
	case errors.As(err, &te):
		return te.Response == nil || retryableStatus(te.Response.StatusCode)
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

func retryableStatus(code int) bool { return code >= 500 || code == http.StatusTooManyRequests }
