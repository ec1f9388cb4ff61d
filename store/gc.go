package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// What the garbage-collection policies keep is read from the rows: the
// branches' history, the PRs' verdicts and the builds' results.

// BranchRef names a tracked branch basinix has seen tips of.
type BranchRef struct{ Repo, Branch string }

// Branches returns every branch with a recorded tip.
func (s *Store) Branches(ctx context.Context) ([]BranchRef, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT repo, branch FROM branch_tips ORDER BY repo, branch`)
	if err != nil {
		return nil, fmt.Errorf("branches: %w", err)
	}
	defer rows.Close()
	var out []BranchRef
	for rows.Next() {
		var b BranchRef
		if err := rows.Scan(&b.Repo, &b.Branch); err != nil {
			return nil, fmt.Errorf("branches: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BranchDrvs returns the derivations of a branch's attributes at any of
// its latest n tips (n = 1: at its latest tip), as its history records
// them: an attribute's derivation at a tip is its latest record at or
// before it.
func (s *Store) BranchDrvs(ctx context.Context, repo, branch string, n int) ([]string, error) {
	var since sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(seen_at) FROM (SELECT seen_at FROM branch_tips WHERE repo = ? AND branch = ? ORDER BY seen_at DESC LIMIT ?)`,
		repo, branch, max(n, 1)).Scan(&since)
	if err != nil {
		return nil, fmt.Errorf("derivations of %s %s: %w", repo, branch, err)
	}
	if !since.Valid {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT drv_path FROM attr_history WHERE repo = ?1 AND branch = ?2 AND seen_at >= ?3 AND drv_path != ''
		UNION
		SELECT h.drv_path FROM attr_history h
		JOIN (SELECT system, attr, MAX(seen_at) AS at FROM attr_history WHERE repo = ?1 AND branch = ?2 AND seen_at <= ?3 GROUP BY system, attr) l
		  ON h.system = l.system AND h.attr = l.attr AND h.seen_at = l.at
		WHERE h.repo = ?1 AND h.branch = ?2 AND h.drv_path != ''`, repo, branch, since.Int64)
	if err != nil {
		return nil, fmt.Errorf("derivations of %s %s: %w", repo, branch, err)
	}
	return scanStrings(rows)
}

// PRKeep is one PR whose derivations are kept, and until when ("" zero
// time: it is open).
type PRKeep struct {
	Repo   string
	PR     int
	Closed time.Time // zero while open
	Drvs   []string  // heads', bases' and tests' derivations of its reviews
}

// PRDrvs returns every PR with reviewed revisions that is open or was
// closed after closedAfter, with the derivations its verdicts name.
func (s *Store) PRDrvs(ctx context.Context, closedAfter time.Time) ([]PRKeep, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.repo, r.pr, COALESCE(c.closed_at, 0), v.drv_path, v.base_drv_path, v.tests
		FROM verdicts v JOIN revisions r ON r.id = v.revision_id
		LEFT JOIN pr_closed c ON c.repo = r.repo AND c.pr = r.pr
		WHERE r.branch = '' AND (c.closed_at IS NULL OR c.closed_at > ?)
		ORDER BY r.repo, r.pr`, closedAfter.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("derivations of PRs: %w", err)
	}
	defer rows.Close()
	var out []PRKeep
	seen := map[string]bool{}
	for rows.Next() {
		var repo, drv, base, tests string
		var pr int
		var closed int64
		if err := rows.Scan(&repo, &pr, &closed, &drv, &base, &tests); err != nil {
			return nil, fmt.Errorf("derivations of PRs: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Repo != repo || out[len(out)-1].PR != pr {
			k := PRKeep{Repo: repo, PR: pr}
			if closed > 0 {
				k.Closed = time.UnixMilli(closed)
			}
			out = append(out, k)
			clear(seen)
		}
		k := &out[len(out)-1]
		add := func(d string) {
			if d != "" && !seen[d] {
				seen[d] = true
				k.Drvs = append(k.Drvs, d)
			}
		}
		add(drv)
		add(base)
		if tests != "" {
			var ts map[string]struct {
				DrvPath string `json:"drvPath"`
			}
			if err := json.Unmarshal([]byte(tests), &ts); err != nil {
				return nil, fmt.Errorf("derivations of %s#%d: tests: %w", repo, pr, err)
			}
			for _, t := range ts {
				add(t.DrvPath)
			}
		}
	}
	return out, rows.Err()
}

// BuiltDrvs returns the derivations whose remembered result is one of
// results (all of them when none is given).
func (s *Store) BuiltDrvs(ctx context.Context, results ...string) ([]string, error) {
	q, args := `SELECT drv_path FROM builds`, []any{}
	if len(results) > 0 {
		q += ` WHERE result IN (` + placeholders(len(results)) + `)`
		for _, r := range results {
			args = append(args, r)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY drv_path`, args...)
	if err != nil {
		return nil, fmt.Errorf("built derivations: %w", err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
