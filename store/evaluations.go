package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"
)

// EvalKey identifies a cached evaluation.
type EvalKey struct {
	Repo, Commit, System, ConfigHash, Evaluator string
}

func (k EvalKey) String() string {
	return fmt.Sprintf("%s@%s/%s", k.Repo, k.Commit, k.System)
}

// EvalRecord is a stored evaluation. Attrs is opaque JSON owned by the
// caller; the store compresses it.
type EvalRecord struct {
	Key          EvalKey
	ErrorMessage string // set when the package set itself failed
	ErrorFile    string
	ErrorLine    int
	AttrCount    int
	Attrs        []byte
	Duration     time.Duration
	Processes    int
}

const evalKeyWhere = `repo = ? AND commit_sha = ? AND system = ? AND config_hash = ? AND evaluator = ?`

func (k EvalKey) args() []any {
	return []any{k.Repo, k.Commit, k.System, k.ConfigHash, k.Evaluator}
}

// HasEvaluation says whether an evaluation is stored under key, without
// reading it.
func (s *Store) HasEvaluation(ctx context.Context, key EvalKey) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM evaluations WHERE `+evalKeyWhere, key.args()...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("evaluation %s: %w", key, err)
	}
	return true, nil
}

// Evaluation returns the evaluation stored under key, or ErrNotFound.
func (s *Store) Evaluation(ctx context.Context, key EvalKey) (*EvalRecord, error) {
	rec := &EvalRecord{Key: key}
	var msg, file sql.NullString
	var line sql.NullInt64
	var ms int64
	var blob []byte
	err := s.db.QueryRowContext(ctx, `
		SELECT error_message, error_file, error_line, attr_count, attrs, duration_ms, processes
		FROM evaluations WHERE `+evalKeyWhere, key.args()...,
	).Scan(&msg, &file, &line, &rec.AttrCount, &blob, &ms, &rec.Processes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("evaluation %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	rec.ErrorMessage, rec.ErrorFile, rec.ErrorLine = msg.String, file.String, int(line.Int64)
	rec.Duration = time.Duration(ms) * time.Millisecond
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	if rec.Attrs, err = io.ReadAll(zr); err != nil {
		return nil, fmt.Errorf("evaluation %s: %w", key, err)
	}
	return rec, nil
}

// PutEvaluation stores rec, replacing an evaluation stored under the same
// key (and what was learnt about its attributes).
func (s *Store) PutEvaluation(ctx context.Context, rec *EvalRecord) error {
	k := rec.Key
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(rec.Attrs); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM evaluations WHERE `+evalKeyWhere, k.args()...); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO evaluations (repo, commit_sha, system, config_hash, evaluator,
			error_message, error_file, error_line, attr_count, attrs, duration_ms, processes, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Repo, k.Commit, k.System, k.ConfigHash, k.Evaluator,
		nullString(rec.ErrorMessage), nullString(rec.ErrorFile), rec.ErrorLine, rec.AttrCount, buf.Bytes(),
		rec.Duration.Milliseconds(), rec.Processes, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put evaluation %s: %w", k, err)
	}
	return nil
}

// Extras returns what is stored of kind for the given attributes of an
// evaluation; attributes without an entry are absent from the map.
func (s *Store) Extras(ctx context.Context, key EvalKey, kind string, attrs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(attrs) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT x.attr, x.data FROM eval_extras x JOIN evaluations e ON e.id = x.evaluation_id
		WHERE x.kind = ? AND e.repo = ? AND e.commit_sha = ? AND e.system = ?
			AND e.config_hash = ? AND e.evaluator = ?`,
		append([]any{kind}, key.args()...)...)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", kind, key, err)
	}
	defer rows.Close()
	want := make(map[string]bool, len(attrs))
	for _, a := range attrs {
		want[a] = true
	}
	for rows.Next() {
		var attr string
		var data []byte
		if err := rows.Scan(&attr, &data); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", kind, key, err)
		}
		if want[attr] {
			out[attr] = data
		}
	}
	return out, rows.Err()
}

// PutExtras stores entries of kind for attributes of a stored evaluation.
func (s *Store) PutExtras(ctx context.Context, key EvalKey, kind string, entries map[string][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put %s of %s: %w", kind, key, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM evaluations WHERE `+evalKeyWhere, key.args()...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("put %s of %s: evaluation %w", kind, key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("put %s of %s: %w", kind, key, err)
	}
	// One statement prepared for the thousands of rows of a large PR.
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO eval_extras (evaluation_id, kind, attr, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("put %s of %s: %w", kind, key, err)
	}
	defer stmt.Close()
	for attr, data := range entries {
		if _, err := stmt.ExecContext(ctx, id, kind, attr, data); err != nil {
			return fmt.Errorf("put %s of %s: %s: %w", kind, key, attr, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put %s of %s: %w", kind, key, err)
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
