// Package fakegithub is a faithful, stateful stand-in for GitHub's REST API
// and webhooks, for tests. It keeps installations, check runs (with their
// annotations), labels, comments and pull requests in memory, validates
// every request body against GitHub's own OpenAPI description
// (testdata/github/rest-api-subset.json, from ../shared), mints installation tokens only
// for a correctly signed App JWT, and can answer with 502s or secondary
// rate limits for a while. Requests it cannot honour are recorded as
// violations, which tests check are none.
package fakegithub

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake GitHub. Its exported fields are set by New.
type Server struct {
	URL           string // API root, for go-githubapp's v3_api_url
	AppID         int64
	PrivateKeyPEM string
	WebhookSecret string
	// ClientID and ClientSecret are the App's OAuth client: the web flow at
	// URL/login/oauth/ (the web_url) signs in the user set by SignIn.
	ClientID, ClientSecret string

	key *rsa.PrivateKey
	srv *httptest.Server
	ops []*operation

	mu             sync.Mutex
	installations  map[int64]*Installation
	tokens         map[string]int64 // token → installation
	revoked        map[string]bool  // tokens minted, then revoked
	checkRuns      map[int64]*CheckRun
	nextID         int64
	labels         map[string][]string // "owner/repo#n" → labels
	comments       map[string][]string // "owner/repo#n" → bodies
	commentIDs     map[string][]int64  // "owner/repo#n" → ids, as comments
	commentAuthors map[int64]string    // comment id → the user who wrote it ("": the App)
	merges         map[string]int      // "owner/repo#n" → merge requests carried out
	pulls          map[string]map[string]any
	permissions    map[string]string  // user → permission (default read)
	reactions      map[int64][]string // comment id → reactions
	reviews        map[string][]map[string]any
	branches       map[string]map[string]string // repo → branch → commit
	cloneURLs      map[string]string
	public         map[string]bool           // repositories anyone may read
	manifests      map[string]map[string]any // manifest flow code → the manifest submitted
	users          map[string]string         // personal access token → login
	signedIn       string                    // the user the OAuth pages sign in
	oauthCodes     map[string]string         // OAuth code → login, once
	violations     []string
	faults         []fault
	requests       map[string]int // operationId → count
}

// Installation is an installation of the App.
type Installation struct {
	ID      int64
	Account string
	Repos   []string // "owner/name"
	// Permissions are what its tokens may do ("checks": "write", ...),
	// checked on every request as GitHub checks them.
	Permissions map[string]string
}

// DefaultPermissions are an installation's permissions unless set: the
// ones basinix documents as needed.
var DefaultPermissions = map[string]string{"checks": "write", "contents": "write", "issues": "write", "merge_queues": "read", "metadata": "read", "pull_requests": "write"}

// CheckRun is a check run as GitHub keeps it.
type CheckRun struct {
	ID                     int64
	Repo, Name, HeadSHA    string
	Status, Conclusion     string
	DetailsURL, ExternalID string
	Title, Summary, Text   string
	Annotations            []map[string]any
	Actions                []map[string]any
	Updates                int
	StartedAt, CompletedAt string
	// Created is when the fake received the creation.
	Created            time.Time
	completed, updated time.Time
}

type fault struct {
	status     int
	retryAfter string
	left       int
	op         string                    // the operation it is for; "" any
	when       func(map[string]any) bool // the requests it is for (by body); nil all
	// after: the request is carried out, and then answered with status,
	// as when GitHub acts and its answer is lost.
	after bool
	// hold, with after: the request is carried out, hold is closed, and
	// the answer never comes (until the client goes away).
	hold chan struct{}
}

