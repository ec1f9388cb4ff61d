package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app/commands"
	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// pipeline moves PR revisions from webhook to published check runs. The
// store is the truth: revisions are queued there, taken from there, and a
// restart requeues what was running.
type pipeline struct {
	cfg     Config
	st      pipelineStore
	rv      *review.Reviewer
	gh      githubapp.ClientCreator
	log     zerolog.Logger
	wake    chan struct{}
	every   time.Duration // progress updates at most this often
	logURL  func(log string) string
	metrics *metrics

	jobs    *jobRunner
	cmds    *commands.Worker
	mu      sync.Mutex
	running map[int64]context.CancelFunc // guarded by mu

	creating [64]sync.Mutex // check run creation, striped by revision id
	progress progressBoard  // the builds of revisions under way, for the PR page
}

// checksFor returns the check runs publisher of rev.
func (p *pipeline) checksFor(gh *github.Client, rev *store.Revision) *publish.Checks {
	return publish.NewChecks(p.st, gh, p.log, publish.Revision{ID: rev.ID, Attempt: rev.Attempt, Repo: rev.Repo, Head: rev.HeadSHA},
		p.detailsURL(rev), &p.creating[rev.ID%int64(len(p.creating))])
}

var (
	_ handlers.Commands      = (*pipeline)(nil)
	_ handlers.Reviews       = (*pipeline)(nil)
	_ handlers.Reruns        = (*pipeline)(nil)
	_ handlers.Branches      = (*pipeline)(nil)
	_ handlers.Installations = (*pipeline)(nil)
)

// Rerun implements handlers.Reruns.
func (p *pipeline) Rerun(ctx context.Context, repo, head string, rebuildFailed bool) error {
	n, err := p.st.Rerun(ctx, repo, head, rebuildFailed)
	if err != nil {
		return err
	}
	p.log.Info().Str("repo", repo).Str("head", head).Int64("revisions", n).Bool("rebuildFailed", rebuildFailed).Msg("re-run queued")
	p.poke()
	return nil
}

// Installed implements handlers.Installations: the installation's open
// PRs are queued by a job.
func (p *pipeline) Installed(ctx context.Context, id int64) error {
	return p.jobs.add(ctx, store.NewJob{Kind: jobInstallation, Payload: installation{ID: id}})
}

type installation struct{ ID int64 }

func (p *pipeline) runInstallation(ctx context.Context, j *store.Job) error {
	var in installation
	if err := j.Decode(&in); err != nil {
		return err
	}
	n, err := p.reconcileInstallation(ctx, in.ID)
	p.log.Info().Int64("installation", in.ID).Int("queued", n).Msg("installation reconciled")
	return err
}

// Evaluate implements handlers.Branches: the tip is recorded as a job, one
// branch's tips taken in push order.
func (p *pipeline) Evaluate(ctx context.Context, push handlers.BranchPush) error {
	p.visibility(ctx, push.Repo, push.Private)
	return p.jobs.add(ctx, store.NewJob{Kind: jobBranchTip, Serial: branchSerial(push.Repo, push.Branch), Payload: push})
}

func (p *pipeline) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Commands implements handlers.Commands: the comment's commands become a
// job, carried out by the command worker.
func (p *pipeline) Commands(ctx context.Context, req handlers.CommandRequest) error {
	return p.jobs.add(ctx, store.NewJob{Kind: commands.KindCommand, Payload: req})
}

// Review implements handlers.Reviews.
func (p *pipeline) Review(ctx context.Context, pr handlers.PullRequest) error {
	_, err := p.queue(ctx, pr)
	return err
}

// queue adds a revision for the PR's head unless it is known, supersedes
// the PR's older ones, and reports whether it is new.
func (p *pipeline) queue(ctx context.Context, pr handlers.PullRequest) (bool, error) {
	p.visibility(ctx, pr.Repo, pr.Private)
	return p.queueRevision(ctx, store.Revision{
		Repo: pr.Repo, InstallationID: pr.InstallationID, CloneURL: pr.CloneURL, PR: pr.Number, HeadSHA: pr.HeadSHA, BaseRef: pr.BaseRef,
		Author: pr.Author, Title: pr.Title,
	})
}

