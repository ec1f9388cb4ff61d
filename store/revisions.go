package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Revision states.
const (
	Queued     = "queued"
	Evaluating = "evaluating"
	Building   = "building"
	Done       = "done"
	Superseded = "superseded"
	Cancelled  = "cancelled"
	Failed     = "failed"
	// Publishing: reviewed, the report stored, the final check runs not
	// all sent yet (they are sent again until they are).
	Publishing = "publishing"
)

// Revision is one PR head to review against its target branch.
type Revision struct {
	ID             int64
	Repo           string
	InstallationID int64
	CloneURL       string
	PR             int
	HeadSHA        string
	BaseRef        string
	State          string
	Error          string
	Report         []byte
	Created        time.Time
	// Attempt counts the re-runs asked for this revision.
	Attempt int
	// RebuildFailed: this attempt builds the remembered failures again.
	RebuildFailed bool
	// FreshEval: this attempt evaluates the head again, ignoring the cache.
	FreshEval bool
	// MachineFailures counts the times the revision failed for the
	// machine's fault and was queued again for later.
	MachineFailures int
	// Branch, for a push revision (PR 0), is the tracked branch whose new
	// tip HeadSHA is; BaseRef is then the branch's previous tip.
	Branch string
	// Author is the PR's author's GitHub login ("" unknown, and for a push).
	Author string
	// Title is the PR's title at this head ("" for a push).
	Title string
}

// Push says whether the revision is a branch push's, not a PR's.
func (r *Revision) Push() bool { return r.Branch != "" }

// Target is the branch the revision's verdicts are told against: the
// PR's base branch, or the pushed branch.
func (r *Revision) Target() string {
	if r.Push() {
		return r.Branch
	}
	return r.BaseRef
}

// Rerun options.
type RerunOptions struct {
	RebuildFailed, FreshEval bool
}

// ClaimDelivery records a webhook delivery; false when it was seen before.
func (s *Store) ClaimDelivery(ctx context.Context, id, event string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO deliveries (id, event, received_at) VALUES (?, ?, ?)`, id, event, time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim delivery %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ForgetDelivery drops a claimed delivery whose handling failed, so that
// GitHub's redelivery is handled.
func (s *Store) ForgetDelivery(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM deliveries WHERE id = ?`, id); err != nil {
		return fmt.Errorf("forget delivery %s: %w", id, err)
	}
	return nil
}