// New starts a fake GitHub for the test, stopped when it ends.
func New(t testing.TB) *Server {
	t.Helper()
	path, err := SchemaPath()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := loadOperations(path)
	if err != nil {
		t.Fatal(err)
	}
	more, err := loadOperations(filepath.Join(filepath.Dir(filepath.Dir(path)), "rest-api-additions.json"))
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, more...)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		AppID:          4242,
		PrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		WebhookSecret:  "fake-webhook-secret",
		key:            key,
		ops:            ops,
		installations:  map[int64]*Installation{},
		tokens:         map[string]int64{},
		revoked:        map[string]bool{},
		checkRuns:      map[int64]*CheckRun{},
		labels:         map[string][]string{},
		comments:       map[string][]string{},
		commentIDs:     map[string][]int64{},
		commentAuthors: map[int64]string{},
		merges:         map[string]int{},
		pulls:          map[string]map[string]any{},
		permissions:    map[string]string{},
		reviews:        map[string][]map[string]any{},
		branches:       map[string]map[string]string{},
		cloneURLs:      map[string]string{},
		public:         map[string]bool{},
		manifests:      map[string]map[string]any{},
		users:          map[string]string{},
		oauthCodes:     map[string]string{},
		ClientID:       "Iv1.fakeclientid0000",
		ClientSecret:   "fake-oauth-client-secret",
		reactions:      map[int64][]string{},
		requests:       map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/"
	t.Cleanup(s.srv.Close)
	return s
}

// SubmitManifest is what GitHub's web page does when a user posts an App
// manifest to /settings/apps/new (or an organization's) and creates the
// App: it checks the manifest as GitHub does and returns the code it
// redirects to the manifest's redirect_url with. The App it creates is the
// fake's own (AppID, PrivateKeyPEM, WebhookSecret), so what the code
// converts into works against the fake.
func (s *Server) SubmitManifest(manifest string) (code string, err error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		return "", fmt.Errorf("manifest: %v", err)
	}
	if str(m["url"]) == "" || str(m["redirect_url"]) == "" {
		return "", fmt.Errorf("manifest: url and redirect_url are required")
	}
	if hook, _ := m["hook_attributes"].(map[string]any); hook == nil || str(hook["url"]) == "" {
		return "", fmt.Errorf("manifest: hook_attributes.url is required")
	}
	perms, _ := m["default_permissions"].(map[string]any)
	for k, v := range perms {
		if k == "" || v != "read" && v != "write" {
			return "", fmt.Errorf("manifest: permission %s: %v", k, v)
		}
	}
	events, _ := m["default_events"].([]any)
	for _, e := range events {
		if !knownEvents[str(e)] {
			return "", fmt.Errorf("manifest: unknown event %v", e)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code = fmt.Sprintf("manifest-code-%d", len(s.manifests)+1)
	s.manifests[code] = m
	return code, nil
}

// knownEvents are webhook events an App may subscribe to (those basinix
// could want among them).
var knownEvents = map[string]bool{"check_run": true, "check_suite": true, "issue_comment": true, "merge_group": true,
	"pull_request": true, "pull_request_review": true, "push": true, "status": true, "workflow_run": true}

// SetPublic makes repo public: anyone may read it without a token (GET
// requests on it), as GitHub lets anonymous clients do.
func (s *Server) SetPublic(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.public[strings.ToLower(repo)] = true
}

// SetPrivate makes repo private again: only its collaborators read it.
func (s *Server) SetPrivate(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.public, strings.ToLower(repo))
}

// AddUser mints a personal access token for login: it may read public
// repositories and comment on their issues and pull requests, as any
// GitHub user may.
func (s *Server) AddUser(login string) (token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	token = fmt.Sprintf("ghp_fake%032d", len(s.users)+1)
	s.users[token] = login
	return token
}

// AddInstallation records an installation of the App on repos ("owner/name").
func (s *Server) AddInstallation(id int64, account string, repos ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[id] = &Installation{ID: id, Account: account, Repos: repos, Permissions: DefaultPermissions}
}

// SetInstallationPermissions replaces what installation id's tokens may do.
func (s *Server) SetInstallationPermissions(id int64, perms map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[id].Permissions = perms
}

// Fail makes the next n API requests fail with status (502, or 403 for a
// secondary rate limit); retryAfter, when set, is sent as Retry-After.
func (s *Server) Fail(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter, left: n})
}

// FailOp makes the next n requests of one operation (an operationId such
// as "checks/update") whose body satisfies when (nil: any) fail with
// status, as GitHub answers what it refuses.
func (s *Server) FailOp(op string, n, status int, when func(body map[string]any) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status, left: n, op: op, when: when})
}

// FailOpAfterActing makes the next n requests of op be carried out and
// then answered with status (502, say): GitHub acted, the client does not
// know it.
func (s *Server) FailOpAfterActing(op string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status: status, left: n, op: op, after: true})
}

// HoldOpAfterActing makes the next request of op be carried out and then
// never answered while the client waits: the returned channel is closed
// when it has been carried out. A test kills the client then.
func (s *Server) HoldOpAfterActing(op string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := make(chan struct{})
	s.faults = append(s.faults, fault{left: 1, op: op, after: true, hold: held})
	return held
}

