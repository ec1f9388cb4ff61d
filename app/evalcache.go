package app

import (
	"encoding/json"
	"fmt"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/store"
)

// toRecord turns an evaluation into the rows the store keeps.
func toRecord(key store.EvalKey, ev *eval.Evaluation) (*store.EvalRecord, error) {
	rec := &store.EvalRecord{Key: key, Duration: ev.Duration, Processes: ev.Processes}
	if ev.Error != nil {
		rec.ErrorMessage, rec.ErrorFile, rec.ErrorLine = ev.Error.Message, ev.Error.File, ev.Error.Line
		if rec.ErrorMessage == "" {
			rec.ErrorMessage = "evaluation failed"
		}
	}
	rec.Attrs = make([]store.AttrRow, 0, len(ev.Attrs))
	for k, a := range ev.Attrs {
		data, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("store evaluation %s: %s: %w", key, k, err)
		}
		drv := ""
		if a.Evaluable() {
			drv = a.DrvPath
		}
		rec.Attrs = append(rec.Attrs, store.AttrRow{Attr: k, DrvPath: drv, Data: data})
	}
	return rec, nil
}

// fromRecord reads an evaluation back from the store's rows.
func fromRecord(rec *store.EvalRecord) (*eval.Evaluation, error) {
	ev := &eval.Evaluation{
		Commit:    rec.Key.Commit,
		System:    rec.Key.System,
		Attrs:     make(map[string]*eval.Attr, len(rec.Attrs)),
		Duration:  rec.Duration,
		Processes: rec.Processes,
	}
	if rec.ErrorMessage != "" {
		ev.Error = &eval.Error{Message: rec.ErrorMessage, File: rec.ErrorFile, Line: rec.ErrorLine}
	}
	for _, row := range rec.Attrs {
		a := &eval.Attr{}
		if err := json.Unmarshal(row.Data, a); err != nil {
			return nil, fmt.Errorf("evaluation %s: attribute %s: %w", rec.Key, row.Attr, err)
		}
		ev.Attrs[row.Attr] = a
	}
	return ev, nil
}

func testRows(sets map[string]*eval.TestSet) (map[string][]byte, error) {
	rows := make(map[string][]byte, len(sets))
	for k, ts := range sets {
		data, err := json.Marshal(ts)
		if err != nil {
			return nil, fmt.Errorf("store tests of %s: %w", k, err)
		}
		rows[k] = data
	}
	return rows, nil
}

// testsFromRows decodes stored tests and says which of want are missing.
func testsFromRows(rows map[string][]byte, want []eval.Path) (map[string]*eval.TestSet, []eval.Path, error) {
	out := map[string]*eval.TestSet{}
	var missing []eval.Path
	for _, p := range want {
		data, ok := rows[p.String()]
		if !ok {
			missing = append(missing, p)
			continue
		}
		ts := &eval.TestSet{}
		if err := json.Unmarshal(data, ts); err != nil {
			return nil, nil, fmt.Errorf("stored tests of %s: %w", p, err)
		}
		out[p.String()] = ts
	}
	return out, missing, nil
}
