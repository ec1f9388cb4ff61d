package app

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-github/v60/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// refreshingClients is a ClientCreator whose installation clients get a
// new installation token when GitHub answers 401 (a token revoked, or
// expired before the time it said): the request is sent once more with a
// fresh one. go-githubapp's caching creator keeps a token until its stated
// expiry, so an expired one failed every call until basinix restarted.
type refreshingClients struct {
	githubapp.ClientCreator // app, token and V4 clients: passed through

	mu      sync.Mutex
	clients map[int64]*github.Client // guarded by mu; stable per installation
}

func newRefreshingClients(delegate githubapp.ClientCreator) *refreshingClients {
	return &refreshingClients{ClientCreator: delegate, clients: map[int64]*github.Client{}}
}

// NewInstallationClient returns the installation's client, the same one
// every time.
func (c *refreshingClients) NewInstallationClient(id int64) (*github.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if client, ok := c.clients[id]; ok {
		return client, nil
	}
	inner, err := c.ClientCreator.NewInstallationClient(id)
	if err != nil {
		return nil, err
	}
	rt := &refreshing{fresh: func() (http.RoundTripper, error) {
		cl, err := c.ClientCreator.NewInstallationClient(id)
		if err != nil {
			return nil, err
		}
		return cl.Client().Transport, nil
	}, current: inner.Client().Transport}
	client := github.NewClient(&http.Client{Transport: rt, Timeout: inner.Client().Timeout})
	client.BaseURL, client.UploadURL, client.UserAgent = inner.BaseURL, inner.UploadURL, inner.UserAgent
	c.clients[id] = client
	return client, nil
}

// refreshing sends requests through the current transport of an
// installation and, on a 401, through a fresh one (a new token), once.
type refreshing struct {
	fresh func() (http.RoundTripper, error)

	mu         sync.Mutex
	current    http.RoundTripper // guarded by mu
	generation int               // guarded by mu: how many times current was replaced
}

func (r *refreshing) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	rt, gen := r.current, r.generation
	r.mu.Unlock()
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	next, ferr := r.fresh()
	if ferr != nil {
		return resp, nil // GitHub's 401 says more than our failure to refresh
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	if r.generation == gen { // not replaced by a concurrent 401 meanwhile
		r.current, r.generation = next, gen+1
	}
	next = r.current
	r.mu.Unlock()
	again := req.Clone(req.Context())
	if body != nil {
		again.Body = io.NopCloser(bytes.NewReader(body))
	}
	return next.RoundTrip(again)
}
