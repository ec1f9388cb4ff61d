package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/internal/redact"
	"github.com/basinix/basinix/review"
)

// maxPayload is the largest webhook body accepted (GitHub caps them at 25 MB).
const maxPayload = 25 << 20

// Server is `basinix serve`: the webhook endpoint, the pipeline that
// reviews PR revisions and publishes check runs, and the web page.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	red      *redact.Redactor // what leaves the server passes through it
	rv       *review.Reviewer
	pipe     *pipeline
	dispatch http.Handler
	metrics  *metrics
	// bodies bounds the bytes of webhook bodies held at once.
	bodies *semaphore.Weighted
	github *githubHealth
	// perms keeps what GitHub said of users' permissions, for the web
	// pages' access rules.
	perms ttlCache[[2]string]
	// reports keeps the reports the PR pages showed last.
	reports reportCache
}

// NewServer sets up the server; cfg must have its secrets loaded.
func NewServer(ctx context.Context, cfg Config, log zerolog.Logger) (*Server, error) {
	rv, err := review.New(ctx, cfg.Review(), log)
	if err != nil {
		return nil, err
	}
	cfg.Config = rv.Config() // with the data directory made absolute
	m := newMetrics(rv.Store(), rv.Pool())
	red := NewRedactor(cfg)
	cc := newRefreshingClients(githubapp.NewClientCreator(cfg.GitHub.V3APIURL, cfg.GitHub.V4APIURL,
		cfg.GitHub.App.IntegrationID, []byte(cfg.GitHub.App.PrivateKey),
		githubapp.WithClientUserAgent("basinix/"+Version),
		githubapp.WithClientTimeout(time.Minute),
		githubapp.WithClientMiddleware(redacting(red), retrying(cfg.Server.GitHubRetryFor, m.githubErrors.Inc))))
	health := &githubHealth{cc: cc}
	if err := health.checkCredentials(ctx); err != nil {
		rv.Close()
		return nil, err
	}
	if rv.Host() != nil && !rv.Host().Sandbox {
		// Said once at start, where an administrator reads it, and not
		// only when the first build runs.
		log.Warn().Msg("the Nix sandbox is off: a build can read every file and process environment basinix's Nix user can, the App's private key file included. " +
			"basinix keeps its secrets out of every child's environment and redacts them from what it publishes, but production should run Nix with sandbox = true and build users")
	}
	s := &Server{cfg: cfg, log: log, red: red, rv: rv, metrics: m, github: health, bodies: semaphore.NewWeighted(int64(cfg.Server.WebhookMemoryMiB) << 20)}
	rv.Workspace().Auth = newGitAuth(cfg.GitHub, cc).config
	s.pipe = &pipeline{cfg: cfg, st: rv.Store(), rv: rv, gh: cc, log: log, wake: make(chan struct{}, 1),
		every: 5 * time.Second, logURL: logLink(cfg.Server.PublicURL), running: map[int64]context.CancelFunc{}, metrics: m,
		jobs: newJobRunner(rv.Store(), log.With().Str("component", "jobs").Logger())}
	s.pipe.registerJobs()
	s.dispatch = githubapp.NewEventDispatcher(
		[]githubapp.EventHandler{
			&handlers.PullRequestHandler{Reviews: s.pipe, Drafts: cfg.Server.Drafts, Log: log},
			&handlers.MergeGroupHandler{Reviews: s.pipe, Log: log},
			&handlers.CheckHandler{Reruns: s.pipe, Log: log},
			&handlers.PushHandler{Branches: s.pipe, Tracked: cfg.Server.TrackedBranches, Log: log},
			&handlers.InstallationHandler{Installations: s.pipe, Log: log},
			&handlers.IssueCommentHandler{Commands: s.pipe, Name: cfg.Commands.Name, Log: log},
		},
		cfg.GitHub.App.WebhookSecret,
		githubapp.WithErrorCallback(s.webhookError))
	return s, nil
}

// Version is basinix's version, for the user agent and `basinix version`.
const Version = "0.1.0-dev"

// Reviewer is the server's reviewer: its store, pool and workspace.
func (s *Server) Reviewer() *review.Reviewer { return s.rv }

// Close releases the store.
func (s *Server) Close() error { return s.rv.Close() }

// Handler is the server's HTTP side.
func (s *Server) Handler() http.Handler {
	return securityHeaders(s.routes())
}

