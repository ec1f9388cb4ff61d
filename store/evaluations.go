package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EvalKey identifies a cached evaluation.
type EvalKey struct {
	Repo, Commit, System, ConfigHash, Evaluator string
}

func (k EvalKey) String() string {
	return fmt.Sprintf("%s@%s/%s", k.Repo, k.Commit, k.System)
}

// EvalRecord is a stored evaluation. Attribute data is opaque JSON owned by
// the caller; DrvPath is kept apart so history can be queried by derivation.
type EvalRecord struct {
	Key          EvalKey
	ErrorMessage string // set when the package set itself failed
	ErrorFile    string
	ErrorLine    int
	Duration     time.Duration
	Processes    int
	Attrs        []AttrRow
}

// AttrRow is one attribute of an evaluation.
type AttrRow struct {
	Attr    string
	DrvPath string // "" when the attribute failed
	Data    []byte
}

// Evaluation returns the evaluation stored under key, or ErrNotFound.
func (s *Store) Evaluation(ctx context.Context, key EvalKey) (*EvalRecord, error) {
	rec := &EvalRecord{Key: key}
	var id int64
	var msg, file sql.NullString
	var line sql.NullInt64
	var ms int64
	err := s.db.QueryRowContext(ctx, `
		SELECT id, error_message, error_file, error_line, duration_ms, processes
		FROM evaluations
		WHERE repo = ? AND commit_sha = ? AND system = ? AND config_hash = ? AND evaluator = ?`,
		key.Repo, key.Commit, key.System, key.ConfigHash, key.Evaluator,
	).Scan(&id, &msg, &file, &line, &ms, &rec.Processes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("evaluation %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	rec.ErrorMessage, rec.ErrorFile, rec.ErrorLine = msg.String, file.String, int(line.Int64)
	rec.Duration = time.Duration(ms) * time.Millisecond
	rows, err := s.db.QueryContext(ctx, `SELECT attr, drv_path, data FROM eval_attrs WHERE evaluation_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a AttrRow
		var drv sql.NullString
		if err := rows.Scan(&a.Attr, &drv, &a.Data); err != nil {
			return nil, fmt.Errorf("evaluation %s: %w", key, err)
		}
		a.DrvPath = drv.String
		rec.Attrs = append(rec.Attrs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	return rec, nil
}

// PutEvaluation stores rec, replacing an evaluation stored under the same key.
func (s *Store) PutEvaluation(ctx context.Context, rec *EvalRecord) error {
	k := rec.Key
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `
		DELETE FROM evaluations
		WHERE repo = ? AND commit_sha = ? AND system = ? AND config_hash = ? AND evaluator = ?`,
		k.Repo, k.Commit, k.System, k.ConfigHash, k.Evaluator); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO evaluations (repo, commit_sha, system, config_hash, evaluator,
			error_message, error_file, error_line, duration_ms, processes, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Repo, k.Commit, k.System, k.ConfigHash, k.Evaluator,
		nullString(rec.ErrorMessage), nullString(rec.ErrorFile), rec.ErrorLine,
		rec.Duration.Milliseconds(), rec.Processes, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO eval_attrs (evaluation_id, attr, drv_path, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	defer stmt.Close()
	for _, a := range rec.Attrs {
		if _, err := stmt.ExecContext(ctx, id, a.Attr, nullString(a.DrvPath), a.Data); err != nil {
			return fmt.Errorf("put evaluation %s: attribute %s: %w", k, a.Attr, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	return nil
}

// Tests returns the stored tests of the given attributes of an evaluation;
// attributes without stored tests are absent from the map.
func (s *Store) Tests(ctx context.Context, key EvalKey, attrs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, a := range attrs {
		var data []byte
		err := s.db.QueryRowContext(ctx, `
			SELECT t.data FROM eval_tests t JOIN evaluations e ON e.id = t.evaluation_id
			WHERE e.repo = ? AND e.commit_sha = ? AND e.system = ? AND e.config_hash = ? AND e.evaluator = ? AND t.attr = ?`,
			key.Repo, key.Commit, key.System, key.ConfigHash, key.Evaluator, a).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tests of %s in %s: %w", a, key, err)
		}
		out[a] = data
	}
	return out, nil
}

// PutTests stores tests of attributes of an evaluation already stored.
func (s *Store) PutTests(ctx context.Context, key EvalKey, tests map[string][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put tests %s: %w", key, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `
		SELECT id FROM evaluations
		WHERE repo = ? AND commit_sha = ? AND system = ? AND config_hash = ? AND evaluator = ?`,
		key.Repo, key.Commit, key.System, key.ConfigHash, key.Evaluator).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("put tests %s: evaluation %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put tests %s: %w", key, err)
	}
	for attr, data := range tests {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO eval_tests (evaluation_id, attr, data) VALUES (?, ?, ?)`, id, attr, data); err != nil {
			return fmt.Errorf("put tests %s: %s: %w", key, attr, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put tests %s: %w", key, err)
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
