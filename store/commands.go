package store

import (
	"context"
	"fmt"
	"time"
)

// CommandRecord is one comment command and what became of it.
type CommandRecord struct {
	Repo     string
	PR       int
	User     string
	Command  string
	Outcome  string
	Received time.Time
	// Via is how it came: "comment" or "web".
	Via string
}

// PutCommand records a command, and the job step that carried it out.
func (s *Store) PutCommand(ctx context.Context, c CommandRecord, done ...StepDone) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record command on %s#%d: %w", c.Repo, c.PR, err)
	}
	defer tx.Rollback()
	via := c.Via
	if via == "" {
		via = "comment"
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO commands (repo, pr, user, command, outcome, received_at, via) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Repo, c.PR, c.User, c.Command, c.Outcome, c.Received.UnixMilli(), via); err != nil {
		return fmt.Errorf("record command on %s#%d: %w", c.Repo, c.PR, err)
	}
	if err := markSteps(ctx, tx, done); err != nil {
		return err
	}
	return tx.Commit()
}

// Commands returns the commands of a PR, newest first, at most limit.
func (s *Store) Commands(ctx context.Context, repo string, pr, limit int) ([]CommandRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo, pr, user, command, outcome, received_at, via FROM commands
		WHERE repo = ? AND pr = ? ORDER BY id DESC LIMIT ?`, repo, pr, limit)
	if err != nil {
		return nil, fmt.Errorf("commands of %s#%d: %w", repo, pr, err)
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		var c CommandRecord
		var at int64
		if err := rows.Scan(&c.Repo, &c.PR, &c.User, &c.Command, &c.Outcome, &at, &c.Via); err != nil {
			return nil, fmt.Errorf("commands of %s#%d: %w", repo, pr, err)
		}
		c.Received = time.UnixMilli(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
