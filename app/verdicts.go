package app

import (
	"context"
	"fmt"
	"sort"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// verdictStore keeps reviews as verdict rows (review.SaveReport,
// review.LoadReport) and reads one attribute's rows back for "failing
// since".
type verdictStore interface {
	review.ReportStore
	PriorHeads(ctx context.Context, repo string, pr int, revision int64, system, attr string, limit int) ([]store.PriorHead, error)
	PushNumber(ctx context.Context, revision int64) (int, error)
}

// failingSince names, for each newly failing attribute, the push of the PR
// that introduced the failure: the oldest of the PR's earlier reviewed
// heads, going back without a break, where it failed too. Each is one
// query over that attribute's rows.
func (p *pipeline) failingSince(ctx context.Context, rev *store.Revision, rep *report.Report) {
	if rev.Push() { // newly failing at this tip; still failing: since when on the branch
		p.branchFailingSince(ctx, rev, rep)
		return
	}
	push, err := p.st.PushNumber(ctx, rev.ID)
	if err != nil {
		p.log.Warn().Err(err).Msg("earlier pushes")
		return
	}
	for _, system := range sortedKeys(rep.Systems) {
		s := rep.Systems[system]
		for _, name := range sortedKeys(s.Attrs) {
			e := s.Attrs[name]
			if e.Verdict != report.NewlyFailing && e.Verdict != report.NewFailing {
				continue
			}
			since, sinceHead := push, rev.HeadSHA
			if push > 1 {
				prior, err := p.st.PriorHeads(ctx, rev.Repo, rev.PR, rev.ID, system, name, 100)
				if err != nil {
					p.log.Warn().Err(err).Msg("earlier pushes")
					return
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
	p.branchFailingSince(ctx, rev, rep)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
