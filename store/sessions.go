package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Session is a logged-in web user.
type Session struct {
	Login   string
	CSRF    string // the token every form of the session carries
	Expires time.Time
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// PutSession records a session by its cookie's value id.
func (s *Store) PutSession(ctx context.Context, id string, sess Session) error {
	now := time.Now()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, now.UnixMilli()); err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, login, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		sessionKey(id), sess.Login, sess.CSRF, now.UnixMilli(), sess.Expires.UnixMilli()); err != nil {
		return fmt.Errorf("put session of %s: %w", sess.Login, err)
	}
	return nil
}

// Session returns the live session of the cookie's value id, ErrNotFound
// when there is none (or it expired).
func (s *Store) Session(ctx context.Context, id string) (*Session, error) {
	var sess Session
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT login, csrf, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?`,
		sessionKey(id), time.Now().UnixMilli()).Scan(&sess.Login, &sess.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	sess.Expires = time.UnixMilli(exp)
	return &sess, nil
}

// DeleteSession ends the session of the cookie's value id.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, sessionKey(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
