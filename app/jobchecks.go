package app

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
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
	p.branchFailingSince(ctx, rev, rep)
	return nil
}

// openJobs creates the job check runs of a flake revision once its head is
// evaluated, and the summary's. The commit's check runs are listed once
// (a restart finds those it created), then each job costs one request.
func (p *pipeline) openJobs(ctx context.Context, c *checks, rep *report.Report, log zerolog.Logger) error {
	if err := p.knownJobs(ctx, c.rev, rep); err != nil {
		log.Warn().Err(err).Msg("remembered job results: every job is queued")
	}
	existing, err := c.listed(ctx)
	if err != nil {
		return err
	}
	opt := p.markdown(c.rev)
	names := jobNames(rep)
	for _, key := range sortedJobs(names) {
		e := rep.Systems[key[0]].Attrs[key[1]]
		cr := report.JobCheckRun(key[1], key[0], e, opt, c.details)
		if err := c.create(ctx, names[key], cr, existing); err != nil {
			return err
		}
	}
	return c.create(ctx, report.JobsCheckName, report.JobsCheckRun(rep, opt, c.details), existing)
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
func (p *pipeline) publishJobs(ctx context.Context, c *checks, rep *report.Report) error {
	opt := p.markdown(c.rev)
	names := jobNames(rep)
	for _, key := range sortedJobs(names) {
		cr := report.JobCheckRun(key[1], key[0], rep.Systems[key[0]].Attrs[key[1]], opt, c.details)
		if cr.Conclusion == "" { // not built: the build was cancelled
			cr.Conclusion, cr.Title = "neutral", "not built"
		}
		if err := c.final(ctx, names[key], cr); err != nil {
			return err
		}
	}
	cr := report.JobsCheckRun(rep, opt, c.details)
	if cr.Conclusion == "" {
		cr.Conclusion = "neutral"
	}
	return c.final(ctx, report.JobsCheckName, cr, rebuildAction)
}

// jobsProgress is the summary check run while jobs build.
func jobsProgress(pr build.Progress, liveLog func(string) string) report.CheckRun {
	cr := report.BuildProgressCheckRun(pr, liveLog)
	cr.Title = fmt.Sprintf("%d of %d jobs' builds done", pr.Done, pr.Total)
	return cr
}

// listed returns the revision's check runs GitHub has on its commit (by
// name), from one listing of the commit's check runs, 100 a page.
func (c *checks) listed(ctx context.Context) (map[string]int64, error) {
	owner, repo := c.owner()
	out := map[string]int64{}
	opts := &github.ListCheckRunsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		list, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, owner, repo, c.rev.HeadSHA, opts)
		if err != nil {
			return nil, fmt.Errorf("list check runs of %s@%s: %w", c.rev.Repo, c.rev.HeadSHA, err)
		}
		for _, run := range list.CheckRuns {
			if run.GetExternalID() == c.externalID() {
				out[run.GetName()] = run.GetID()
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// create creates the named check run with cr unless the store or GitHub
// (existing, from listed) has it, completed when cr has a conclusion.
func (c *checks) create(ctx context.Context, name string, cr report.CheckRun, existing map[string]int64) error {
	if id, err := c.st.CheckRunID(ctx, c.rev.ID, name); err != nil || id != 0 {
		return err
	}
	if id := existing[name]; id != 0 {
		return c.st.PutCheckRunID(ctx, c.rev.ID, name, id)
	}
	spec := checkRunSpec{Name: name, Status: "queued", Details: c.details, ExternalID: c.externalID(), Listed: true,
		Title: cr.Title, Summary: cr.Summary, Conclusion: cr.Conclusion}
	if batches := report.Batches(cr.Annotations); len(batches) > 0 {
		spec.Annotations = batches[0]
	}
	id, err := ensureCheckRun(ctx, c.gh, c.rev.Repo, c.rev.HeadSHA, spec)
	if err != nil {
		return err
	}
	if err := c.st.PutCheckRunID(ctx, c.rev.ID, name, id); err != nil {
		return err
	}
	if cr.Conclusion != "" && len(cr.Annotations) <= report.AnnotationsPerBatch {
		return c.st.SetCheckRunFinal(ctx, c.rev.ID, name)
	}
	return nil
}