// AddRevision queues rev unless the same head of the same PR is known,
// and supersedes the PR's (a push revision: its branch's) other live
// revisions. It returns the revision's
// id, whether it is new, and the ids it superseded.
func (s *Store) AddRevision(ctx context.Context, rev Revision) (int64, bool, []int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, nil, fmt.Errorf("add revision %s#%d: %w", rev.Repo, rev.PR, err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	res, err := tx.ExecContext(ctx, `
		INSERT OR IGNORE INTO revisions (repo, installation_id, clone_url, pr, head_sha, base_ref, branch, author, title, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rev.Repo, rev.InstallationID, rev.CloneURL, rev.PR, rev.HeadSHA, rev.BaseRef, rev.Branch, rev.Author, rev.Title, Queued, now, now)
	if err != nil {
		return 0, false, nil, fmt.Errorf("add revision %s#%d: %w", rev.Repo, rev.PR, err)
	}
	n, _ := res.RowsAffected()
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM revisions WHERE repo = ? AND pr = ? AND head_sha = ?`, rev.Repo, rev.PR, rev.HeadSHA).Scan(&id); err != nil {
		return 0, false, nil, fmt.Errorf("add revision %s#%d: %w", rev.Repo, rev.PR, err)
	}
	superseded, err := setStateWhere(ctx, tx, Superseded, `repo = ? AND pr = ? AND branch = ? AND id != ?`, rev.Repo, rev.PR, rev.Branch, id)
	if err != nil {
		return 0, false, nil, err
	}
	if !rev.Push() { // a PR under review again is open
		if _, err := tx.ExecContext(ctx, `DELETE FROM pr_closed WHERE repo = ? AND pr = ?`, rev.Repo, rev.PR); err != nil {
			return 0, false, nil, fmt.Errorf("add revision %s#%d: %w", rev.Repo, rev.PR, err)
		}
	}
	return id, n == 1, superseded, tx.Commit()
}

// CancelPR cancels the PR's live revisions and returns their ids.
func (s *Store) CancelPR(ctx context.Context, repo string, pr int) ([]int64, error) {
	return s.cancelPR(ctx, repo, pr, nil)
}

// ClosePR cancels the PR's live revisions, returns their ids and records
// the PR as closed from now (its outputs stay rooted gc.pr_keep longer),
// merged or not.
func (s *Store) ClosePR(ctx context.Context, repo string, pr int, merged bool) ([]int64, error) {
	return s.cancelPR(ctx, repo, pr, &merged)
}

func (s *Store) cancelPR(ctx context.Context, repo string, pr int, merged *bool) ([]int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cancel %s#%d: %w", repo, pr, err)
	}
	defer tx.Rollback()
	ids, err := setStateWhere(ctx, tx, Cancelled, `repo = ? AND pr = ?`, repo, pr)
	if err != nil {
		return nil, err
	}
	if merged != nil {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO pr_closed (repo, pr, closed_at, merged) VALUES (?, ?, ?, ?)`, repo, pr, time.Now().UnixMilli(), *merged); err != nil {
			return nil, fmt.Errorf("close %s#%d: %w", repo, pr, err)
		}
	}
	return ids, tx.Commit()
}

// setStateWhere moves the live revisions (queued, evaluating, building)
// matching where to state and returns their ids.
func setStateWhere(ctx context.Context, tx *sql.Tx, state, where string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM revisions WHERE state IN ('queued', 'evaluating', 'building') AND `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("revisions to %s: %w", state, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE revisions SET state = ?, updated_at = ? WHERE id = ?`, state, time.Now().UnixMilli(), id); err != nil {
			return nil, fmt.Errorf("revision %d to %s: %w", id, state, err)
		}
	}
	return ids, nil
}

// TakeRevision moves the oldest queued revision to evaluating and returns
// it; ErrNotFound when none is queued.
func (s *Store) TakeRevision(ctx context.Context) (*Revision, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("take revision: %w", err)
	}
	defer tx.Rollback()
	rev, err := scanRevision(tx.QueryRowContext(ctx, revisionColumns+` WHERE state = 'queued' AND not_before <= ? ORDER BY created_at, id LIMIT 1`, time.Now().UnixMilli()))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE revisions SET state = ?, updated_at = ? WHERE id = ?`, Evaluating, time.Now().UnixMilli(), rev.ID); err != nil {
		return nil, fmt.Errorf("take revision %d: %w", rev.ID, err)
	}
	rev.State = Evaluating
	return rev, tx.Commit()
}

// Rerun queues the revisions of repo at head again, as new attempts with
// new check runs (building remembered failures again when rebuildFailed);
// one still being worked on is queued again when it finishes. It returns
// how many revisions it concerned.
func (s *Store) Rerun(ctx context.Context, repo, head string, rebuildFailed bool) (int64, error) {
	return s.rerun(ctx, `repo = ? AND head_sha = ?`, []any{repo, head}, RerunOptions{RebuildFailed: rebuildFailed})
}

// RerunRevision queues a revision again as a new attempt (with new check
// runs) as opt says, at once when it is finished, else when it finishes;
// false when it was stopped (superseded or cancelled).
func (s *Store) RerunRevision(ctx context.Context, id int64, opt RerunOptions, done ...StepDone) (bool, error) {
	n, err := s.rerun(ctx, `id = ?`, []any{id}, opt, done...)
	return n > 0, err
}

func (opt RerunOptions) bits() int {
	b := 1
	if opt.RebuildFailed {
		b |= 2
	}
	if opt.FreshEval {
		b |= 4
	}
	return b
}

func (s *Store) rerun(ctx context.Context, where string, args []any, opt RerunOptions, done ...StepDone) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("rerun: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE revisions SET pending_rerun = pending_rerun | ?
		WHERE state IN ('queued', 'evaluating', 'building', 'publishing', 'done', 'failed') AND `+where, append([]any{opt.bits()}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("rerun: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := startPendingReruns(ctx, tx); err != nil {
		return 0, err
	}
	if err := markSteps(ctx, tx, done); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// startPendingReruns queues the finished revisions with a pending re-run
// as their next attempt, with new check runs.
func startPendingReruns(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM check_runs WHERE revision_id IN
		(SELECT id FROM revisions WHERE pending_rerun != 0 AND state IN ('done', 'failed'))`); err != nil {
		return fmt.Errorf("rerun: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE revisions SET state = 'queued', attempt = attempt + 1,
			rebuild_failed = (pending_rerun & 2) != 0, fresh_eval = (pending_rerun & 4) != 0, pending_rerun = 0,
			not_before = 0, machine_failures = 0, updated_at = ?
		WHERE pending_rerun != 0 AND state IN ('done', 'failed')`, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("rerun: %w", err)
	}
	return nil
}

// Requeue puts revisions that were being worked on back in the queue: at
// start, for the work a stopped server left unfinished.
func (s *Store) Requeue(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE revisions SET state = 'queued', updated_at = ? WHERE state IN ('evaluating', 'building')`, time.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("requeue revisions: %w", err)
	}
	return res.RowsAffected()
}

// FinishRevision sets a revision's state, unless it was superseded or
// cancelled meanwhile (those states stay); report and msg are kept when
// set. A re-run asked meanwhile starts now, when the state is a finished one.
func (s *Store) FinishRevision(ctx context.Context, id int64, state string, report []byte, msg string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revision %d to %s: %w", id, state, err)
	}
	defer tx.Rollback()
	if err := finishRevision(ctx, tx, id, state, report, msg); err != nil {
		return err
	}
	return tx.Commit()
}

