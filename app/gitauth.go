package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/palantir/go-githubapp/githubapp"
)

// gitAuth gives git the installation token of a repository on the
// configured GitHub, for fetching it over https; other URLs get nothing.
type gitAuth struct {
	cfg githubapp.Config
	gh  githubapp.ClientCreator

	mu     sync.Mutex
	byRepo map[string]*ghinstallation.Transport // guarded by mu; each caches its token until it expires
}

func newGitAuth(cfg githubapp.Config, gh githubapp.ClientCreator) *gitAuth {
	return &gitAuth{cfg: cfg, gh: gh, byRepo: map[string]*ghinstallation.Transport{}}
}

func (a *gitAuth) config(ctx context.Context, url string) ([]string, error) {
	web := strings.TrimSuffix(a.cfg.WebURL, "/") + "/"
	rest, ok := strings.CutPrefix(url, web)
	if !ok || !strings.HasPrefix(url, "https://") {
		return nil, nil
	}
	owner, repo, ok := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(rest, "/"), ".git"), "/")
	if !ok || strings.Contains(repo, "/") {
		return nil, nil
	}
	tr, err := a.transport(ctx, owner, repo)
	if err != nil {
		return nil, err
	}
	tok, err := tr.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("installation token for %s/%s: %w", owner, repo, err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + tok))
	return []string{"http.extraHeader=Authorization: Basic " + basic}, nil
}

func (a *gitAuth) transport(ctx context.Context, owner, repo string) (*ghinstallation.Transport, error) {
	key := owner + "/" + repo
	a.mu.Lock()
	tr := a.byRepo[key]
	a.mu.Unlock()
	if tr != nil {
		return tr, nil
	}
	app, err := a.gh.NewAppClient()
	if err != nil {
		return nil, err
	}
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, owner, repo)
	if err != nil {
		return nil, fmt.Errorf("installation of %s: %w", key, err)
	}
	tr, err = ghinstallation.New(http.DefaultTransport, a.cfg.App.IntegrationID, inst.GetID(), []byte(a.cfg.App.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("installation of %s: %w", key, err)
	}
	tr.BaseURL = strings.TrimSuffix(a.cfg.V3APIURL, "/")
	a.mu.Lock()
	a.byRepo[key] = tr
	a.mu.Unlock()
	return tr, nil
}
