// Package web is basinix's web pages: the index, repositories, PRs,
// branches, attributes' histories, builds and their logs, GitHub login,
// and the PR page's actions. The pages show the database and never ask
// GitHub on a page view, except who may read a private repository (once
// per user and repository, kept five minutes).
package web

import (
	"context"
	"net/http"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/internal/redact"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// Config is about the web pages and GitHub login (the App's OAuth
// client: github.oauth.client_id and its secret).
type Config struct {
	// Private makes every page need a logged-in user. Private
	// repositories' pages need one with read access either way.
	Private bool `yaml:"private"`
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// Settings are what the pages need of the server's configuration.
type Settings struct {
	Config
	PublicURL string // the server's, for the login's callback and secure cookies
	DataDir   string // where the logs and diffoscope reports are
	Systems   []string
	// GitHub: the web site (login pages, links), its API (who logged in)
	// and the App's OAuth client.
	GitHubURL, GitHubAPIURL          string
	OAuthClientID, OAuthClientSecret string
	// The comment commands' name and who may give them: the actions
	// follow the same rule.
	CommandName        string
	CommandPermissions []string
}

// Store is what the pages read, and the logins they keep.
type Store interface {
	review.ReportStore
	PRSummaries(ctx context.Context, repo string, limit int) ([]store.PRSummary, error)
	VerdictCounts(ctx context.Context, revisions []int64) (map[int64]map[string]map[string]int, error)
	SearchAttrs(ctx context.Context, q string, limit int) ([]store.AttrHit, error)
	Branches(ctx context.Context) ([]store.BranchRef, error)
	BranchRevisions(ctx context.Context, repo, branch string, limit int) ([]*store.Revision, error)
	LastTip(ctx context.Context, repo, branch string) (*store.Tip, error)
	AttrHistory(ctx context.Context, repo, branch, system, attr string, limit int) ([]store.HistoryEntry, error)
	Revision(ctx context.Context, id int64) (*store.Revision, error)
	PRRevisions(ctx context.Context, repo string, pr int) ([]*store.Revision, error)
	PRClosed(ctx context.Context, repo string, pr int) (closed, merged bool, err error)
	PRFiles(ctx context.Context, repo string, pr int) ([]store.PRFile, string, error)
	Commands(ctx context.Context, repo string, pr, limit int) ([]store.CommandRecord, error)
	Waiters(ctx context.Context, drv string, limit int) ([]store.Waiter, error)
	Builds(ctx context.Context, drvs []string) (map[string]*store.BuildRecord, error)

	Session(ctx context.Context, id string) (*store.Session, error)
	PutSession(ctx context.Context, id string, sess store.Session) error
	DeleteSession(ctx context.Context, id string) error
	RepoInstallation(ctx context.Context, repo string) (int64, error)
	RepoPrivate(ctx context.Context, repo string) (bool, error)
}

// App is what the pages ask of the rest of the server.
type App interface {
	// Commands queues a PR page's action as the comment command it is.
	Commands(ctx context.Context, req handlers.CommandRequest) error
	// Restart queues a failed derivation's build again.
	Restart(ctx context.Context, drv, user, repo string) error
	// Progress is what a running revision builds, nil when none.
	Progress(revision int64) *build.Progress
	// Live is a running build's output from byte from (see build.Pool.Live).
	Live(drv string, from int) (data []byte, next int, running bool)
	// Installation is a GitHub client of an installation.
	Installation(id int64) (*github.Client, error)
}

// Server serves the pages.
type Server struct {
	cfg Settings
	st  Store
	app App
	red *redact.Redactor // what leaves the server passes through it
	log zerolog.Logger
	// writeTimeout is how long a write may take; a live log sets it anew.
	writeTimeout time.Duration
	// perms keeps what GitHub said of users' permissions, for the access
	// rules.
	perms ttlCache[[2]string]
	// reports keeps the reports the PR pages showed last.
	reports reportCache
}

// New returns the pages' server.
func New(cfg Settings, st Store, app App, red *redact.Redactor, writeTimeout time.Duration, log zerolog.Logger) *Server {
	return &Server{cfg: cfg, st: st, app: app, red: red, writeTimeout: writeTimeout, log: log}
}

// Register adds the pages' routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	// Each request reads its session once, however many parts of the page
	// ask who is logged in.
	handle := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, &requestSession{})))
		})
	}
	handle("GET /log/{name}", s.serveLog)
	handle("GET /diffoscope/{name}", s.serveDiffoscope)
	handle("GET /{$}", s.serveIndex)
	handle("GET /index.json", s.serveIndex)
	handle("GET /static/basinix.css", s.serveCSS)
	handle("GET /repo/{owner}/{repo}", s.serveRepo)
	handle("GET /pr/{owner}/{repo}/{number}", s.servePR)
	handle("POST /pr/{owner}/{repo}/{number}/action", s.serveAction)
	handle("GET /build/{name}", s.serveBuild)
	handle("POST /build/{name}/restart", s.serveRestart)
	handle("GET /attr/{owner}/{repo}/{branch}/{attr}", s.serveAttr)
	handle("GET /branch/{owner}/{repo}/{branch}", s.serveBranch)
	handle("GET /login", s.serveLogin)
	handle("GET /login/callback", s.serveLoginCallback)
	handle("POST /logout", s.serveLogout)
}