func finishRevision(ctx context.Context, tx *sql.Tx, id int64, state string, report []byte, msg string) error {
	if _, err := tx.ExecContext(ctx, `
		UPDATE revisions SET state = CASE WHEN state IN ('superseded', 'cancelled') THEN state ELSE ? END,
			report = COALESCE(?, report), error = ?, updated_at = ? WHERE id = ?`,
		state, report, msg, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("revision %d to %s: %w", id, state, err)
	}
	return startPendingReruns(ctx, tx)
}

// RetryLater queues a revision that failed for the machine's fault again,
// to be taken not before at, with msg as its error meanwhile, unless it
// was superseded or cancelled; it returns false then.
func (s *Store) RetryLater(ctx context.Context, id int64, at time.Time, msg string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE revisions SET state = 'queued', not_before = ?, machine_failures = machine_failures + 1,
		error = ?, updated_at = ? WHERE id = ? AND state NOT IN ('superseded', 'cancelled')`, at.UnixMilli(), msg, time.Now().UnixMilli(), id)
	if err != nil {
		return false, fmt.Errorf("retry revision %d later: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Revision returns one revision.
func (s *Store) Revision(ctx context.Context, id int64) (*Revision, error) {
	return scanRevision(s.db.QueryRowContext(ctx, revisionColumns+` WHERE id = ?`, id))
}

// Revisions returns the newest revisions, at most limit.
func (s *Store) Revisions(ctx context.Context, limit int) ([]*Revision, error) {
	out, err := s.queryRevisions(ctx, ` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("revisions: %w", err)
	}
	return out, nil
}

