package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job states.
const (
	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is one piece of work known to the database before it is done.
type Job struct {
	ID   int64
	Kind string
	// Serial orders jobs: those with the same non-empty serial run one at
	// a time, oldest first.
	Serial   string
	State    string
	Payload  json.RawMessage
	Step     int // steps done
	Attempts int // times taken
	Error    string
	Created  time.Time
}

// Decode decodes the job's payload into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("job %d (%s): payload: %w", j.ID, j.Kind, err)
	}
	return nil
}

// NewJob is a job to add: its payload is stored as JSON.
type NewJob struct {
	Kind, Serial string
	Payload      any
}

// StepDone names a step of a job, recorded done in the same transaction
// as the write that does it: a job resumed after a crash neither misses
// nor repeats it.
type StepDone struct {
	Job  int64
	Step int
}

// AddJob records a job, queued, and returns its id; done, when given, is
// recorded with it.
func (s *Store) AddJob(ctx context.Context, j NewJob, done ...StepDone) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("add %s job: %w", j.Kind, err)
	}
	defer tx.Rollback()
	id, err := addJob(ctx, tx, j)
	if err == nil {
		err = markSteps(ctx, tx, done)
	}
	if err != nil {
		return 0, err
	}
	return id, tx.Commit()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func addJob(ctx context.Context, db execer, j NewJob) (int64, error) {
	data, err := json.Marshal(j.Payload)
	if err != nil {
		return 0, fmt.Errorf("add %s job: %w", j.Kind, err)
	}
	now := time.Now().UnixMilli()
	res, err := db.ExecContext(ctx, `INSERT INTO jobs (kind, serial, payload, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		j.Kind, j.Serial, string(data), now, now)
	if err != nil {
		return 0, fmt.Errorf("add %s job: %w", j.Kind, err)
	}
	return res.LastInsertId()
}

func markSteps(ctx context.Context, db execer, done []StepDone) error {
	for _, d := range done {
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET step = max(step, ?), updated_at = ? WHERE id = ?`, d.Step, time.Now().UnixMilli(), d.Job); err != nil {
			return fmt.Errorf("job %d step %d: %w", d.Job, d.Step, err)
		}
	}
	return nil
}

// TakeJob marks the oldest job that may run now running and returns it:
// queued, its not-before passed, of none of the kinds in busy, and the
// first unfinished one of its serial. ErrNotFound when there is none.
func (s *Store) TakeJob(ctx context.Context, busy []string) (*Job, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("take job: %w", err)
	}
	defer tx.Rollback()
	args := []any{time.Now().UnixMilli()}
	skip := ""
	if len(busy) > 0 {
		skip = " AND kind NOT IN (" + placeholders(len(busy)) + ")"
		for _, k := range busy {
			args = append(args, k)
		}
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs j
		WHERE state = 'queued' AND not_before <= ?`+skip+`
		AND (serial = '' OR NOT EXISTS (SELECT 1 FROM jobs o WHERE o.serial = j.serial AND o.id < j.id AND o.state IN ('queued', 'running')))
		ORDER BY id LIMIT 1`, args...))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?`,
		time.Now().UnixMilli(), j.ID); err != nil {
		return nil, fmt.Errorf("take job %d: %w", j.ID, err)
	}
	j.State, j.Attempts = JobRunning, j.Attempts+1
	return j, tx.Commit()
}

const jobColumns = `id, kind, serial, state, payload, step, attempts, error, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanJob(row scanner) (*Job, error) {
	var j Job
	var payload string
	var at int64
	err := row.Scan(&j.ID, &j.Kind, &j.Serial, &j.State, &payload, &j.Step, &j.Attempts, &j.Error, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read job: %w", err)
	}
	j.Payload, j.Created = json.RawMessage(payload), time.UnixMilli(at)
	return &j, nil
}

// JobStep records that a running job did its steps up to step.
func (s *Store) JobStep(ctx context.Context, d StepDone) error {
	return markSteps(ctx, s.db, []StepDone{d})
}

// PendingJobs counts the unfinished jobs of a serial.
func (s *Store) PendingJobs(ctx context.Context, serial string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE serial = ? AND state IN ('queued', 'running')`, serial).Scan(&n); err != nil {
		return 0, fmt.Errorf("jobs of %s: %w", serial, err)
	}
	return n, nil
}

// FinishJob ends a job: done when msg is "", else failed with msg.
func (s *Store) FinishJob(ctx context.Context, id int64, msg string) error {
	state := JobDone
	if msg != "" {
		state = JobFailed
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?`,
		state, msg, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("finish job %d: %w", id, err)
	}
	return nil
}

// RetryJob queues a job again, not before at, keeping what went wrong.
func (s *Store) RetryJob(ctx context.Context, id int64, at time.Time, msg string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = 'queued', not_before = ?, error = ?, updated_at = ? WHERE id = ?`,
		at.UnixMilli(), msg, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	return nil
}

// RequeueJobs queues again the jobs left running by a server that stopped,
// and returns how many.
func (s *Store) RequeueJobs(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = 'queued', updated_at = ? WHERE state = 'running'`, time.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("requeue jobs: %w", err)
	}
	return res.RowsAffected()
}

// Jobs returns the jobs of a kind (all kinds when kind is ""), newest
// first, at most limit.
func (s *Store) Jobs(ctx context.Context, kind string, limit int) ([]*Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE ? = '' OR kind = ? ORDER BY id DESC LIMIT ?`, kind, kind, limit)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// NextJobAt returns when the earliest queued job may run, zero when none
// is queued.
func (s *Store) NextJobAt(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(not_before) FROM jobs WHERE state = 'queued'`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("next job: %w", err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(at.Int64), nil
}

// UnfinishedJobs counts the queued and running jobs of the kinds given.
func (s *Store) UnfinishedJobs(ctx context.Context, kinds ...string) (int, error) {
	args := []any{}
	for _, k := range kinds {
		args = append(args, k)
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')
		AND kind IN (`+placeholders(len(kinds))+`)`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unfinished jobs: %w", err)
	}
	return n, nil
}
