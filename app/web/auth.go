package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/app/publish"
	"github.com/basinix/basinix/store"
)

const (
	sessionCookie = "basinix_session"
	stateCookie   = "basinix_oauth"
	maxForm       = 64 << 10
)

// secure says whether cookies are sent over HTTPS only: when the public
// URL is https.
func (s *Server) secure() bool { return strings.HasPrefix(s.cfg.PublicURL, "https://") }

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey holds a request's *requestSession in its context.
type sessionKey struct{}

// requestSession is a request's session, read once.
type requestSession struct {
	once sync.Once
	sess *store.Session
}

// session is the request's logged-in user, nil when none; read from the
// store once per request (Register's handlers), each call otherwise.
func (s *Server) session(r *http.Request) *store.Session {
	if rs, ok := r.Context().Value(sessionKey{}).(*requestSession); ok {
		rs.once.Do(func() { rs.sess = s.readSession(r) })
		return rs.sess
	}
	return s.readSession(r)
}

func (s *Server) readSession(r *http.Request) *store.Session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	sess, err := s.st.Session(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn().Err(err).Msg("reading a session")
		}
		return nil
	}
	return sess
}

// safeNext is where a login may send the browser back: a path of this
// site, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

// serveLogin starts GitHub's OAuth web flow: a state bound to this
// browser by a short-lived cookie, then GitHub's authorization page.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OAuthClientID == "" || s.cfg.OAuthClientSecret == "" {
		s.message(w, r, http.StatusServiceUnavailable, "Login is not configured", "GitHub login needs the App's OAuth client: github.oauth.client_id and its secret (BASINIX_GITHUB_OAUTH_CLIENT_SECRET or server.oauth_client_secret_file).")
		return
	}
	state := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state + "|" + url.QueryEscape(safeNext(r.URL.Query().Get("next"))),
		Path: "/login", MaxAge: 600, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	q := url.Values{"client_id": {s.cfg.OAuthClientID}, "redirect_uri": {s.publicURL("/login/callback")}, "state": {state}}
	http.Redirect(w, r, strings.TrimSuffix(s.cfg.GitHubURL, "/")+"/login/oauth/authorize?"+q.Encode(), http.StatusFound)
}

func (s *Server) publicURL(path string) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + path
}

// serveLoginCallback ends the flow: the state must be this browser's, the
// code is exchanged for a user token, which tells who the user is and is
// then forgotten; the session is a random cookie kept server-side.
func (s *Server) serveLoginCallback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(stateCookie)
	state, next, _ := strings.Cut(func() string {
		if err != nil {
			return ""
		}
		return c.Value
	}(), "|")
	got := r.URL.Query().Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(got)) != 1 {
		s.message(w, r, http.StatusBadRequest, "Login failed", "The login's state does not match this browser's: start again from the login link.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/login", MaxAge: -1, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	login, err := s.exchange(r.Context(), r.URL.Query().Get("code"))
	if err != nil {
		s.log.Warn().Err(err).Msg("login")
		s.message(w, r, http.StatusBadGateway, "Login failed", "GitHub did not confirm the login: "+err.Error())
		return
	}
	id := randomToken(32)
	sess := store.Session{Login: login, CSRF: randomToken(24), Expires: time.Now().Add(s.cfg.SessionTTL)}
	if err := s.st.PutSession(r.Context(), id, sess); err != nil {
		s.log.Error().Err(err).Msg("login")
		s.message(w, r, http.StatusInternalServerError, "Login failed", "The session could not be kept.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Expires: sess.Expires, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	s.log.Info().Str("user", login).Msg("logged in")
	n, _ := url.QueryUnescape(next)
	http.Redirect(w, r, safeNext(n), http.StatusFound)
}

// exchange trades an OAuth code for the user's login; the token is used
// once, for GET /user, and never kept or logged.
func (s *Server) exchange(ctx context.Context, code string) (string, error) {
	if code == "" {
		return "", errors.New("no code")
	}
	form := url.Values{"client_id": {s.cfg.OAuthClientID}, "client_secret": {s.cfg.OAuthClientSecret},
		"code": {code}, "redirect_uri": {s.publicURL("/login/callback")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.GitHubURL, "/")+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("access token: %s", cmp.Or(tok.Error, resp.Status))
	}
	gh, err := github.NewClient(client).WithAuthToken(tok.AccessToken).WithEnterpriseURLs(s.cfg.GitHubAPIURL, s.cfg.GitHubAPIURL)
	if err != nil {
		return "", err
	}
	user, _, err := gh.Users.Get(ctx, "")
	if err != nil {
		return "", fmt.Errorf("who logged in: %w", err)
	}
	if user.GetLogin() == "" {
		return "", errors.New("who logged in: GitHub gave no login")
	}
	return user.GetLogin(), nil
}

// serveLogout ends the session (a form, with its CSRF token).
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.st.DeleteSession(r.Context(), c.Value); err != nil {
			s.log.Warn().Err(err).Msg("logout")
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	s.log.Info().Str("user", sess.Login).Msg("logged out")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkForm reads a POSTed form of a logged-in user and checks its CSRF
// token; it answers and returns false otherwise.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) (*store.Session, bool) {
	sess := s.session(r)
	if sess == nil {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.Referer()), http.StatusSeeOther)
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Bad form", "The form could not be read.")
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(sess.CSRF)) != 1 {
		s.log.Warn().Str("user", sess.Login).Str("path", r.URL.Path).Msg("form with a wrong CSRF token refused")
		s.message(w, r, http.StatusForbidden, "Refused", "This form does not come from this site's page (its token is wrong or stale): reload the page and try again.")
		return nil, false
	}
	return sess, true
}

// ttlCache keeps what GitHub said (a user's permission) for accessTTL.
// Expired entries are swept at most once a TTL, when one is put: the
// cache holds the users of the last two TTLs, however long the server runs.
type ttlCache[T any] struct {
	mu    sync.Mutex
	m     map[string]cached[T]
	swept time.Time
	now   func() time.Time // time.Now; a test's clock
}

type cached[T any] struct {
	v  T
	at time.Time
}

const accessTTL = 5 * time.Minute

func (c *ttlCache[T]) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *ttlCache[T]) get(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.v, ok && c.clock().Sub(e.at) < accessTTL
}

