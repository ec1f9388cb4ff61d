package review

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// HistoryStore reads one attribute's past: its verdict rows in a PR's
// earlier pushes, and its recorded changes on a branch.
type HistoryStore interface {
	PriorHeads(ctx context.Context, repo string, pr int, revision int64, system, attr string, limit int) ([]store.PriorHead, error)
	PushNumber(ctx context.Context, revision int64) (int, error)
	AttrHistory(ctx context.Context, repo, branch, system, attr string, limit int) ([]store.HistoryEntry, error)
}

// FailingSince names, in rep, for each newly failing attribute the push of
// the PR that introduced the failure: the oldest of the PR's earlier
// reviewed heads, going back without a break, where it failed too; and for
// each still failing one the commit of the target branch since which it
// fails (BranchFailingSince). Each is one query over that attribute's rows.
func FailingSince(ctx context.Context, st HistoryStore, rev *store.Revision, rep *report.Report) error {
	if rev.Push() { // newly failing at this tip; still failing: since when on the branch
		return BranchFailingSince(ctx, st, rev, rep)
	}
	push, err := st.PushNumber(ctx, rev.ID)
	if err != nil {
		return fmt.Errorf("failing since: earlier pushes of revision %d: %w", rev.ID, err)
	}
	for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
		s := rep.Systems[system]
		for _, name := range slices.Sorted(maps.Keys(s.Attrs)) {
			e := s.Attrs[name]
			if e.Verdict != report.NewlyFailing && e.Verdict != report.NewFailing {
				continue
			}
			since, sinceHead := push, rev.HeadSHA
			if push > 1 {
				prior, err := st.PriorHeads(ctx, rev.Repo, rev.PR, rev.ID, system, name, 100)
				if err != nil {
					return fmt.Errorf("failing since: earlier pushes of %s (%s): %w", name, system, err)
				}
				for _, h := range prior {
					if !h.Reviewed || !build.Result(h.Result).Failed() {
						break // unknown, or not failing there: the streak ends
					}
					since, sinceHead = h.Push, h.Commit
				}
			}
			e.FailingSince = fmt.Sprintf("push %d (%s) of this PR", since, report.Short(sinceHead))
		}
	}
	return BranchFailingSince(ctx, st, rev, rep)
}

// BranchFailingSince names, for each attribute failing on the target
// branch too (still failing), the commit of the branch since which it
// fails, from the branch's history: the oldest of its recorded changes,
// going back without a break, whose build failed.
func BranchFailingSince(ctx context.Context, st HistoryStore, rev *store.Revision, rep *report.Report) error {
	for system, s := range rep.Systems {
		for name, e := range s.Attrs {
			if e.Verdict != report.StillFailing {
				continue
			}
			hist, err := st.AttrHistory(ctx, rev.Repo, rev.Target(), system, name, 100)
			if err != nil {
				return fmt.Errorf("failing since: history of %s (%s) on %s: %w", name, system, rev.Target(), err)
			}
			var since *store.HistoryEntry
			for i := range hist {
				if !build.Result(hist[i].Result).Failed() && hist[i].DrvPath != "" {
					break
				}
				since = &hist[i]
			}
			if since != nil {
				e.FailingSince = fmt.Sprintf("%s %q on %s", report.Short(since.Commit), since.Title, rev.Target())
			}
		}
	}
	return nil
}