// queueRevision adds rev unless it is known, supersedes the older ones of
// its PR (or pushed branch), and reports whether it is new.
func (p *pipeline) queueRevision(ctx context.Context, rev store.Revision) (bool, error) {
	id, fresh, superseded, err := p.st.AddRevision(ctx, rev)
	if err != nil {
		return false, err
	}
	p.stop(superseded)
	if fresh {
		p.log.Info().Str("repo", rev.Repo).Int("pr", rev.PR).Str("branch", rev.Branch).Int64("revision", id).Ints64("superseded", superseded).Msg("revision queued")
		p.poke()
		p.announce(ctx, id)
	}
	return fresh, nil
}

// announce has a new revision's `basinix / eval` check run created,
// queued, at once: the PR shows basinix has it long before a worker takes
// it. The worker creates the check run itself if this has not happened
// yet (the store decides who does).
func (p *pipeline) announce(ctx context.Context, id int64) {
	if err := p.jobs.add(ctx, store.NewJob{Kind: jobAnnounce, Payload: announcement{Revision: id}}); err != nil {
		p.log.Warn().Err(err).Int64("revision", id).Msg("announcing a revision")
	}
}

type announcement struct{ Revision int64 }

// runAnnounce creates the announced revision's check run, unless the
// revision is no longer waiting.
func (p *pipeline) runAnnounce(ctx context.Context, j *store.Job) error {
	var a announcement
	if err := j.Decode(&a); err != nil {
		return err
	}
	rev, err := p.st.Revision(ctx, a.Revision)
	if err != nil {
		return err
	}
	if rev.State != store.Queued {
		return nil
	}
	gh, err := p.gh.NewInstallationClient(rev.InstallationID)
	if err != nil {
		return fmt.Errorf("announce revision %d: %w", rev.ID, err)
	}
	return p.checksFor(gh, rev).Open(ctx, report.EvalCheckName, "queued")
}

// detailsURL is the web page of a revision's PR, or of its pushed branch.
func (p *pipeline) detailsURL(rev *store.Revision) string {
	if rev.Push() {
		return p.branchURL(rev.Repo, rev.Branch)
	}
	return p.prURL(rev.Repo, rev.PR)
}

// branchURL is the web page of a tracked branch's pushes.
func (p *pipeline) branchURL(repo, branch string) string {
	return strings.TrimSuffix(p.cfg.Server.PublicURL, "/") + "/branch/" + repo + "/" + url.PathEscape(branch)
}

// prURL is the web page of a PR.
func (p *pipeline) prURL(repo string, pr int) string {
	return strings.TrimSuffix(p.cfg.Server.PublicURL, "/") + fmt.Sprintf("/pr/%s/%d", repo, pr)
}

// visibility records whether a repository is private, for the web pages.
func (p *pipeline) visibility(ctx context.Context, repo string, private bool) {
	if err := p.st.PutRepoPrivate(ctx, repo, private); err != nil {
		p.log.Warn().Err(err).Msg("recording a repository's visibility")
	}
}

// Closed implements handlers.Reviews.
func (p *pipeline) Closed(ctx context.Context, repo string, number int, merged bool) error {
	ids, err := p.st.ClosePR(ctx, repo, number, merged)
	if err != nil {
		return err
	}
	p.stop(ids)
	return nil
}

// Withdraw implements handlers.Reviews.
func (p *pipeline) Withdraw(ctx context.Context, repo string, number int) error {
	ids, err := p.st.CancelPR(ctx, repo, number)
	if err != nil {
		return err
	}
	p.stop(ids)
	return nil
}

// stop cancels the running work of revisions; their builds that no other
// review wants stop too.
func (p *pipeline) stop(ids []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if cancel, ok := p.running[id]; ok {
			cancel()
		}
	}
}

