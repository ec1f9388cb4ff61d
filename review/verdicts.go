package review

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// A reviewed revision is kept as its verdicts, one row per system and
// attribute, and its report without them (refs, evaluations, errors,
// labels, timings). SaveReport and LoadReport are the two ways between a
// report and the store.

// ReportStore keeps reports as verdict rows.
type ReportStore interface {
	PublishRevision(ctx context.Context, id int64, report []byte, verdicts []store.Verdict) error
	Verdicts(ctx context.Context, revision int64) ([]store.Verdict, error)
}

// SaveReport records a reviewed revision's report and verdicts, and moves
// it to publishing.
func SaveReport(ctx context.Context, st ReportStore, rev int64, rep *report.Report) error {
	rest := *rep
	rest.Systems = map[string]*report.System{}
	var rows []store.Verdict
	for name, sys := range rep.Systems {
		s := *sys
		s.Attrs = nil
		rest.Systems[name] = &s
		for attr, e := range sys.Attrs {
			v := store.Verdict{System: name, Attr: attr, Change: string(e.Change), DrvPath: e.DrvPath, BaseDrvPath: e.BaseDrvPath,
				Head: string(e.Head), Base: string(e.Base), Verdict: string(e.Verdict), FailedDep: e.FailedDependency,
				Position: e.Position, Log: e.Log, Message: e.Message, FailingSince: e.FailingSince}
			if len(e.Tests) > 0 {
				b, err := json.Marshal(e.Tests)
				if err != nil {
					return fmt.Errorf("save review of revision %d: tests of %s: %w", rev, attr, err)
				}
				v.Tests = string(b)
			}
			if e.Outputs != nil {
				b, err := json.Marshal(e.Outputs)
				if err != nil {
					return fmt.Errorf("save review of revision %d: outputs of %s: %w", rev, attr, err)
				}
				v.Outputs = string(b)
			}
			rows = append(rows, v)
		}
	}
	data, err := json.Marshal(&rest)
	if err != nil {
		return fmt.Errorf("save review of revision %d: %w", rev, err)
	}
	return st.PublishRevision(ctx, rev, data, rows)
}

// LoadReport returns a reviewed revision's report, its verdicts read from
// their rows; nil when the revision has no report.
func LoadReport(ctx context.Context, st ReportStore, rev *store.Revision) (*report.Report, error) {
	if len(rev.Report) == 0 {
		return nil, nil
	}
	var rep report.Report
	if err := json.Unmarshal(rev.Report, &rep); err != nil {
		return nil, fmt.Errorf("report of revision %d: %w", rev.ID, err)
	}
	rows, err := st.Verdicts(ctx, rev.ID)
	if err != nil {
		return nil, err
	}
	for _, sys := range rep.Systems {
		if sys.Attrs == nil {
			sys.Attrs = map[string]*report.AttrEntry{}
		}
	}
	for _, v := range rows {
		sys := rep.Systems[v.System]
		if sys == nil {
			sys = &report.System{Attrs: map[string]*report.AttrEntry{}}
			if rep.Systems == nil {
				rep.Systems = map[string]*report.System{}
			}
			rep.Systems[v.System] = sys
		}
		e := &report.AttrEntry{Change: eval.Change(v.Change), DrvPath: v.DrvPath, BaseDrvPath: v.BaseDrvPath,
			Head: build.Result(v.Head), Base: build.Result(v.Base), Verdict: report.Verdict(v.Verdict), FailedDependency: v.FailedDep,
			Position: v.Position, Log: v.Log, Message: v.Message, FailingSince: v.FailingSince}
		if v.Tests != "" {
			if err := json.Unmarshal([]byte(v.Tests), &e.Tests); err != nil {
				return nil, fmt.Errorf("report of revision %d: tests of %s: %w", rev.ID, v.Attr, err)
			}
		}
		if v.Outputs != "" {
			if err := json.Unmarshal([]byte(v.Outputs), &e.Outputs); err != nil {
				return nil, fmt.Errorf("report of revision %d: outputs of %s: %w", rev.ID, v.Attr, err)
			}
		}
		sys.Attrs[v.Attr] = e
	}
	return &rep, nil
}
