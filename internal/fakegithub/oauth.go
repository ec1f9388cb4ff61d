package fakegithub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// SignIn makes login the user signed in to the fake GitHub's web pages:
// the OAuth authorization page asks them to authorize the App.
func (s *Server) SignIn(login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedIn = login
}

var authorizePage = template.Must(template.New("").Parse(`<!doctype html>
<html><head><title>Authorize application</title></head><body>
<h1>Authorize the App</h1>
<p>Signed in as <b id="login">{{.Login}}</b>. The App asks to know who you are.</p>
<form method="post" action="/login/oauth/authorize">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<button id="authorize" type="submit">Authorize</button>
</form></body></html>`))

// serveOAuth is GitHub's OAuth web flow for the App's user authorization:
// the authorization page (GET), its form (POST) that sends the browser
// back with a code, and the exchange of the code for a user token, which
// GET /user then answers for.
func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/login/oauth/authorize":
		if r.Form.Get("client_id") != s.ClientID {
			s.violate("OAuth authorize: client_id %q is not the App's", r.Form.Get("client_id"))
			http.Error(w, "The client_id is not valid.", http.StatusNotFound)
			return
		}
		redirect, err := url.Parse(r.Form.Get("redirect_uri"))
		if err != nil || redirect.Scheme == "" || r.Form.Get("state") == "" {
			s.violate("OAuth authorize: redirect_uri %q, state %q", r.Form.Get("redirect_uri"), r.Form.Get("state"))
			http.Error(w, "The redirect_uri is not valid.", http.StatusBadRequest)
			return
		}
		if s.signedIn == "" {
			http.Error(w, "Sign in to GitHub first.", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			authorizePage.Execute(w, map[string]string{"Login": s.signedIn, "ClientID": s.ClientID, "RedirectURI": redirect.String(), "State": r.Form.Get("state")})
			return
		}
		b := make([]byte, 10)
		rand.Read(b)
		code := hex.EncodeToString(b)
		s.oauthCodes[code] = s.signedIn
		q := redirect.Query()
		q.Set("code", code)
		q.Set("state", r.Form.Get("state"))
		redirect.RawQuery = q.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	case r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost:
		code := r.Form.Get("code")
		login, ok := s.oauthCodes[code]
		delete(s.oauthCodes, code)
		switch {
		case r.Form.Get("client_id") != s.ClientID || r.Form.Get("client_secret") != s.ClientSecret:
			s.violate("OAuth access_token: wrong client credentials")
			writeJSON(w, http.StatusOK, map[string]any{"error": "incorrect_client_credentials"})
			return
		case !ok:
			writeJSON(w, http.StatusOK, map[string]any{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
			return
		}
		token := fmt.Sprintf("gho_fake%032d", len(s.users)+1)
		s.users[token] = login
		if !strings.Contains(r.Header.Get("Accept"), "application/json") {
			s.violate("OAuth access_token: asked without Accept: application/json")
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": token, "token_type": "bearer", "scope": ""})
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
	}
}
