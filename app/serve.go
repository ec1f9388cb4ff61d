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
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/basinix/basinix/app/commands"
	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/app/web"
	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/internal/redact"
	"github.com/basinix/basinix/review"
)

// maxPayload is the largest webhook body accepted (GitHub caps them at 25 MB).
const maxPayload = 25 << 20

// Server is `basinix serve`: the webhook endpoint, the pipeline that
// reviews PR revisions and publishes check runs, and the web page.
type Server struct {
	cfg  Config
	log  zerolog.Logger
	red  *redact.Redactor // what leaves the server passes through it
	rv   *review.Reviewer
	pipe *pipeline
	web  *web.Server
	// deliveries are the webhook deliveries handled.
	deliveries deliveryStore
	dispatch   http.Handler
	metrics    *metrics
	// bodies bounds the bytes of webhook bodies held at once.
	bodies *semaphore.Weighted
	github *githubHealth
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
		githubapp.WithClientMiddleware(publish.Redacting(red), publish.Retrying(cfg.Server.GitHubRetryFor, m.githubErrors.Inc))))
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
	s := &Server{cfg: cfg, log: log, red: red, rv: rv, metrics: m,
		deliveries: rv.Store(), github: health, bodies: semaphore.NewWeighted(int64(cfg.Server.WebhookMemoryMiB) << 20)}
	rv.Workspace().Auth = newGitAuth(cfg.GitHub, cc).config
	s.pipe = &pipeline{cfg: cfg, st: rv.Store(), rv: rv, gh: cc, log: log, wake: make(chan struct{}, 1),
		every: 5 * time.Second, logURL: logLink(cfg.Server.PublicURL), running: map[int64]context.CancelFunc{}, metrics: m,
		jobs: newJobRunner(rv.Store(), 2*time.Second, log.With().Str("component", "jobs").Logger())}
	s.pipe.cmds = &commands.Worker{Config: cfg.Commands, Systems: cfg.Systems, Store: rv.Store(), Reviewer: rv, GitHub: cc,
		AddJob: s.pipe.jobs.add, Rerun: s.pipe.poke, Transient: transient, MaxAttempts: maxJobAttempts,
		PublicURL: cfg.Server.PublicURL, LogLink: s.pipe.logURL, PRURL: s.pipe.prURL, DetailsURL: s.pipe.detailsURL,
		DiffoscopeDir: review.DiffoscopeDir(cfg.DataDir), Log: log.With().Str("component", "commands").Logger()}
	s.pipe.registerJobs()
	s.web = web.New(web.Settings{
		Config: cfg.Web, PublicURL: cfg.Server.PublicURL, DataDir: cfg.DataDir, Systems: cfg.Systems,
		GitHubURL: cfg.GitHub.WebURL, GitHubAPIURL: cfg.GitHub.V3APIURL,
		OAuthClientID: cfg.GitHub.OAuth.ClientID, OAuthClientSecret: cfg.GitHub.OAuth.ClientSecret,
		CommandName: cfg.Commands.Name, CommandPermissions: cfg.Commands.Permissions,
	}, rv.Store(), pageActions{s.pipe}, red, writeTimeout, log.With().Str("component", "web").Logger())
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
	mux.Handle("GET /metrics", s.metrics.handler())
	s.web.Register(mux)
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
	fresh, err := s.deliveries.ClaimDelivery(r.Context(), delivery, event)
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
	if ferr := s.deliveries.ForgetDelivery(context.WithoutCancel(r.Context()), delivery); ferr != nil {
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
