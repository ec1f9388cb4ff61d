package review

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/store"
)

// toRecord turns an evaluation into what the store keeps.
func toRecord(key store.EvalKey, ev *eval.Evaluation) (*store.EvalRecord, error) {
	data, err := json.Marshal(ev.Attrs)
	if err != nil {
		return nil, fmt.Errorf("store evaluation %s: %w", key, err)
	}
	rec := &store.EvalRecord{Key: key, Duration: ev.Duration, Processes: ev.Processes, AttrCount: len(ev.Attrs), Attrs: data}
	if ev.Error != nil {
		rec.ErrorMessage, rec.ErrorFile, rec.ErrorLine = ev.Error.Message, ev.Error.File, ev.Error.Line
		if rec.ErrorMessage == "" {
			rec.ErrorMessage = "evaluation failed"
		}
	}
	return rec, nil
}

// fromRecord reads an evaluation back from the store.
func fromRecord(rec *store.EvalRecord) (*eval.Evaluation, error) {
	ev := &eval.Evaluation{
		Commit:    rec.Key.Commit,
		System:    rec.Key.System,
		Attrs:     make(map[string]*eval.Attr, rec.AttrCount),
		Duration:  rec.Duration,
		Processes: rec.Processes,
	}
	if rec.ErrorMessage != "" {
		ev.Error = &eval.Error{Message: rec.ErrorMessage, File: rec.ErrorFile, Line: rec.ErrorLine}
	}
	if err := json.Unmarshal(rec.Attrs, &ev.Attrs); err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", rec.Key, err)
	}
	return ev, nil
}

// extrasCache is where what is learnt about an evaluation's attributes is
// kept: with the stored evaluation, once it is stored.
type extrasCache struct {
	st interface {
		Extras(ctx context.Context, key store.EvalKey, kind string, attrs []string) (map[string][]byte, error)
		PutExtras(ctx context.Context, key store.EvalKey, kind string, entries map[string][]byte) error
	}
	key    store.EvalKey
	stored func() error // waits until the evaluation is stored
	fresh  bool         // evaluated now: nothing is known of it yet
}

// cachedExtras returns what compute says of paths, taking what the store
// already has for this evaluation and storing what compute adds.
func cachedExtras[T any](ctx context.Context, c extrasCache, kind string, paths []eval.Path,
	compute func([]eval.Path) (map[string]T, error)) (map[string]T, error) {
	out := map[string]T{}
	if len(paths) == 0 {
		return out, nil
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.String()
	}
	stored := map[string][]byte{}
	if !c.fresh {
		var err error
		if stored, err = c.st.Extras(ctx, c.key, kind, names); err != nil {
			return nil, err
		}
	}
	var missing []eval.Path
	for i, p := range paths {
		data, ok := stored[names[i]]
		if !ok {
			missing = append(missing, p)
			continue
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("stored %s of %s: %w", kind, names[i], err)
		}
		out[names[i]] = v
	}
	if len(missing) == 0 {
		return out, nil
	}
	fresh, err := compute(missing)
	if err != nil {
		return nil, err
	}
	rows := make(map[string][]byte, len(fresh))
	for k, v := range fresh {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("store %s of %s: %w", kind, k, err)
		}
		rows[k] = data
		out[k] = v
	}
	if err := c.stored(); err != nil {
		return nil, err
	}
	if err := c.st.PutExtras(ctx, c.key, kind, rows); err != nil {
		return nil, err
	}
	return out, nil
}
