package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// githubHealth knows whether GitHub takes the App's credentials, from a
// GET /app with the App's JWT (no installation's quota), asked at most
// every healthEvery.
type githubHealth struct {
	cc githubapp.ClientCreator

	mu       sync.Mutex
	checked  time.Time // guarded by mu
	err      error     // guarded by mu: the last check's
	name     string    // guarded by mu: the App's name as GitHub says it
	checking bool      // guarded by mu: a check is under way
}

const healthEvery = 30 * time.Second

// errCredentials marks GitHub refusing the App's id or key.
var errCredentials = errors.New("GitHub refuses the App's credentials")

// check asks GitHub who the App is.
func (h *githubHealth) check(ctx context.Context) error {
	client, err := h.cc.NewAppClient()
	if err != nil {
		return fmt.Errorf("%w: %v", errCredentials, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	app, _, err := client.Apps.Get(ctx, "")
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil && (ge.Response.StatusCode == http.StatusUnauthorized || ge.Response.StatusCode == http.StatusNotFound) {
		err = fmt.Errorf("%w (check github.app.integration_id and the private key): %v", errCredentials, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checked, h.err = time.Now(), err
	if err == nil {
		h.name = app.GetName()
	}
	return err
}

// checkCredentials is check at start: a wrong App id or key is an error
// that says so; GitHub out of reach is not (it may come back), and
// /healthz reports it.
func (h *githubHealth) checkCredentials(ctx context.Context) error {
	if err := h.check(ctx); errors.Is(err, errCredentials) {
		return fmt.Errorf("github: %w", err)
	}
	return nil
}

// status returns the last check's result, checking again when it is old;
// one check at a time, however many ask meanwhile.
func (h *githubHealth) status(ctx context.Context) (name string, checked time.Time, err error) {
	h.mu.Lock()
	again := time.Since(h.checked) > healthEvery && !h.checking
	h.checking = h.checking || again
	h.mu.Unlock()
	if again {
		h.check(ctx)
		h.mu.Lock()
		h.checking = false
		h.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.name, h.checked, h.err
}

// healthz says whether basinix serves, and whether GitHub is in reach
// and takes the App's credentials. It answers 503 only when GitHub refuses
// them (basinix cannot work then); GitHub out of reach is reported, not a
// reason to restart basinix.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	name, checked, err := s.github.status(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case errors.Is(err, errCredentials):
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "github: %v\n", s.red.String(err.Error()))
	case err != nil:
		fmt.Fprintf(w, "ok\ngithub: unreachable (checked %s ago): %v\n", time.Since(checked).Round(time.Second), s.red.String(err.Error()))
	default:
		fmt.Fprintf(w, "ok\ngithub: reachable as %q (checked %s ago)\n", name, time.Since(checked).Round(time.Second))
	}
}
