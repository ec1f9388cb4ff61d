package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Tip is a tip of a tracked branch basinix saw.
type Tip struct {
	Commit, Title string
	Seen          time.Time
}

// LastTip returns the latest tip recorded for the branch, nil when none.
func (s *Store) LastTip(ctx context.Context, repo, branch string) (*Tip, error) {
	var t Tip
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT commit_sha, title, seen_at FROM branch_tips WHERE repo = ? AND branch = ?
		ORDER BY seen_at DESC, rowid DESC LIMIT 1`, repo, branch).Scan(&t.Commit, &t.Title, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last tip of %s %s: %w", repo, branch, err)
	}
	t.Seen = time.UnixMilli(at)
	return &t, nil
}

// AttrChange is an attribute's derivation from a commit on.
type AttrChange struct {
	System, Attr, DrvPath string
}

// PutTip records a new tip and the attributes that changed there, and
// adds the jobs that follow from it (building them) in the same
// transaction.
func (s *Store) PutTip(ctx context.Context, repo, branch string, tip Tip, changes []AttrChange, then ...NewJob) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record tip %s of %s %s: %w", tip.Commit, repo, branch, err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO branch_tips (repo, branch, commit_sha, title, seen_at) VALUES (?, ?, ?, ?, ?)`,
		repo, branch, tip.Commit, tip.Title, now); err != nil {
		return fmt.Errorf("record tip %s of %s %s: %w", tip.Commit, repo, branch, err)
	}
	for _, c := range changes {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO attr_history (repo, branch, commit_sha, system, attr, drv_path, seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, repo, branch, tip.Commit, c.System, c.Attr, c.DrvPath, now); err != nil {
			return fmt.Errorf("record %s at %s: %w", c.Attr, tip.Commit, err)
		}
	}
	for _, j := range then {
		if _, err := addJob(ctx, tx, j); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// HistoryEntry is an attribute's derivation from a commit on, and its
// build result ("" when not built).
type HistoryEntry struct {
	Commit, Title, DrvPath, Result string
	Seen                           time.Time
}

// AttrHistory returns what the branch's history knows of an attribute,
// newest first, at most limit.
func (s *Store) AttrHistory(ctx context.Context, repo, branch, system, attr string, limit int) ([]HistoryEntry, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT h.commit_sha, COALESCE(t.title, ''), h.drv_path, COALESCE(b.result, ''), h.seen_at
		FROM attr_history h
		LEFT JOIN branch_tips t ON t.repo = h.repo AND t.branch = h.branch AND t.commit_sha = h.commit_sha
		LEFT JOIN builds b ON b.drv_path = h.drv_path
		WHERE h.repo = ? AND h.branch = ? AND h.system = ? AND h.attr = ?
		ORDER BY h.seen_at DESC, h.rowid DESC LIMIT ?`, repo, branch, system, attr, limit)
	if err != nil {
		return nil, fmt.Errorf("history of %s on %s %s: %w", attr, repo, branch, err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var e HistoryEntry
		var at int64
		if err := rows.Scan(&e.Commit, &e.Title, &e.DrvPath, &e.Result, &at); err != nil {
			return nil, fmt.Errorf("history of %s: %w", attr, err)
		}
		e.Seen = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
