package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// BuildRecord is the remembered result of one derivation.
type BuildRecord struct {
	DrvPath   string
	Result    string
	FailedDep string
	Message   string
	Machine   string
	Started   time.Time
	Duration  time.Duration
	LogPath   string
}

// Builds returns the stored results of the given derivations; those
// without one are absent from the map.
func (s *Store) Builds(ctx context.Context, drvs []string) (map[string]*BuildRecord, error) {
	out := make(map[string]*BuildRecord, len(drvs))
	const chunk = 500 // SQLite's limit on host parameters is well above
	for len(drvs) > 0 {
		n := min(len(drvs), chunk)
		args := make([]any, n)
		for i, d := range drvs[:n] {
			args[i] = d
		}
		rows, err := s.db.QueryContext(ctx, `
			SELECT drv_path, result, failed_dep, message, machine, started_at, duration_ms, log_path
			FROM builds WHERE drv_path IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("build results: %w", err)
		}
		for rows.Next() {
			var r BuildRecord
			var started, dur int64
			if err := rows.Scan(&r.DrvPath, &r.Result, &r.FailedDep, &r.Message, &r.Machine, &started, &dur, &r.LogPath); err != nil {
				rows.Close()
				return nil, fmt.Errorf("build results: %w", err)
			}
			if started != 0 {
				r.Started = time.UnixMilli(started)
			}
			r.Duration = time.Duration(dur) * time.Millisecond
			out[r.DrvPath] = &r
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("build results: %w", err)
		}
		drvs = drvs[n:]
	}
	return out, nil
}

// PutBuilds stores results, replacing earlier ones of the same derivations.
func (s *Store) PutBuilds(ctx context.Context, recs []*BuildRecord) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put build results: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	for _, r := range recs {
		var started int64
		if !r.Started.IsZero() {
			started = r.Started.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT OR REPLACE INTO builds (drv_path, name, result, failed_dep, message, machine, started_at, duration_ms, log_path, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.DrvPath, DrvName(r.DrvPath), r.Result, r.FailedDep, r.Message, r.Machine, started, r.Duration.Milliseconds(), r.LogPath, now); err != nil {
			return fmt.Errorf("put build result of %s: %w", r.DrvPath, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put build results: %w", err)
	}
	return nil
}

// DrvName is a derivation's name without its store hash and version, as
// builtins.parseDrvName splits names: the version starts at the first
// dash followed by something other than a letter
// ("/nix/store/…-python3.10-requests-2.31.0.drv" gives
// "python3.10-requests").
func DrvName(drvPath string) string {
	base := strings.TrimSuffix(drvPath[strings.LastIndex(drvPath, "/")+1:], ".drv")
	if _, rest, ok := strings.Cut(base, "-"); ok {
		base = rest
	}
	for i := 0; i+1 < len(base); i++ {
		if c := base[i+1]; base[i] == '-' && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return base[:i]
		}
	}
	return base
}

// BuildTimes returns, for each name (DrvName), how long its last
// successful build took; names never built are absent. Names are asked
// 500 at a time (a mass rebuild asks tens of thousands).
func (s *Store) BuildTimes(ctx context.Context, names []string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	latest := map[string]int64{}
	err := byNames(names, func(chunk []any) error {
		rows, err := s.db.QueryContext(ctx, `SELECT name, duration_ms, updated_at FROM builds
			WHERE result = 'success' AND duration_ms > 0 AND name IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var ms, at int64
			if err := rows.Scan(&name, &ms, &at); err != nil {
				return err
			}
			if prev, ok := latest[name]; !ok || at > prev {
				latest[name], out[name] = at, time.Duration(ms)*time.Millisecond
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("build times: %w", err)
	}
	return out, nil
}

// byNames calls f with the distinct non-empty names, 500 at a time.
func byNames(names []string, f func(chunk []any) error) error {
	seen := map[string]bool{}
	var chunk []any
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if chunk = append(chunk, n); len(chunk) == 500 {
			if err := f(chunk); err != nil {
				return err
			}
			chunk = nil
		}
	}
	if len(chunk) > 0 {
		return f(chunk)
	}
	return nil
}

// PutMemoryNeed records that the package name needs at least mib MiB to
// build (never lowering what is known).
func (s *Store) PutMemoryNeed(ctx context.Context, name string, mib int) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO memory_needs (name, mib, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET mib = max(mib, excluded.mib), updated_at = excluded.updated_at`, name, mib, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("memory need of %s: %w", name, err)
	}
	return nil
}

// MemoryNeeds returns what the packages named are known to need (MiB);
// names without a known need are absent.
func (s *Store) MemoryNeeds(ctx context.Context, names []string) (map[string]int, error) {
	out := map[string]int{}
	err := byNames(names, func(chunk []any) error {
		rows, err := s.db.QueryContext(ctx, `SELECT name, mib FROM memory_needs WHERE name IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var mib int
			if err := rows.Scan(&name, &mib); err != nil {
				return err
			}
			out[name] = mib
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("memory needs: %w", err)
	}
	return out, nil
}