// securityHeaders sets on every answer what keeps a browser from reading
// a log as a page, a page from being framed, and a script that slipped
// into a page from running.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+githubapp.DefaultWebhookRoute, s.webhook)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /log/{name}", s.serveLog)
	mux.HandleFunc("GET /diffoscope/{name}", s.serveDiffoscope)
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /index.json", s.serveIndex)
	mux.HandleFunc("GET /static/basinix.css", s.serveCSS)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /repo/{owner}/{repo}", s.serveRepo)
	mux.HandleFunc("GET /pr/{owner}/{repo}/{number}", s.servePR)
	mux.HandleFunc("POST /pr/{owner}/{repo}/{number}/action", s.serveAction)
	mux.HandleFunc("GET /build/{name}", s.serveBuild)
	mux.HandleFunc("POST /build/{name}/restart", s.serveRestart)
	mux.HandleFunc("GET /attr/{owner}/{repo}/{branch}/{attr}", s.serveAttr)
	mux.HandleFunc("GET /branch/{owner}/{repo}/{branch}", s.serveBranch)
	mux.HandleFunc("GET /login", s.serveLogin)
	mux.HandleFunc("GET /login/callback", s.serveLoginCallback)
	mux.HandleFunc("POST /logout", s.serveLogout)
	return mux
}

// RunWorkers runs the builder pool and the pipeline until ctx ends.
func (s *Server) RunWorkers(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.rv.Run(gctx) })
	g.Go(func() error { return s.pipe.Run(gctx) })
	g.Go(func() error { return s.pipe.jobs.Run(gctx) })
	g.Go(func() error { s.rv.KeepRoots(gctx); return nil })
	return g.Wait()
}

// Run serves HTTP on the configured address and runs the workers until
// ctx ends.
func (s *Server) Run(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.Server.Address, strconv.Itoa(s.cfg.Server.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.RunWorkers(gctx) })
	g.Go(func() error { return s.Serve(gctx, l) })
	return g.Wait()
}

// writeTimeout bounds writing one answer; following a running build's log
// extends it as the log comes.
const writeTimeout = 2 * time.Minute

// Serve serves HTTP on l until ctx ends, under the server section's bounds:
// a whole request within read_timeout, answers within writeTimeout, idle
// connections closed, at most max_connections at once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	sv := s.cfg.Server
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(10*time.Second, sv.ReadTimeout),
		ReadTimeout:       sv.ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(s.log.With().Str("component", "http").Logger(), "", 0),
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	s.log.Info().Str("address", l.Addr().String()).Msg("serving")
	if err := srv.Serve(newLimitListener(l, sv.MaxConnections, s.log)); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}

