package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/internal/redact"
	"github.com/basinix/basinix/store"
)

// A permission is kept for accessTTL, and a long-running server does not
// keep every user it ever saw: expired entries go at the next sweep.
func TestPermissionCacheExpiresAndStaysBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	c := ttlCache[string]{now: func() time.Time { return now }}
	c.put("alice", "write")
	if v, ok := c.get("alice"); !ok || v != "write" {
		t.Fatalf("fresh entry: %q %v", v, ok)
	}
	now = now.Add(accessTTL)
	if _, ok := c.get("alice"); ok {
		t.Fatal("an entry older than accessTTL is still given")
	}
	// A day of users, a new one every minute.
	for i := range 24 * 60 {
		now = now.Add(time.Minute)
		c.put(fmt.Sprintf("user%d", i), "read")
	}
	if n := len(c.m); n > 2*int(accessTTL/time.Minute) {
		t.Errorf("the cache holds %d users after a day, want at most two TTLs' worth", n)
	}
	if _, ok := c.get("user1439"); !ok {
		t.Error("the newest user was swept")
	}
}

// countingStore counts the session reads of a real store.
type countingStore struct {
	*store.Store
	sessions atomic.Int32
}

func (c *countingStore) Session(ctx context.Context, id string) (*store.Session, error) {
	c.sessions.Add(1)
	return c.Store.Session(ctx, id)
}

// A page asks who is logged in in several places (the header, its forms,
// what the user may read): the session is read from the database once.
func TestPageReadsItsSessionOnce(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "basinix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutSession(ctx, "cookie", store.Session{Login: "alice", CSRF: "t", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	mux := http.NewServeMux()
	New(Settings{PublicURL: "http://basinix.test"}, cs, nil, redact.New(), time.Minute, zerolog.Nop()).Register(mux)
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "cookie"})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "alice") {
		t.Fatalf("index: %d\n%s", rec.Code, rec.Body)
	}
	if n := cs.sessions.Load(); n != 1 {
		t.Errorf("the index read the session %d times, want once", n)
	}
}
