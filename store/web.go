package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// What the web pages read: summaries of PRs, verdict counts, searches,
// who waits for a derivation.

// PRSummary is a PR as the index lists it: its newest revision, and the
// newest one with verdicts.
type PRSummary struct {
	Repo          string
	PR            int
	Title, Author string
	Head, State   string // the newest revision's
	Revision      int64  // the newest revision
	Reviewed      int64  // the newest revision with verdicts (0: none yet)
	Created       time.Time
	Updated       time.Time
	Closed        time.Time // zero while open
	Merged        bool
}

// PRSummaries returns the PRs basinix saw, most recently active first, at
// most limit; repo "" for every repository.
func (s *Store) PRSummaries(ctx context.Context, repo string, limit int) ([]PRSummary, error) {
	where, args := "", []any{}
	if repo != "" {
		where, args = "WHERE r.repo = ?", append(args, repo)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.repo, r.pr, r.head_sha, r.state, r.id, r.author, r.created_at, r.updated_at,
		  COALESCE((SELECT t.title FROM revisions t WHERE t.repo = r.repo AND t.pr = r.pr AND t.branch = '' AND t.title != '' ORDER BY t.id DESC LIMIT 1), ''),
		  COALESCE((SELECT MAX(c.revision_id) FROM verdict_counts c JOIN revisions v ON v.id = c.revision_id WHERE v.repo = r.repo AND v.pr = r.pr AND v.branch = ''), 0),
		  COALESCE(pc.closed_at, 0), COALESCE(pc.merged, 0)
		FROM revisions r
		JOIN (SELECT MAX(id) AS id FROM revisions WHERE branch = '' GROUP BY repo, pr) l ON l.id = r.id
		LEFT JOIN pr_closed pc ON pc.repo = r.repo AND pc.pr = r.pr
		`+where+` ORDER BY r.updated_at DESC, r.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("pull requests: %w", err)
	}
	defer rows.Close()
	var out []PRSummary
	for rows.Next() {
		var p PRSummary
		var created, updated, closed int64
		if err := rows.Scan(&p.Repo, &p.PR, &p.Head, &p.State, &p.Revision, &p.Author, &created, &updated, &p.Title, &p.Reviewed, &closed, &p.Merged); err != nil {
			return nil, fmt.Errorf("pull requests: %w", err)
		}
		p.Created, p.Updated, p.Closed = time.UnixMilli(created), time.UnixMilli(updated), fromMillis(closed)
		out = append(out, p)
	}
	return out, rows.Err()
}

