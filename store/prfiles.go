package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PRFile is one file a pull request changes.
type PRFile struct {
	Name      string `json:"name"`
	Status    string `json:"status"` // added, removed, modified, renamed, ...
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	// Patch is the file's diff as GitHub gives it (cut to MaxPatch; none
	// for binary files and very large diffs).
	Patch string `json:"patch,omitempty"`
}

// MaxPatch bounds one file's kept diff; MaxPatches a PR's.
const (
	MaxPatch   = 64 << 10
	MaxPatches = 1 << 20
)

// PutPRFiles records the files PR pr of repo changes at head, replacing
// what was recorded for an earlier head.
func (s *Store) PutPRFiles(ctx context.Context, repo string, pr int, head string, files []PRFile) error {
	b, err := json.Marshal(files)
	if err != nil {
		return fmt.Errorf("files of %s#%d: %w", repo, pr, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO pr_files (repo, pr, head_sha, files, fetched_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo, pr) DO UPDATE SET head_sha = excluded.head_sha, files = excluded.files, fetched_at = excluded.fetched_at`,
		repo, pr, head, string(b), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("files of %s#%d: %w", repo, pr, err)
	}
	return nil
}

// PRFiles returns the files recorded for PR pr of repo and the head they
// are of; ErrNotFound when none are.
func (s *Store) PRFiles(ctx context.Context, repo string, pr int) ([]PRFile, string, error) {
	var head, body string
	err := s.db.QueryRowContext(ctx, `SELECT head_sha, files FROM pr_files WHERE repo = ? AND pr = ?`, repo, pr).Scan(&head, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("files of %s#%d: %w", repo, pr, err)
	}
	var files []PRFile
	if err := json.Unmarshal([]byte(body), &files); err != nil {
		return nil, "", fmt.Errorf("files of %s#%d: %w", repo, pr, err)
	}
	return files, head, nil
}
