package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Cache path states.
const (
	CacheQueued   = "queued"
	CacheUploaded = "uploaded"
)

// CachedPath is one path basinix put (or is to put) in the binary cache.
type CachedPath struct {
	Path       string
	State      string
	Reason     string
	LiveUntil  time.Time // zero: forever
	Attempts   int
	Error      string
	UploadedAt time.Time
}

// Expired reports whether the path's lease ended before now.
func (c CachedPath) Expired(now time.Time) bool {
	return !c.LiveUntil.IsZero() && c.LiveUntil.Before(now)
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// QueueUploads queues paths for the cache with a lease until liveUntil;
// a path already known keeps its state and gets the longer lease.
func (s *Store) QueueUploads(ctx context.Context, paths []string, liveUntil time.Time) error {
	return s.upsertCache(ctx, "queue uploads", paths, CacheQueued, "", liveUntil)
}

// PutUploaded records paths as in the cache (a queued path's closure,
// uploaded with it), with a lease until liveUntil at least.
func (s *Store) PutUploaded(ctx context.Context, paths []string, liveUntil time.Time) error {
	return s.upsertCache(ctx, "uploaded", paths, CacheUploaded, "", liveUntil)
}

// ExtendLeases makes the leases of those of paths basinix cached last
// until liveUntil at least (zero: forever), saying why.
func (s *Store) ExtendLeases(ctx context.Context, paths []string, liveUntil time.Time, reason string) error {
	return s.upsertCache(ctx, "extend leases", paths, "", reason, liveUntil)
}

// upsertCache writes rows: with state "", only existing rows' leases are
// extended; otherwise missing rows are added with state, and existing
// ones move from queued to uploaded when state says so.
func (s *Store) upsertCache(ctx context.Context, op string, paths []string, state, reason string, liveUntil time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	until, now := millis(liveUntil), time.Now().UnixMilli()
	// A longer lease wins; 0 (forever) is the longest.
	const lease = `live_until = CASE WHEN live_until = 0 OR ?1 = 0 THEN 0 ELSE MAX(live_until, ?1) END`
	var stmt *sql.Stmt
	switch state {
	case "":
		stmt, err = tx.PrepareContext(ctx, `UPDATE cache_paths SET `+lease+`, reason = CASE WHEN ?2 != '' THEN ?2 ELSE reason END WHERE path = ?3`)
	case CacheQueued:
		stmt, err = tx.PrepareContext(ctx, `INSERT INTO cache_paths (path, state, reason, live_until) VALUES (?3, 'queued', ?2, ?1)
			ON CONFLICT (path) DO UPDATE SET `+lease)
	default:
		stmt, err = tx.PrepareContext(ctx, `INSERT INTO cache_paths (path, state, reason, live_until, uploaded_at) VALUES (?3, 'uploaded', ?2, ?1, ?4)
			ON CONFLICT (path) DO UPDATE SET `+lease+`, state = 'uploaded', error = '', uploaded_at = ?4`)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer stmt.Close()
	for _, p := range paths {
		var err error
		if state == CacheUploaded {
			_, err = stmt.ExecContext(ctx, until, reason, p, now)
		} else {
			_, err = stmt.ExecContext(ctx, until, reason, p)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", op, p, err)
		}
	}
	return tx.Commit()
}

// TakeUploads returns up to limit queued paths whose next try is due.
func (s *Store) TakeUploads(ctx context.Context, limit int, now time.Time) ([]CachedPath, error) {
	return s.cachedPaths(ctx, `WHERE state = 'queued' AND next_try <= ? ORDER BY next_try, path LIMIT ?`, now.UnixMilli(), limit)
}

// UploadFailed records a failed attempt at paths and when to try again.
func (s *Store) UploadFailed(ctx context.Context, paths []string, msg string, next time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("upload failed: %w", err)
	}
	defer tx.Rollback()
	for _, p := range paths {
		if _, err := tx.ExecContext(ctx, `UPDATE cache_paths SET attempts = attempts + 1, error = ?, next_try = ? WHERE path = ? AND state = 'queued'`,
			msg, next.UnixMilli(), p); err != nil {
			return fmt.Errorf("upload failed %s: %w", p, err)
		}
	}
	return tx.Commit()
}

// NextUploadAt is when the next queued upload is due (zero: none queued).
func (s *Store) NextUploadAt(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_try) FROM cache_paths WHERE state = 'queued'`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("next upload: %w", err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(at.Int64), nil
}

// CachedPaths returns every path basinix cached or queued.
func (s *Store) CachedPaths(ctx context.Context) ([]CachedPath, error) {
	return s.cachedPaths(ctx, `ORDER BY path`)
}

// ForgetCached removes paths from the record (removed from the cache).
func (s *Store) ForgetCached(ctx context.Context, paths []string) error {
	for _, p := range paths {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM cache_paths WHERE path = ?`, p); err != nil {
			return fmt.Errorf("forget cached %s: %w", p, err)
		}
	}
	return nil
}

func (s *Store) cachedPaths(ctx context.Context, tail string, args ...any) ([]CachedPath, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path, state, reason, live_until, attempts, error, uploaded_at FROM cache_paths `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("cached paths: %w", err)
	}
	defer rows.Close()
	var out []CachedPath
	for rows.Next() {
		var c CachedPath
		var until, uploaded int64
		if err := rows.Scan(&c.Path, &c.State, &c.Reason, &until, &c.Attempts, &c.Error, &uploaded); err != nil {
			return nil, fmt.Errorf("cached paths: %w", err)
		}
		c.LiveUntil, c.UploadedAt = fromMillis(until), fromMillis(uploaded)
		out = append(out, c)
	}
	return out, rows.Err()
}