// Merges returns how many times PR n of repo was merged (a real merge
// happens once; the fake counts what it was asked).
func (s *Server) Merges(repo string, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.merges[fmt.Sprintf("%s#%d", repo, n)]
}

// ClearFaults ends the failures Fail asked for.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Violations returns what clients did that GitHub would refuse.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// CheckRuns returns copies of the check runs on repo, by creation order.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, c := range s.checkRuns {
		if c.Repo == repo {
			cc := *c
			cc.Annotations = append([]map[string]any(nil), c.Annotations...)
			out = append(out, cc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Pull is an open pull request the fake lists (for reconciliation).
type Pull struct {
	Repo     string
	Number   int
	HeadSHA  string
	BaseRef  string
	CloneURL string
	Draft    bool
	// Mergeable is GitHub's verdict (nil: not computed yet).
	Mergeable *bool
	// Files are the paths the PR changes.
	Files []string
	// Author is the login of who opened it (default "Codertocat", the
	// real payloads' author).
	Author string
	// Title is its title; Patches the diffs of its files, by path.
	Title   string
	Patches map[string]string
}

// SetPull records an open pull request (or replaces it).
func (s *Server) SetPull(p Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mergeable any // JSON null until GitHub decided
	if p.Mergeable != nil {
		mergeable = *p.Mergeable
	}
	author := p.Author
	if author == "" {
		author = "Codertocat"
	}
	var requested []string
	if old := s.pulls[fmt.Sprintf("%s#%d", p.Repo, p.Number)]; old != nil {
		requested, _ = old["requested"].([]string) // a new push keeps them
	}
	s.pulls[fmt.Sprintf("%s#%d", p.Repo, p.Number)] = map[string]any{
		"number": p.Number, "state": "open", "draft": p.Draft, "mergeable": mergeable, "merged": false, "files": p.Files,
		"head": map[string]any{"sha": p.HeadSHA, "ref": "pr"},
		"base": map[string]any{"ref": p.BaseRef, "repo": map[string]any{"full_name": p.Repo, "clone_url": p.CloneURL}},
		"repo": p.Repo, "user": map[string]any{"login": author, "type": "User"}, "requested": requested,
		"title": p.Title, "patches": p.Patches,
	}
}

// RequestedReviewers returns the logins asked to review PR n of repo.
func (s *Server) RequestedReviewers(repo string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.pulls[fmt.Sprintf("%s#%d", repo, n)]; pr != nil {
		out, _ := pr["requested"].([]string)
		return append([]string(nil), out...)
	}
	return nil
}

// CommentsBy returns the bodies of the comments login wrote on issue or
// pull request n of repo ("" for the App's).
func (s *Server) CommentsBy(repo string, n int, login string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := fmt.Sprintf("%s#%d", repo, n)
	var out []string
	for i, id := range s.commentIDs[k] {
		if s.commentAuthors[id] == login {
			out = append(out, s.comments[k][i])
		}
	}
	return out
}

// SetBranch sets a branch of repo (the first one set is its default
// branch) and where the repository is cloned from.
func (s *Server) SetBranch(repo, cloneURL, branch, commit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.branches[repo] == nil {
		s.branches[repo] = map[string]string{"": branch}
	}
	s.branches[repo][branch] = commit
	s.cloneURLs[repo] = cloneURL
}

// SetPermission gives user a permission (admin, maintain, write, triage,
// read) on every repository.
func (s *Server) SetPermission(user, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.permissions[user] = permission
}

// Comments returns the bodies of the comments on issue (or PR) n of repo.
func (s *Server) Comments(repo string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.comments[fmt.Sprintf("%s#%d", repo, n)]...)
}

// Reviews returns the reviews posted on PR n of repo.
func (s *Server) Reviews(repo string, n int) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.reviews[fmt.Sprintf("%s#%d", repo, n)]...)
}

// Merged returns how PR n of repo was merged ("" while it is not).
func (s *Server) Merged(repo string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pr := s.pulls[fmt.Sprintf("%s#%d", repo, n)]; pr != nil && pr["merged"] == true {
		return str(pr["merge_method"])
	}
	return ""
}

// Reactions returns the reactions to comment id.
func (s *Server) Reactions(id int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reactions[id]...)
}

