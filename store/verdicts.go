package store

import (
	"context"
	"fmt"
)

// Verdict is what a review found of one attribute on one system.
type Verdict struct {
	System, Attr, Change   string
	DrvPath, BaseDrvPath   string
	Head, Base             string // build results
	Verdict                string
	FailedDep              string
	Position, Log, Message string
	FailingSince           string
	Tests                  string // the attribute's passthru.tests results, as JSON
	Outputs                string // what the change did to its outputs, as JSON
}

const verdictColumns = `system, attr, change, drv_path, base_drv_path, head_result, base_result, verdict, failed_dep, position, log, message, failing_since, tests, outputs`

// PublishRevision records a reviewed revision: its report (what is not
// its verdicts) and its verdicts, replacing those of an earlier attempt,
// and moves it to publishing (unless it was superseded or cancelled
// meanwhile) in one transaction.
func (s *Store) PublishRevision(ctx context.Context, id int64, report []byte, verdicts []Verdict) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("publish revision %d: %w", id, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM verdicts WHERE revision_id = ?`, id); err != nil {
		return fmt.Errorf("publish revision %d: %w", id, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO verdicts (revision_id, `+verdictColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("publish revision %d: %w", id, err)
	}
	defer stmt.Close()
	for _, v := range verdicts {
		if _, err := stmt.ExecContext(ctx, id, v.System, v.Attr, v.Change, v.DrvPath, v.BaseDrvPath, v.Head, v.Base, v.Verdict,
			v.FailedDep, v.Position, v.Log, v.Message, v.FailingSince, v.Tests, v.Outputs); err != nil {
			return fmt.Errorf("publish revision %d: verdict of %s: %w", id, v.Attr, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM verdict_counts WHERE revision_id = ?`, id); err != nil {
		return fmt.Errorf("publish revision %d: %w", id, err)
	}
	counts := map[[2]string]int{}
	for _, v := range verdicts {
		counts[[2]string{v.System, v.Verdict}]++
	}
	for k, n := range counts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO verdict_counts (revision_id, system, verdict, n) VALUES (?, ?, ?, ?)`, id, k[0], k[1], n); err != nil {
			return fmt.Errorf("publish revision %d: %w", id, err)
		}
	}
	if err := finishRevision(ctx, tx, id, Publishing, report, ""); err != nil {
		return err
	}
	return tx.Commit()
}

// Verdicts returns a revision's verdicts, by system and attribute.
func (s *Store) Verdicts(ctx context.Context, revision int64) ([]Verdict, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+verdictColumns+` FROM verdicts WHERE revision_id = ? ORDER BY system, attr`, revision)
	if err != nil {
		return nil, fmt.Errorf("verdicts of revision %d: %w", revision, err)
	}
	defer rows.Close()
	var out []Verdict
	for rows.Next() {
		var v Verdict
		if err := rows.Scan(&v.System, &v.Attr, &v.Change, &v.DrvPath, &v.BaseDrvPath, &v.Head, &v.Base, &v.Verdict,
			&v.FailedDep, &v.Position, &v.Log, &v.Message, &v.FailingSince, &v.Tests, &v.Outputs); err != nil {
			return nil, fmt.Errorf("verdicts of revision %d: %w", revision, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// PriorHead is one earlier head of a PR and what it built of an attribute.
type PriorHead struct {
	Revision int64
	Push     int // the n-th head the PR had
	Commit   string
	Reviewed bool   // its review finished
	Result   string // the attribute's head build result there ("" when it was not touched)
}

// PriorHeads returns the heads of a PR before revision, newest first, with
// what each built of one attribute on one system (at most limit).
func (s *Store) PriorHeads(ctx context.Context, repo string, pr int, revision int64, system, attr string, limit int) ([]PriorHead, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.id, (SELECT count(*) FROM revisions o WHERE o.repo = r.repo AND o.pr = r.pr AND o.id <= r.id),
			r.head_sha, r.report IS NOT NULL AND length(r.report) > 0, COALESCE(v.head_result, '')
		FROM revisions r LEFT JOIN verdicts v ON v.revision_id = r.id AND v.system = ? AND v.attr = ?
		WHERE r.repo = ? AND r.pr = ? AND r.id < ?
		ORDER BY r.id DESC LIMIT ?`, system, attr, repo, pr, revision, limit)
	if err != nil {
		return nil, fmt.Errorf("earlier heads of %s#%d: %w", repo, pr, err)
	}
	defer rows.Close()
	var out []PriorHead
	for rows.Next() {
		var h PriorHead
		if err := rows.Scan(&h.Revision, &h.Push, &h.Commit, &h.Reviewed, &h.Result); err != nil {
			return nil, fmt.Errorf("earlier heads of %s#%d: %w", repo, pr, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// PushNumber returns which head of its PR a revision is (1 for the first).
func (s *Store) PushNumber(ctx context.Context, revision int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revisions o, revisions r
		WHERE r.id = ? AND o.repo = r.repo AND o.pr = r.pr AND o.id <= r.id`, revision).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("push number of revision %d: %w", revision, err)
	}
	return n, nil
}
