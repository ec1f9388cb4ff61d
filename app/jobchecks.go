package app

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// A flake's review is a CI's: besides `basinix / eval`, each job has a
// check run of its own ("basinix / JOB"), which branch protection can
// require, and `basinix / jobs` lists them all. A job is known once the
// head is evaluated: its check run is created then, completed at once when
// the job did not change and its result is remembered (one request, no
// build), queued otherwise and completed when its build ends.

// jobNames returns the check run name of each job of rep (removed jobs
// have none), by system and job.
func jobNames(rep *report.Report) map[[2]string]string {
	out := map[[2]string]string{}
	for system, s := range rep.Systems {
		for job, e := range s.Attrs {
			if e.Verdict != report.Removed {
				out[[2]string{system, job}] = report.JobCheckName(job, system, len(rep.Systems))
			}
		}
	}
	return out
}

// knownJobs completes, in rep, the unchanged jobs whose result is
// remembered (unless the revision rebuilds failures), so that they are
// neither built nor waited for, and names since when the still failing
// ones fail on the target branch.
func (p *pipeline) knownJobs(ctx context.Context, rev *store.Revision, rep *report.Report) error {
	var drvs []string
	for _, s := range rep.Systems {
		for _, e := range s.Attrs {
			if e.UnchangedPending() {
				drvs = append(drvs, e.DrvPath)
			}
		}
	}
	known, err := p.rv.Pool().Lookup(ctx, drvs)
	if err != nil {
		return err
	}
	for _, s := range rep.Systems {
		for _, e := range s.Attrs {
			o := known[e.DrvPath]
			if o == nil || rev.RebuildFailed && o.Result.Failed() {
				continue
			}
			if report.KnownResult(e, o.Result) {
				e.FailedDependency, e.Log, e.Message = o.FailedDep, o.Log, o.Message
			}
		}
	}
	if err := review.BranchFailingSince(ctx, p.st, rev, rep); err != nil {
		p.log.Warn().Err(err).Str("repo", rev.Repo).Int64("revision", rev.ID).Msg("naming since when jobs fail")
	}
	return nil
}

// openJobs creates the job check runs of a flake revision once its head is
// evaluated, and the summary's. The commit's check runs are listed once
// (a restart finds those it created), then each job costs one request.
func (p *pipeline) openJobs(ctx context.Context, rev *store.Revision, c *publish.Checks, rep *report.Report, log zerolog.Logger) error {
	if err := p.knownJobs(ctx, rev, rep); err != nil {
		log.Warn().Err(err).Msg("remembered job results: every job is queued")
	}
	existing, err := c.Listed(ctx)
	if err != nil {
		return err
	}
	opt := p.markdown(rev)
	names := jobNames(rep)
	for _, key := range sortedJobs(names) {
		e := rep.Systems[key[0]].Attrs[key[1]]
		cr := report.JobCheckRun(key[1], key[0], e, opt, c.Details())
		if err := c.Create(ctx, names[key], cr, existing); err != nil {
			return err
		}
	}
	return c.Create(ctx, report.JobsCheckName, report.JobsCheckRun(rep, opt, c.Details()), existing)
}

// markdown is how rev's check runs render: logs linked to the web page,
// a push's failing jobs failures whether they failed before or not.
func (p *pipeline) markdown(rev *store.Revision) report.MarkdownOptions {
	return report.MarkdownOptions{Link: p.logURL, Push: rev.Push()}
}

// sortedJobs returns the keys of names by system, then job.
func sortedJobs(names map[[2]string]string) [][2]string {
	return slices.SortedFunc(maps.Keys(names), func(a, b [2]string) int {
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return cmp.Compare(a[1], b[1])
	})
}

// publishJobs sends the final job check runs (those not final yet) and the
// summary's.
func (p *pipeline) publishJobs(ctx context.Context, rev *store.Revision, c *publish.Checks, rep *report.Report) error {
	opt := p.markdown(rev)
	names := jobNames(rep)
	for _, key := range sortedJobs(names) {
		cr := report.JobCheckRun(key[1], key[0], rep.Systems[key[0]].Attrs[key[1]], opt, c.Details())
		if cr.Conclusion == "" { // not built: the build was cancelled
			cr.Conclusion, cr.Title = "neutral", "not built"
		}
		if err := c.Final(ctx, names[key], cr); err != nil {
			return err
		}
	}
	cr := report.JobsCheckRun(rep, opt, c.Details())
	if cr.Conclusion == "" {
		cr.Conclusion = "neutral"
	}
	return c.Final(ctx, report.JobsCheckName, cr, publish.RebuildAction)
}

// jobsProgress is the summary check run while jobs build.
func jobsProgress(pr build.Progress, liveLog func(string) string) report.CheckRun {
	cr := report.BuildProgressCheckRun(pr, liveLog)
	cr.Title = fmt.Sprintf("%d of %d jobs' builds done", pr.Done, pr.Total)
	return cr
}