// Run works on queued revisions, Concurrent at once, until ctx ends.
func (p *pipeline) Run(ctx context.Context) error {
	if n, err := p.st.Requeue(ctx); err != nil {
		return err
	} else if n > 0 {
		p.log.Info().Int64("revisions", n).Msg("resuming unfinished revisions")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.reconcileLoop(ctx, max(p.cfg.Server.ReconcileEvery, time.Minute))
	}()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	p.republish(ctx)
	for {
		for p.free() {
			rev, err := p.st.TakeRevision(ctx)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				p.log.Error().Err(err).Msg("taking a revision")
				break
			}
			rctx, cancel := context.WithCancel(ctx)
			p.mu.Lock()
			p.running[rev.ID] = cancel
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.process(rctx, rev)
				cancel()
				p.mu.Lock()
				delete(p.running, rev.ID)
				p.mu.Unlock()
				p.poke()
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-tick.C:
			p.republish(ctx)
		}
	}
}

func (p *pipeline) free() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.running) < max(1, p.cfg.Server.Concurrent)
}

// process reviews one revision and publishes its check runs. Its errors
// end up in the revision and its check runs, never in a panic.
func (p *pipeline) process(ctx context.Context, rev *store.Revision) {
	log := p.log.With().Str("repo", rev.Repo).Int("pr", rev.PR).Str("branch", rev.Branch).Int64("revision", rev.ID).Str("head", rev.HeadSHA).Logger()
	bg := context.WithoutCancel(ctx) // publishing the end survives the cancel
	gh, err := p.gh.NewInstallationClient(rev.InstallationID)
	if err != nil {
		p.fail(bg, rev, nil, fmt.Errorf("github client for installation %d: %w", rev.InstallationID, err), log)
		return
	}
	c := p.checksFor(gh, rev)
	if err := c.Publish(ctx, report.EvalCheckName, report.CheckRun{Title: "evaluating", Summary: "Evaluating the base and the merged head."}); err != nil {
		p.fail(bg, rev, c, err, log)
		return
	}
	p.recordFiles(ctx, gh, rev, log)
	pend, err := p.rv.Evaluate(ctx, review.Request{Repo: rev.CloneURL, Base: rev.BaseRef, Head: rev.HeadSHA, Systems: p.cfg.Systems, Build: true,
		FewerRebuildsFirst: true, RebuildFailed: rev.RebuildFailed, FreshEval: rev.FreshEval})
	if err == nil {
		defer pend.Close()
		p.evaluated(ctx, rev, c, pend.Report(), log)
		defer p.progress.drop(rev.ID)
		stop := p.followBuilds(ctx, rev, c, pend, log)
		var rep *report.Report
		rep, err = pend.Build(ctx)
		stop()
		if err == nil {
			p.finishReview(ctx, rev, c, rep, log)
			return
		}
	}
	if ctx.Err() != nil {
		p.superseded(bg, rev, c, log)
		return
	}
	p.fail(bg, rev, c, err, log)
}

// evaluated publishes a revision's evaluation (its final eval check run)
// and opens its build check runs. Failures here are retried with the
// final results.
func (p *pipeline) evaluated(ctx context.Context, rev *store.Revision, c *publish.Checks, rep *report.Report, log zerolog.Logger) {
	if err := c.Final(ctx, report.EvalCheckName, report.EvalCheckRun(rep, c.Details())); err != nil {
		log.Warn().Err(err).Msg("publishing the evaluation")
	}
	if rep.Jobs {
		if err := p.openJobs(ctx, rev, c, rep, log); err != nil {
			log.Warn().Err(err).Msg("creating the job check runs")
		}
	} else {
		for _, s := range p.cfg.Systems {
			if err := c.Open(ctx, report.BuildCheckName(s), "in_progress"); err != nil {
				log.Warn().Err(err).Msg("creating the build check runs")
			}
		}
	}
	if err := p.st.FinishRevision(ctx, rev.ID, store.Building, nil, ""); err != nil {
		log.Warn().Err(err).Msg("recording the revision's state")
	}
}