// SetLabels sets the labels of issue (or PR) n of repo.
func (s *Server) SetLabels(repo string, n int, labels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.labels[fmt.Sprintf("%s#%d", repo, n)] = labels
}

// RevokeTokens makes every installation token minted so far invalid, as
// GitHub does when one expires or is revoked: requests with them get 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.revoked[t] = true
	}
	s.tokens = map[string]int64{}
}

// TokenInstallation returns the installation a token was minted for.
func (s *Server) TokenInstallation(token string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tokens[token]
	return id, ok
}

// Labels returns the labels of issue (or PR) n of repo.
func (s *Server) Labels(repo string, n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.labels[fmt.Sprintf("%s#%d", repo, n)]...)
}

// Requests returns how many requests each operation got.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Deliver sends a webhook to url the way GitHub does: signed with the
// webhook secret, with event and delivery headers.
func (s *Server) Deliver(url, event, delivery string, payload []byte) (*http.Response, error) {
	return Deliver(url, s.WebhookSecret, event, delivery, payload)
}

// Deliver sends a signed webhook (secret "" sends it unsigned).
func Deliver(url, secret, event, delivery string, payload []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(payload)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	return http.DefaultClient.Do(req)
}

// Payload loads a real webhook payload from testdata/github/webhooks
// (name like "pull_request.opened.0") for a test to rewrite.
func Payload(t testing.TB, name string) map[string]any {
	t.Helper()
	schema, err := SchemaPath()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(schema), "webhooks", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *Server) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/login/oauth/") {
		s.serveOAuth(w, r)
		return
	}
	if r.URL.Path == "/favicon.ico" { // a browser on the OAuth pages
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()

	op, params := s.match(r.Method, r.URL.Path)
	if op == nil {
		s.violate("%s %s: no such endpoint in the REST API subset", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	s.requests[op.id]++
	var after *fault
	if i := s.faultFor(op.id, body); i >= 0 && s.faults[i].after {
		f := s.faults[i]
		after = &f
		if s.faults[i].left--; s.faults[i].left <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
	} else if i >= 0 {
		f := s.faults[i]
		if s.faults[i].left--; s.faults[i].left <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		msg, doc := "Server Error", "https://docs.github.com/rest"
		switch f.status {
		case http.StatusForbidden:
			msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
			doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
		case http.StatusUnprocessableEntity:
			msg = "Invalid request.\n\nOnly 255 characters are allowed for title."
		}
		writeJSON(w, f.status, map[string]any{"message": msg, "documentation_url": doc})
		return
	}

	var payload map[string]any
	if op.body != nil && (op.bodyRequired || len(bytes.TrimSpace(body)) > 0 && string(bytes.TrimSpace(body)) != "null") {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			s.violate("%s: body is not JSON: %v", op.id, err)
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
			return
		}
		if errs := validate(op.body, v, "body"); len(errs) > 0 {
			s.violate("%s: %s", op.id, strings.Join(errs, "; "))
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": errs})
			return
		}
		payload, _ = v.(map[string]any)
	}

	auth := r.Header.Get("Authorization")
	if op.id == "apps/create-from-manifest" {
		// The manifest flow's code is the credential.
	} else if jwtOperations[op.id] {
		if err := s.checkJWT(auth); err != nil {
			s.violate("%s: %v", op.id, err)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "A JSON web token could not be decoded"})
			return
		}
	} else if login, user := s.users[tokenOf(auth)]; user && op.id == "users/get-authenticated" {
		r = r.WithContext(context.WithValue(r.Context(), authorKey{}, login))
	} else if auth == "" || user {
		// Anonymous or a user's token: public repositories only, read
		// by anyone, commented on by users.
		repo := params["owner"] + "/" + params["repo"]
		if !s.public[strings.ToLower(repo)] || params["owner"] == "" {
			s.violate("%s: %s without an installation token", op.id, repo)
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		if r.Method != http.MethodGet && !(user && userWrites[op.id]) {
			msg := "Requires authentication"
			if user {
				msg = "Must have admin rights to Repository."
			}
			writeJSON(w, map[bool]int{false: http.StatusUnauthorized, true: http.StatusForbidden}[user], map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"})
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), authorKey{}, login))
	} else {
		inst, ok := s.tokens[tokenOf(auth)]
		repo := params["owner"] + "/" + params["repo"]
		// Repository endpoints ("owner" in the path) need the repository
		// in the token's installation.
		if !ok && s.revoked[tokenOf(auth)] {
			// An expired or revoked token: GitHub's answer, and the
			// client's business to get a new one, no violation.
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		if !ok || params["owner"] != "" && !s.installationHas(inst, repo) {
			s.violate("%s: no installation token for %s", op.id, repo)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials"})
			return
		}
		if need, granted := s.permitted(inst, op.id, r.Method); !granted {
			s.violate("%s: the installation lacks the permission %s", op.id, need)
			writeJSON(w, http.StatusForbidden, map[string]any{"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest"})
			return
		}
	}

	h, ok := handlers[op.id]
	if !ok {
		s.violate("%s: not implemented in the fake", op.id)
		writeJSON(w, http.StatusNotImplemented, map[string]any{"message": "not implemented in the fake"})
		return
	}
	status, resp := h(s, params, payload, r)
	if after != nil && after.hold != nil {
		close(after.hold)
		s.mu.Unlock()
		<-r.Context().Done()
		s.mu.Lock()
		return
	}
	if after != nil {
		writeJSON(w, after.status, map[string]any{"message": "Server Error", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	if pg, ok := resp.(paged); ok {
		if pg.next > 0 {
			u := *r.URL
			q := u.Query()
			q.Set("page", strconv.Itoa(pg.next))
			u.RawQuery = q.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, u.RequestURI()))
		}
		resp = pg.body
	}
	writeJSON(w, status, resp)
}

// faultFor returns the index of the fault the next request of op gets,
// -1 for none. Token requests never fail: go-githubapp would not recover.
// The caller holds s.mu.
func (s *Server) faultFor(op string, body []byte) int {
	if op == "apps/create-installation-access-token" {
		return -1
	}
	for i, f := range s.faults {
		if f.op != "" && f.op != op {
			continue
		}
		if f.when != nil {
			var b map[string]any
			if json.Unmarshal(body, &b) != nil || !f.when(b) {
				continue
			}
		}
		return i
	}
	return -1
}

// userWrites are what any GitHub user may do on a public repository.
var userWrites = map[string]bool{"issues/create-comment": true}

// authorKey carries, in a request's context, the login of the user whose
// token made it ("" for the App).
type authorKey struct{}

// jwtOperations are the endpoints GitHub wants the App's JWT for.
var jwtOperations = map[string]bool{
	"apps/get-authenticated": true, "apps/list-installations": true,
	"apps/create-installation-access-token": true, "apps/get-repo-installation": true,
}

func (s *Server) match(method, path string) (*operation, map[string]string) {
	path = strings.TrimPrefix(path, "/api/v3")
	for _, op := range s.ops {
		if op.method != method {
			continue
		}
		m := op.pattern.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		params := map[string]string{}
		for i, name := range op.params {
			params[name] = m[i+1]
		}
		return op, params
	}
	return nil, nil
}

func (s *Server) installationHas(id int64, repo string) bool {
	inst := s.installations[id]
	if inst == nil {
		return false
	}
	for _, r := range inst.Repos {
		if strings.EqualFold(r, repo) {
			return true
		}
	}
	return false
}

func tokenOf(auth string) string {
	for _, p := range []string{"token ", "Bearer ", "bearer "} {
		if t, ok := strings.CutPrefix(auth, p); ok {
			return t
		}
	}
	return ""
}

// checkJWT accepts a JWT signed (RS256) with the App's key, issued by the
// App, not expired and living at most ten minutes, as GitHub does.
func (s *Server) checkJWT(auth string) error {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return fmt.Errorf("no App JWT")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("malformed JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss any   `json:"iss"`
		Iat int64 `json:"iat"`
		Exp int64 `json:"exp"`
	}
	for i, dst := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			return fmt.Errorf("malformed JWT part %d", i)
		}
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("JWT algorithm %q, want RS256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("malformed JWT signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("JWT not signed with the App's key")
	}
	if fmt.Sprint(claims.Iss) != strconv.FormatInt(s.AppID, 10) {
		return fmt.Errorf("JWT issuer %v, want %d", claims.Iss, s.AppID)
	}
	now := time.Now().Unix()
	if claims.Exp < now || claims.Exp-claims.Iat > 600+60 {
		return fmt.Errorf("JWT expired or living too long")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}