func (c *ttlCache[T]) put(key string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	if c.m == nil {
		c.m, c.swept = map[string]cached[T]{}, now
	}
	if now.Sub(c.swept) >= accessTTL {
		for k, e := range c.m {
			if now.Sub(e.at) >= accessTTL {
				delete(c.m, k)
			}
		}
		c.swept = now
	}
	c.m[key] = cached[T]{v, now}
}

// installation is the GitHub client of the installation basinix last
// reviewed repo with.
func (s *Server) installation(ctx context.Context, repo string) (*github.Client, error) {
	id, err := s.st.RepoInstallation(ctx, repo)
	if err != nil {
		return nil, err
	}
	return s.app.Installation(id)
}

// private says whether repo is private, as its webhooks said (unknown
// repositories are): a page view never asks GitHub.
func (s *Server) private(ctx context.Context, repo string) bool {
	private, err := s.st.RepoPrivate(ctx, repo)
	if err != nil {
		s.log.Warn().Err(err).Msg("repository visibility")
	}
	return private
}

// permission is user's permission and role name on repo.
func (s *Server) permission(ctx context.Context, repo, user string) (perm, role string, err error) {
	key := repo + " " + user
	if p, ok := s.perms.get(key); ok {
		return p[0], p[1], nil
	}
	gh, err := s.installation(ctx, repo)
	if err != nil {
		return "", "", err
	}
	owner, name, _ := strings.Cut(repo, "/")
	perm, role, err = publish.UserPermission(ctx, gh, owner, name, user)
	if err != nil {
		return "", "", err
	}
	s.perms.put(key, [2]string{perm, role})
	return perm, role, nil
}

// reads says which repositories the request's user may read: the
// public ones, and for a logged-in user those with read access; each is
// asked once.
func (s *Server) reads(r *http.Request, sess *store.Session) func(repo string) bool {
	known := map[string]bool{}
	return func(repo string) bool {
		if may, ok := known[repo]; ok {
			return may
		}
		may := !s.private(r.Context(), repo)
		if !may && sess != nil {
			perm, _, err := s.permission(r.Context(), repo, sess.Login)
			may = err == nil && perm != "" && perm != "none"
		}
		known[repo] = may
		return may
	}
}

// toLogin sends the browser to the login, which comes back here.
func toLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
}

// canRead lets through a request that may read one of repos (any request
// when none is given): every page needs a login when web.private is set,
// a private repository's a user with read access. A logged-out user is
// sent to the login; a logged-in one who may read none gets a 404.
func (s *Server) canRead(w http.ResponseWriter, r *http.Request, repos ...string) bool {
	sess := s.session(r)
	switch {
	case s.cfg.Private && sess == nil:
		toLogin(w, r)
		return false
	case len(repos) == 0 || slices.ContainsFunc(repos, s.reads(r, sess)):
		return true
	case sess == nil:
		toLogin(w, r)
	default:
		s.message(w, r, http.StatusNotFound, "Not found", "No such page, or you cannot read its repository.")
	}
	return false
}

// mayAct says whether user may act on repo: the rule of comment commands.
func (s *Server) mayAct(ctx context.Context, repo, user string) (bool, string, error) {
	perm, role, err := s.permission(ctx, repo, user)
	if err != nil {
		return false, "", err
	}
	ok, shown := publish.Permitted(s.cfg.CommandPermissions, perm, role)
	return ok, shown, nil
}