// followBuilds publishes a revision's build progress while its builds
// run, at most every p.every, until the returned stop is called.
func (p *pipeline) followBuilds(ctx context.Context, rev *store.Revision, c *publish.Checks, pend *review.Pending, log zerolog.Logger) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last time.Time
		var shown build.Progress
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pr, ok := pend.Progress()
			if !ok || pr.Done == pr.Total || time.Since(last) < p.every || reflect.DeepEqual(pr, shown) {
				continue
			}
			last, shown = time.Now(), pr
			p.progress.set(rev.ID, pr)
			if rep := pend.Report(); rep.Jobs {
				if err := c.Publish(ctx, report.JobsCheckName, jobsProgress(pr, p.liveURL)); err != nil {
					log.Warn().Err(err).Msg("progress update")
				}
				continue
			}
			for _, s := range p.cfg.Systems {
				if err := c.Publish(ctx, report.BuildCheckName(s), report.BuildProgressCheckRun(pr, p.liveURL)); err != nil {
					log.Warn().Err(err).Msg("progress update")
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// finishReview stores a reviewed revision and publishes its final check runs.
func (p *pipeline) finishReview(ctx context.Context, rev *store.Revision, c *publish.Checks, rep *report.Report, log zerolog.Logger) {
	bg := context.WithoutCancel(ctx)
	p.metrics.observe(rep)
	if err := review.FailingSince(bg, p.st, rev, rep); err != nil {
		log.Warn().Err(err).Msg("naming since when packages fail")
	}
	// The review is stored before the final check runs are sent: what
	// GitHub does not get now is sent again later, never lost.
	if err := review.SaveReport(bg, p.st, rev.ID, rep); err != nil {
		p.fail(bg, rev, c, err, log)
		return
	}
	if err := p.publishFinal(bg, rev, c, rep); err != nil {
		log.Warn().Err(err).Msg("publishing the results: will try again")
		return
	}
	log.Info().Bool("breaks", rep.Breaks()).Bool("evalBroken", rep.EvalBroken()).Msg("revision reviewed")
}

// publishFinal sends a reviewed revision's final check runs (those not sent
// before) and labels, then marks it done.
func (p *pipeline) publishFinal(ctx context.Context, rev *store.Revision, c *publish.Checks, rep *report.Report) error {
	if err := c.Final(ctx, report.EvalCheckName, report.EvalCheckRun(rep, c.Details())); err != nil {
		return err
	}
	if rep.Jobs {
		if err := p.publishJobs(ctx, rev, c, rep); err != nil {
			return err
		}
		return p.st.FinishRevision(ctx, rev.ID, store.Done, nil, "")
	}
	var plan maintainerPlan
	if !rev.Push() {
		want, managed := publish.RebuildLabels(p.cfg.Server.RebuildLabels, rep)
		plan = planMaintainers(rep, rev.Author, p.headFiles(ctx, rev), p.cfg.Server.Maintainers)
		maps.Copy(want, plan.Labels)
		if err := publish.SyncLabels(ctx, c.Client(), rev.Repo, rev.PR, want, managed); err != nil {
			return err
		}
	}
	opt := p.markdown(rev)
	for _, s := range p.cfg.Systems {
		if err := c.Final(ctx, report.BuildCheckName(s), report.BuildCheckRun(rep, s, opt, c.Details()), publish.RebuildAction); err != nil {
			return err
		}
	}
	if !rev.Push() && p.cfg.Server.Maintainers.RequestReviews {
		// A courtesy, not a verdict: a failure is logged, never retried.
		log := p.log.With().Str("repo", rev.Repo).Int("pr", rev.PR).Int64("revision", rev.ID).Logger()
		if plan.TooMany {
			log.Info().Int("maintainers", len(plan.Maintainers)).Msg("too many maintainers to ask for reviews")
		} else if err := publish.RequestReviews(ctx, c.Client(), rev.Repo, rev.PR, plan.Maintainers, log); err != nil {
			log.Warn().Err(err).Msg("asking the maintainers for reviews")
		}
	}
	return p.st.FinishRevision(ctx, rev.ID, store.Done, nil, "")
}

// republish sends again the final check runs of reviewed revisions that
// GitHub did not get (it was down, or the server stopped meanwhile).
func (p *pipeline) republish(ctx context.Context) {
	revs, err := p.st.RevisionsIn(ctx, store.Publishing)
	if err != nil {
		p.log.Error().Err(err).Msg("revisions to publish")
		return
	}
	for _, rev := range revs {
		log := p.log.With().Str("repo", rev.Repo).Int("pr", rev.PR).Int64("revision", rev.ID).Logger()
		rep, err := review.LoadReport(ctx, p.st, rev)
		if err == nil && rep == nil {
			err = errors.New("no report")
		}
		if err != nil {
			p.fail(ctx, rev, nil, fmt.Errorf("stored review: %w", err), log)
			continue
		}
		gh, err := p.gh.NewInstallationClient(rev.InstallationID)
		if err == nil {
			err = p.publishFinal(ctx, rev, p.checksFor(gh, rev), rep)
		}
		if err != nil {
			log.Warn().Err(err).Msg("publishing the results: will try again")
			continue
		}
		log.Info().Msg("results published")
		p.poke() // a re-run asked meanwhile may be queued now
	}
}

// superseded completes the check runs of a revision whose work was
// stopped by a newer push or a closed PR.
func (p *pipeline) superseded(ctx context.Context, rev *store.Revision, c *publish.Checks, log zerolog.Logger) {
	cur, err := p.st.Revision(ctx, rev.ID)
	if err != nil || cur.State != store.Superseded && cur.State != store.Cancelled {
		// The server is stopping: the revision stays unfinished in the
		// store and its check runs in progress, to be resumed at start.
		log.Info().Msg("revision interrupted; resumed at the next start")
		return
	}
	why := cur.State
	log.Info().Str("state", why).Msg("revision stopped")
	cr := report.CheckRun{Title: "not finished: " + why, Summary: "This revision's review stopped: it was " + why + ".", Conclusion: "cancelled"}
	for _, name := range p.openChecks(ctx, rev.ID, false) {
		if err := c.Publish(ctx, name, cr); err != nil {
			log.Warn().Err(err).Str("check", name).Msg("completing a stopped check run")
		}
	}
}

// fail records an infrastructure failure in the revision and in its check
// runs (neutral: it is not the PR's fault).
func (p *pipeline) fail(ctx context.Context, rev *store.Revision, c *publish.Checks, err error, log zerolog.Logger) {
	if p.retryLater(ctx, rev, c, err, log) {
		return
	}
	log.Error().Err(err).Msg("revision failed")
	if ferr := p.st.FinishRevision(ctx, rev.ID, store.Failed, nil, err.Error()); ferr != nil {
		log.Error().Err(ferr).Msg("recording the failure")
	}
	if c == nil {
		return
	}
	cr := report.CheckRun{Title: "basinix could not review this", Summary: "```\n" + err.Error() + "\n```\n", Conclusion: "neutral"}
	for _, name := range p.openChecks(ctx, rev.ID, true) {
		if perr := c.Publish(ctx, name, cr); perr != nil {
			log.Warn().Err(perr).Str("check", name).Msg("publishing the failure")
		}
	}
}

// maxMachineRetries is how many times a revision that failed for the
// machine's fault is queued again before it fails for good.
const maxMachineRetries = 5

// retryLater queues a revision that failed for the machine's fault again,
// for after a wait that doubles with each failure, and says so in its open
// check runs (they stay in progress: the change is not at fault). It
// reports whether it did: false for any other error, or when the retries
// are used up.
func (p *pipeline) retryLater(ctx context.Context, rev *store.Revision, c *publish.Checks, err error, log zerolog.Logger) bool {
	if !errors.Is(err, review.ErrInfrastructure) || rev.MachineFailures >= maxMachineRetries {
		return false
	}
	wait := min(p.cfg.Server.MachineRetry<<rev.MachineFailures, 30*time.Minute)
	at := time.Now().Add(wait)
	queued, serr := p.st.RetryLater(ctx, rev.ID, at, err.Error())
	if serr != nil {
		log.Error().Err(serr).Msg("queueing a revision again")
		return false
	}
	if !queued { // superseded or cancelled meanwhile: nothing to retry
		return true
	}
	log.Warn().Err(err).Dur("in", wait).Int("failures", rev.MachineFailures+1).Msg("revision failed for the machine's fault: trying again later")
	time.AfterFunc(wait, p.poke)
	if c == nil {
		return true
	}
	cr := report.CheckRun{Title: "the machine's fault: trying again", Summary: fmt.Sprintf(
		"basinix could not finish this review for a fault of its machine, not of the change:\n\n%s\nIt tries again at %s (attempt %d of %d).",
		report.CodeBlock(err.Error()), at.UTC().Format("15:04:05 UTC"), rev.MachineFailures+2, maxMachineRetries+1)}
	for _, name := range p.openChecks(ctx, rev.ID, true) {
		if perr := c.Publish(ctx, name, cr); perr != nil {
			log.Warn().Err(perr).Str("check", name).Msg("saying the review is retried")
		}
	}
	return true
}

// final reports whether the named check run's final output was sent.
func (p *pipeline) final(ctx context.Context, revision int64, name string) bool {
	done, _ := p.st.CheckRunFinal(ctx, revision, name)
	return done
}

// openChecks returns the revision's check runs whose final output was not
// sent, which a stopped or failed review may still end: its build (or a
// flake's job) check runs, and with eval the eval check run unless it is
// final, even when it was not created yet.
func (p *pipeline) openChecks(ctx context.Context, revision int64, eval bool) []string {
	names, err := p.st.OpenCheckRuns(ctx, revision)
	if err != nil {
		p.log.Warn().Err(err).Msg("open check runs")
	}
	var out []string
	if slices.Contains(names, report.EvalCheckName) || eval && !p.final(ctx, revision, report.EvalCheckName) {
		out = append(out, report.EvalCheckName)
	}
	for _, n := range names {
		if n != report.EvalCheckName {
			out = append(out, n)
		}
	}
	return out
}

// liveURL is the web page's URL of a derivation's log, followed while it
// builds.
func (p *pipeline) liveURL(drv string) string {
	return strings.TrimSuffix(p.cfg.Server.PublicURL, "/") + "/log/" + filepath.Base(drv)
}

// progressBoard keeps the build progress of the revisions being built, for
// the PR page (the store has a revision's results once it is done).
type progressBoard struct {
	mu   sync.Mutex
	byID map[int64]build.Progress // guarded by mu
}

func (b *progressBoard) set(id int64, p build.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = map[int64]build.Progress{}
	}
	b.byID[id] = p
}

func (b *progressBoard) drop(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byID, id)
}