// VerdictCounts returns, per revision, system and verdict, how many
// attributes have it.
func (s *Store) VerdictCounts(ctx context.Context, revisions []int64) (map[int64]map[string]map[string]int, error) {
	out := map[int64]map[string]map[string]int{}
	for len(revisions) > 0 {
		n := min(len(revisions), 500)
		args := make([]any, n)
		for i, r := range revisions[:n] {
			args[i] = r
		}
		rows, err := s.db.QueryContext(ctx, `SELECT revision_id, system, verdict, n FROM verdict_counts WHERE revision_id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("verdict counts: %w", err)
		}
		for rows.Next() {
			var id int64
			var system, verdict string
			var c int
			if err := rows.Scan(&id, &system, &verdict, &c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("verdict counts: %w", err)
			}
			if out[id] == nil {
				out[id] = map[string]map[string]int{}
			}
			if out[id][system] == nil {
				out[id][system] = map[string]int{}
			}
			out[id][system][verdict] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		revisions = revisions[n:]
	}
	return out, nil
}

// AttrHit is an attribute a search found in a revision's verdicts.
type AttrHit struct {
	Repo     string
	PR       int
	Branch   string
	Revision int64
	System   string
	Attr     string
	Verdict  string
	DrvPath  string
}

// SearchAttrs returns the newest verdicts of attributes whose name
// contains q, at most limit.
func (s *Store) SearchAttrs(ctx context.Context, q string, limit int) ([]AttrHit, error) {
	like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(q) + "%"
	rows, err := s.db.QueryContext(ctx, `
		SELECT r.repo, r.pr, r.branch, v.revision_id, v.system, v.attr, v.verdict, v.drv_path
		FROM verdicts v JOIN revisions r ON r.id = v.revision_id
		WHERE v.attr LIKE ? ESCAPE '\' ORDER BY v.revision_id DESC, v.attr LIMIT ?`, like, limit)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", q, err)
	}
	defer rows.Close()
	var out []AttrHit
	for rows.Next() {
		var h AttrHit
		if err := rows.Scan(&h.Repo, &h.PR, &h.Branch, &h.Revision, &h.System, &h.Attr, &h.Verdict, &h.DrvPath); err != nil {
			return nil, fmt.Errorf("search %q: %w", q, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Waiter is a PR or branch that wants a derivation built.
type Waiter struct {
	Repo   string
	PR     int    // 0 for a branch
	Branch string // the branch, or the PR's revision's pushed branch
	System string
	Attr   string
	Side   string // "head", "base" or, for a branch, the commit
}

// Waiters returns who wants drv: the PRs (and pushes) whose verdicts name
// it, and the branches whose history does, at most limit of each.
func (s *Store) Waiters(ctx context.Context, drv string, limit int) ([]Waiter, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT DISTINCT r.repo, r.pr, r.branch, v.system, v.attr, CASE WHEN v.drv_path = ?1 THEN 'head' ELSE 'base' END
		FROM verdicts v JOIN revisions r ON r.id = v.revision_id
		WHERE v.drv_path = ?1 OR v.base_drv_path = ?1 ORDER BY r.id DESC LIMIT ?2`, drv, limit)
	if err != nil {
		return nil, fmt.Errorf("who waits for %s: %w", drv, err)
	}
	var out []Waiter
	for rows.Next() {
		var w Waiter
		if err := rows.Scan(&w.Repo, &w.PR, &w.Branch, &w.System, &w.Attr, &w.Side); err != nil {
			rows.Close()
			return nil, fmt.Errorf("who waits for %s: %w", drv, err)
		}
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT DISTINCT repo, branch, system, attr, commit_sha FROM attr_history WHERE drv_path = ? ORDER BY seen_at DESC LIMIT ?`, drv, limit)
	if err != nil {
		return nil, fmt.Errorf("who waits for %s: %w", drv, err)
	}
	defer rows.Close()
	for rows.Next() {
		var w Waiter
		if err := rows.Scan(&w.Repo, &w.Branch, &w.System, &w.Attr, &w.Side); err != nil {
			return nil, fmt.Errorf("who waits for %s: %w", drv, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// RepoInstallation is the installation basinix last reviewed repo with.
func (s *Store) RepoInstallation(ctx context.Context, repo string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT installation_id FROM revisions WHERE repo = ? ORDER BY id DESC LIMIT 1`, repo).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("installation of %s: %w", repo, notFound(err))
	}
	return id, nil
}

// PRClosed says whether the PR was closed, and merged.
func (s *Store) PRClosed(ctx context.Context, repo string, pr int) (closed, merged bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT 1, merged FROM pr_closed WHERE repo = ? AND pr = ?`, repo, pr).Scan(&closed, &merged)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("is %s#%d closed: %w", repo, pr, err)
	}
	return closed, merged, nil
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// PutRepoPrivate records whether repo is private, as a webhook said.
func (s *Store) PutRepoPrivate(ctx context.Context, repo string, private bool) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO repos (repo, private, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET private = excluded.private, updated_at = excluded.updated_at`, repo, private, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("visibility of %s: %w", repo, err)
	}
	return nil
}

// RepoPrivate says whether repo is private; a repository no webhook told
// about is.
func (s *Store) RepoPrivate(ctx context.Context, repo string) (bool, error) {
	var private bool
	err := s.db.QueryRowContext(ctx, `SELECT private FROM repos WHERE repo = ?`, repo).Scan(&private)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("visibility of %s: %w", repo, err)
	}
	return private, nil
}
