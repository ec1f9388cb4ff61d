package app

import (
	"context"
	"time"

	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// The store as each part of the server uses it, declared here or by its
// users (jobStore beside the job runner; publish.Store, commands.Store,
// web.Store and review's ReportStore and HistoryStore in their packages):
// *store.Store is all of them. A part's interface says what of the
// database it reads and writes, and a test may give it another.

// revisionQueue is the PR revisions' queue: queued from webhooks, taken by
// the pipeline, finished, retried or queued again.
type revisionQueue interface {
	AddRevision(ctx context.Context, rev store.Revision) (int64, bool, []int64, error)
	TakeRevision(ctx context.Context) (*store.Revision, error)
	FinishRevision(ctx context.Context, id int64, state string, report []byte, msg string) error
	RetryLater(ctx context.Context, id int64, at time.Time, msg string) (bool, error)
	Requeue(ctx context.Context) (int64, error)
	Rerun(ctx context.Context, repo, head string, rebuildFailed bool) (int64, error)
	RerunRevision(ctx context.Context, id int64, opt store.RerunOptions, done ...store.StepDone) (bool, error)
	RevisionsIn(ctx context.Context, state string) ([]*store.Revision, error)
	Revision(ctx context.Context, id int64) (*store.Revision, error)
	OpenCheckRuns(ctx context.Context, revision int64) ([]string, error)
}

// prRecords is what is kept of pull requests beside their revisions.
type prRecords interface {
	PRRevisions(ctx context.Context, repo string, pr int) ([]*store.Revision, error)
	PRFiles(ctx context.Context, repo string, pr int) ([]store.PRFile, string, error)
	PutPRFiles(ctx context.Context, repo string, pr int, head string, files []store.PRFile) error
	CancelPR(ctx context.Context, repo string, pr int) ([]int64, error)
	ClosePR(ctx context.Context, repo string, pr int, merged bool) ([]int64, error)
	PutRepoPrivate(ctx context.Context, repo string, private bool) error
}

// branchRecords are the tracked branches' tips and their attributes'
// history.
type branchRecords interface {
	PutTip(ctx context.Context, repo, branch string, tip store.Tip, changes []store.AttrChange, then ...store.NewJob) error
	LastTip(ctx context.Context, repo, branch string) (*store.Tip, error)
	AttrHistory(ctx context.Context, repo, branch, system, attr string, limit int) ([]store.HistoryEntry, error)
}

// commandRecords are comment commands and the steps of their jobs.
type commandRecords interface {
	PutCommand(ctx context.Context, c store.CommandRecord, done ...store.StepDone) error
	JobStep(ctx context.Context, d store.StepDone) error
	PendingJobs(ctx context.Context, serial string) (int, error)
}

// pipelineStore is what the pipeline (reviews, publishing, commands, tips)
// keeps.
type pipelineStore interface {
	revisionQueue
	prRecords
	branchRecords
	commandRecords
	publish.Store
	jobStore
	review.ReportStore
	review.HistoryStore
}

// deliveryStore remembers webhook deliveries, so that a redelivery is
// handled once.
type deliveryStore interface {
	ClaimDelivery(ctx context.Context, id, event string) (bool, error)
	ForgetDelivery(ctx context.Context, id string) error
}

var (
	_ pipelineStore = (*store.Store)(nil)
	_ deliveryStore = (*store.Store)(nil)
)