// queryRevisions returns the revisions revisionColumns+tail selects.
func (s *Store) queryRevisions(ctx context.Context, tail string, args ...any) ([]*Revision, error) {
	rows, err := s.db.QueryContext(ctx, revisionColumns+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const revisionColumns = `SELECT id, repo, installation_id, clone_url, pr, head_sha, base_ref, state, error, report, created_at, attempt, rebuild_failed, fresh_eval, machine_failures, branch, author, title FROM revisions`

func scanRevision(row interface{ Scan(...any) error }) (*Revision, error) {
	var r Revision
	var created int64
	err := row.Scan(&r.ID, &r.Repo, &r.InstallationID, &r.CloneURL, &r.PR, &r.HeadSHA, &r.BaseRef, &r.State, &r.Error, &r.Report, &created, &r.Attempt, &r.RebuildFailed, &r.FreshEval, &r.MachineFailures, &r.Branch, &r.Author, &r.Title)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revision: %w", err)
	}
	r.Created = time.UnixMilli(created)
	return &r, nil
}

// CheckRunID returns the GitHub id of a revision's check run, 0 when it
// has none yet.
func (s *Store) CheckRunID(ctx context.Context, revision int64, name string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT github_id FROM check_runs WHERE revision_id = ? AND name = ?`, revision, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("check run %q of revision %d: %w", name, revision, err)
	}
	return id, nil
}

// PutCheckRunID remembers a revision's check run.
func (s *Store) PutCheckRunID(ctx context.Context, revision int64, name string, id int64) error {
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO check_runs (revision_id, name, github_id) VALUES (?, ?, ?)`, revision, name, id); err != nil {
		return fmt.Errorf("check run %q of revision %d: %w", name, revision, err)
	}
	return nil
}

// PRRevisions returns the revisions of one PR, newest first.
func (s *Store) PRRevisions(ctx context.Context, repo string, pr int) ([]*Revision, error) {
	out, err := s.queryRevisions(ctx, ` WHERE repo = ? AND pr = ? ORDER BY id DESC`, repo, pr)
	if err != nil {
		return nil, fmt.Errorf("revisions of %s#%d: %w", repo, pr, err)
	}
	return out, nil
}

// BranchRevisions returns the push revisions of a tracked branch, newest
// first, at most limit.
func (s *Store) BranchRevisions(ctx context.Context, repo, branch string, limit int) ([]*Revision, error) {
	out, err := s.queryRevisions(ctx, ` WHERE repo = ? AND pr = 0 AND branch = ? ORDER BY id DESC LIMIT ?`, repo, branch, limit)
	if err != nil {
		return nil, fmt.Errorf("revisions of %s %s: %w", repo, branch, err)
	}
	return out, nil
}

// CountRevisions returns how many revisions are in state.
func (s *Store) CountRevisions(ctx context.Context, state string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revisions WHERE state = ?`, state).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s revisions: %w", state, err)
	}
	return n, nil
}

// CheckRunFinal reports whether the check run's final output was sent.
func (s *Store) CheckRunFinal(ctx context.Context, revision int64, name string) (bool, error) {
	var final bool
	err := s.db.QueryRowContext(ctx, `SELECT final FROM check_runs WHERE revision_id = ? AND name = ?`, revision, name).Scan(&final)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check run %q of revision %d: %w", name, revision, err)
	}
	return final, nil
}

// SetCheckRunFinal records that the check run's final output was sent.
func (s *Store) SetCheckRunFinal(ctx context.Context, revision int64, name string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE check_runs SET final = 1 WHERE revision_id = ? AND name = ?`, revision, name); err != nil {
		return fmt.Errorf("check run %q of revision %d: %w", name, revision, err)
	}
	return nil
}

// OpenCheckRuns returns the names of the revision's check runs whose final
// output was not sent, in name order.
func (s *Store) OpenCheckRuns(ctx context.Context, revision int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM check_runs WHERE revision_id = ? AND final = 0 ORDER BY name`, revision)
	if err != nil {
		return nil, fmt.Errorf("open check runs of revision %d: %w", revision, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("open check runs of revision %d: %w", revision, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open check runs of revision %d: %w", revision, err)
	}
	return out, nil
}

// RevisionsIn returns the revisions in state, oldest first.
func (s *Store) RevisionsIn(ctx context.Context, state string) ([]*Revision, error) {
	out, err := s.queryRevisions(ctx, ` WHERE state = ? ORDER BY id`, state)
	if err != nil {
		return nil, fmt.Errorf("%s revisions: %w", state, err)
	}
	return out, nil
}