func (b *progressBoard) get(id int64) *build.Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.byID[id]; ok {
		return &p
	}
	return nil
}

// logLink is the web page's URL of a kept log.
func logLink(publicURL string) func(string) string {
	return func(log string) string {
		return strings.TrimSuffix(publicURL, "/") + "/log/" + filepath.Base(log)
	}
}

// maxListedFiles is how many changed files GitHub lists at most.
const maxListedFiles = 3000

// headFiles are the files the revision's PR changes, as recorded for its
// head; nil when they are not known.
func (p *pipeline) headFiles(ctx context.Context, rev *store.Revision) []string {
	files, head, err := p.st.PRFiles(ctx, rev.Repo, rev.PR)
	if err != nil || head != rev.HeadSHA {
		return nil
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

// recordFiles records the files the revision's PR changes, once per head,
// for the PR page: a page view reads them from the store and never calls
// GitHub. A failure is logged; the page then says GitHub did not say.
func (p *pipeline) recordFiles(ctx context.Context, gh *github.Client, rev *store.Revision, log zerolog.Logger) {
	if rev.Push() {
		return
	}
	if _, head, err := p.st.PRFiles(ctx, rev.Repo, rev.PR); err == nil && head == rev.HeadSHA {
		return
	}
	owner, name, _ := strings.Cut(rev.Repo, "/")
	var files []store.PRFile
	opt := &github.ListOptions{PerPage: 100}
	patches := 0 // the diff shown on the PR page, bounded
	for len(files) < maxListedFiles {
		page, resp, err := gh.PullRequests.ListFiles(ctx, owner, name, rev.PR, opt)
		if err != nil {
			log.Warn().Err(err).Msg("listing the PR's changed files")
			return
		}
		for _, f := range page {
			pf := store.PRFile{Name: f.GetFilename(), Status: f.GetStatus(), Additions: f.GetAdditions(), Deletions: f.GetDeletions()}
			if patch := f.GetPatch(); len(patch) <= store.MaxPatch && patches+len(patch) <= store.MaxPatches {
				pf.Patch, patches = patch, patches+len(patch)
			}
			files = append(files, pf)
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if err := p.st.PutPRFiles(ctx, rev.Repo, rev.PR, rev.HeadSHA, files); err != nil {
		log.Warn().Err(err).Msg("recording the PR's changed files")
	}
}