// webhook checks a delivery before go-githubapp dispatches it: a missing
// or wrong signature is 401, a body that is not JSON is 400, and a
// delivery seen before is answered 200 without being handled again. A body
// is read only when the request carries a signature and says how long it
// is, and only while the bodies held at once stay within
// server.webhook_memory_mib (else 503: GitHub delivers it again).
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	event, delivery := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	log := s.log.With().Str("event", event).Str("delivery", delivery).Logger()
	sig := r.Header.Get("X-Hub-Signature-256")
	switch {
	case !wellFormedSignature(sig):
		s.metrics.webhooks.WithLabelValues(event, "bad-signature").Inc()
		log.Warn().Msg("webhook without a signature refused")
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	case r.ContentLength < 0:
		http.Error(w, "a webhook must say its length", http.StatusLengthRequired)
		return
	case r.ContentLength > maxPayload:
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	if !s.bodies.TryAcquire(r.ContentLength) {
		log.Warn().Int64("bytes", r.ContentLength).Msg("webhook refused: too many bodies held at once")
		w.Header().Set("Retry-After", "10")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	defer s.bodies.Release(r.ContentLength)
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		http.Error(w, "payload unreadable", http.StatusBadRequest)
		return
	}
	if !validSignature(sig, body, s.cfg.GitHub.App.WebhookSecret) {
		s.metrics.webhooks.WithLabelValues(event, "bad-signature").Inc()
		log.Warn().Msg("webhook with a missing or wrong signature refused")
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if event == "" || delivery == "" || !json.Valid(body) {
		s.metrics.webhooks.WithLabelValues(event, "malformed").Inc()
		log.Warn().Msg("malformed webhook refused")
		http.Error(w, "malformed webhook: need X-GitHub-Event, X-GitHub-Delivery and a JSON body", http.StatusBadRequest)
		return
	}
	fresh, err := s.rv.Store().ClaimDelivery(r.Context(), delivery, event)
	if err != nil {
		log.Error().Err(err).Msg("recording the delivery")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !fresh {
		s.metrics.webhooks.WithLabelValues(event, "duplicate").Inc()
		log.Info().Msg("delivery seen before: not handled again")
		w.Write([]byte("duplicate delivery\n"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.metrics.webhooks.WithLabelValues(event, "accepted").Inc()
	s.dispatch.ServeHTTP(w, r)
}

// webhookError answers a delivery whose handling failed, and forgets the
// delivery so that GitHub's redelivery is handled.
func (s *Server) webhookError(w http.ResponseWriter, r *http.Request, err error) {
	delivery := r.Header.Get("X-GitHub-Delivery")
	if ferr := s.rv.Store().ForgetDelivery(context.WithoutCancel(r.Context()), delivery); ferr != nil {
		s.log.Error().Err(ferr).Msg("forgetting a failed delivery")
	}
	var ve githubapp.ValidationError
	switch {
	case errors.Is(err, handlers.ErrBadPayload), errors.As(err, &ve):
		s.metrics.webhooks.WithLabelValues(r.Header.Get("X-GitHub-Event"), "malformed").Inc()
		s.log.Warn().Err(err).Str("delivery", delivery).Msg("malformed webhook")
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		s.metrics.webhooks.WithLabelValues(r.Header.Get("X-GitHub-Event"), "error").Inc()
		s.log.Error().Err(err).Str("delivery", delivery).Msg("handling webhook")
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// wellFormedSignature reports whether header is "sha256=" and 64 hex
// digits, as GitHub sends it.
func wellFormedSignature(header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(sig) != 64 {
		return false
	}
	_, err := hex.DecodeString(sig)
	return err == nil
}

func validSignature(header string, body []byte, secret string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// logName is what /log/{name} serves: a derivation's file name
// ("HASH-NAME.drv") or a kept log's, nothing that could walk out of the
// log directory.
var logName = regexp.MustCompile(`^[0-9a-z]{32}-[A-Za-z0-9+._?=-]+\.(drv|log|log\.bz2)$`)

// serveDiffoscope serves a diffoscope report, sandboxed: its HTML is made
// of the outputs' contents, which a PR chose.
func (s *Server) serveDiffoscope(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !review.DiffoscopeName(name) {
		http.Error(w, "no such report", http.StatusNotFound)
		return
	}
	file := filepath.Join(review.DiffoscopeDir(s.cfg.DataDir), name)
	// A report asked on a PR is its repository's readers' only.
	var repos []string
	if repo, err := os.ReadFile(file + ".repo"); err == nil {
		repos = append(repos, strings.TrimSpace(string(repo)))
	}
	if !s.canRead(w, r, repos...) {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.Error(w, "no such report", http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if info, err := f.Stat(); err == nil && info.Size() == 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "diffoscope found no differences.\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.Copy(w, f)
}

// serveLog serves a derivation's kept log or, while it builds, follows its
// output until the build ends.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !logName.MatchString(name) || strings.Contains(name, "..") {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	dir := filepath.Join(s.cfg.DataDir, "logs")
	drv := "/nix/store/" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".bz2"), ".log"), ".drv") + ".drv"
	// A private repository's builds' logs are its readers' only.
	waiters, err := s.rv.Store().Waiters(r.Context(), drv, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("log")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !s.canRead(w, r, waiterRepos(waiters)...) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if kept := build.KeptLog(dir, drv); kept != "" {
		f, err := build.OpenLog(kept)
		if err != nil {
			http.Error(w, "no such log", http.StatusNotFound)
			return
		}
		defer f.Close()
		out := s.red.Writer(w)
		io.Copy(out, f)
		out.Close()
		return
	}
	if _, _, running := s.rv.Pool().Live(drv, 0); !running {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	s.follow(w, r, dir, drv)
}

// follow streams a running build's output as it comes, until the build
// ends or the client goes.
func (s *Server) follow(rw http.ResponseWriter, r *http.Request, dir, drv string) {
	flusher, _ := rw.(http.Flusher)
	rc := http.NewResponseController(rw)
	w := s.red.Writer(rw)
	defer w.Close()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for from := 0; ; {
		data, next, running := s.rv.Pool().Live(drv, from)
		if _, err := w.Write(data); err != nil {
			return
		}
		from = next
		if !running {
			// The last lines may have come after the last look: the kept
			// log holds the same output, so go on from there.
			kept := build.KeptLog(dir, drv)
			if f, err := build.OpenLog(kept); err == nil {
				io.CopyN(io.Discard, f, int64(from))
				io.Copy(w, f)
				f.Close()
			}
			fmt.Fprintf(w, "\n[basinix: the build ended; its kept log is at /log/%s]\n", filepath.Base(kept))
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // a live log may follow for hours
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
