package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/app"
)

// setupCmd is `basinix setup --org ORG | --user`: GitHub's App manifest
// flow. It serves, on this machine, a page whose button posts the App's
// manifest (exactly the permissions and events basinix needs, the
// webhook URL of server.public_url) to GitHub; GitHub creates the App and
// sends the browser back with a code, which basinix converts into the
// App's id, private key and webhook secret, written into files of mode
// 0600 in the data directory with a configuration that names them.
func setupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("basinix setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		org    = fs.String("org", "", "create the App in this organization")
		user   = fs.Bool("user", false, "create the App on your own account")
		name   = fs.String("name", "basinix", "the App's name (unique on GitHub)")
		listen = fs.String("listen", "127.0.0.1:0", "where the setup page listens (this machine only)")
	)
	local := addLocalFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf("setup: "+format, a...)}
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if (*org == "") == !*user {
		return usage("say where the App goes: --org ORG or --user")
	}
	if *org != "" && !ghRepoName.MatchString(*org) {
		return usage("--org %q is not an organization's name", *org)
	}
	cfg, err := local.load()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	web, err := url.Parse(cfg.GitHub.WebURL)
	if err != nil || web.Host == "" {
		return usage("github.web_url %q is not a URL", cfg.GitHub.WebURL)
	}
	gh, err := gitHubClient(cfg.GitHub.V3APIURL, "")
	if err != nil {
		return usage("github.v3_api_url: %v", err)
	}
	dir := filepath.Join(cfg.DataDir, "github-app")
	if _, err := os.Stat(filepath.Join(dir, "private-key.pem")); err == nil {
		return usage("%s already holds an App's key: move it away to set up another", dir)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("setup: listen: %w", err)}
	}
	flow := newManifestFlow(web, gh, dir, *name, cfg.Server.PublicURL, "http://"+ln.Addr().String(), stdout)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { flow.page(w, *org) })
	mux.HandleFunc("GET /callback", flow.callback)
	fmt.Fprintf(stdout, "basinix: open %s/ in a browser logged in to GitHub, and create the App there\n", flow.base)
	return flow.serve(ctx, ln, mux)
}

// manifestFlow is GitHub's App manifest flow, served by basinix setup on
// this machine or by basinix serve while no App is configured.
type manifestFlow struct {
	web       *url.URL
	gh        *github.Client
	dir, name string
	// publicURL is where GitHub sends webhooks; base where this flow's
	// pages are (the callback is base/callback).
	publicURL, base string
	state           string
	stdout          io.Writer
	done            chan error
}

func newManifestFlow(web *url.URL, gh *github.Client, dir, name, publicURL, base string, stdout io.Writer) *manifestFlow {
	return &manifestFlow{web: web, gh: gh, dir: dir, name: name, publicURL: publicURL, base: base, state: randomState(), stdout: stdout, done: make(chan error, 1)}
}

// page is the form that posts the manifest to GitHub's "new App" page of
// org ("" for the user's own account).
func (f *manifestFlow) page(w http.ResponseWriter, org string) {
	manifest, err := json.Marshal(appManifest(f.name, f.publicURL, f.base+"/callback"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	action := f.web.JoinPath("settings/apps/new")
	if org != "" {
		action = f.web.JoinPath("organizations", org, "settings/apps/new")
	}
	action.RawQuery = url.Values{"state": {f.state}}.Encode()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action "+f.web.Scheme+"://"+f.web.Host)
	_ = setupPage.Execute(w, map[string]string{"Action": action.String(), "Manifest": string(manifest), "Name": f.name})
}

// callback converts the code GitHub sends the browser back with into the
// App's credentials, written into f.dir.
func (f *manifestFlow) callback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("state") != f.state {
		http.Error(w, "this is not the setup basinix started (state differs)", http.StatusBadRequest)
		return
	}
	code := r.URL.Query().Get("code")
	if !manifestCode.MatchString(code) {
		// It goes into the API's path: nothing but a code.
		http.Error(w, "GitHub's code is missing or malformed", http.StatusBadRequest)
		return
	}
	conv, _, err := f.gh.Apps.CompleteAppManifest(r.Context(), code)
	if err == nil {
		err = writeAppFiles(f.dir, conv)
	}
	if err != nil {
		http.Error(w, "basinix could not finish the setup: "+err.Error(), http.StatusBadGateway)
		f.finish(fmt.Errorf("setup: convert the manifest's code: %w", githubError(err)))
		return
	}
	install := f.web.JoinPath("apps", conv.GetSlug(), "installations/new").String()
	fmt.Fprintf(w, "The GitHub App %s is created; basinix wrote its credentials into %s.\nInstall it: %s\n", conv.GetName(), f.dir, install)
	fmt.Fprintf(f.stdout, "basinix: the GitHub App %s (id %d) is created\n  credentials: %s (mode 0600)\n  configuration: %s\n  install it: %s\n",
		conv.GetName(), conv.GetID(), f.dir, filepath.Join(f.dir, "config.yml"), install)
	f.finish(nil)
}

func (f *manifestFlow) finish(err error) {
	select {
	case f.done <- err:
	default:
	}
}

// serve serves handler on ln until the flow ends or ctx does.
func (f *manifestFlow) serve(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	select {
	case err := <-f.done:
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		return nil
	case <-ctx.Done():
		return &exitError{code: 2, err: errors.New("setup: stopped before GitHub sent the App back")}
	}
}

// appManifest is the GitHub App manifest of basinix: the permissions and
// events it needs (app.AppPermissions, app.AppEvents), its webhook at
// publicURL.
func appManifest(name, publicURL, redirect string) map[string]any {
	base := strings.TrimSuffix(publicURL, "/")
	return map[string]any{
		"name":                name,
		"url":                 base + "/",
		"hook_attributes":     map[string]any{"url": base + "/api/github/hook", "active": true},
		"redirect_url":        redirect,
		"callback_urls":       []string{base + "/login/callback"}, // GitHub login on the web pages
		"public":              false,
		"default_permissions": app.AppPermissions,
		"default_events":      app.AppEvents,
		"description":         "basinix reviews pull requests to Nix package sets: evaluations, builds and verdicts as check runs.",
	}
}

// writeAppFiles writes what the manifest's conversion gave: the private
// key and the secrets in files of mode 0600, and config.yml naming them
// (merge it into the server's configuration).
func writeAppFiles(dir string, c *github.AppConfig) error {
	if c.GetID() == 0 || c.GetPEM() == "" || c.GetWebhookSecret() == "" {
		return errors.New("GitHub's answer lacks the App's id, key or webhook secret")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, secret := filepath.Join(dir, "private-key.pem"), filepath.Join(dir, "webhook-secret")
	cfg := fmt.Sprintf(`# The GitHub App %s, created by basinix setup: merge into the server's configuration.
github:
  app:
    integration_id: %d
  # The App's OAuth client: GitHub login on the web pages.
  oauth:
    client_id: %s
server:
  private_key_file: %s
  webhook_secret_file: %s
  oauth_client_secret_file: %s
`, c.GetSlug(), c.GetID(), c.GetClientID(), key, secret, filepath.Join(dir, "client-secret"))
	for _, f := range []struct{ name, body string }{
		{key, c.GetPEM()}, {secret, c.GetWebhookSecret()}, {filepath.Join(dir, "client-secret"), c.GetClientSecret()},
		{filepath.Join(dir, "config.yml"), cfg},
	} {
		// O_EXCL: never over an existing file, whose mode may be wider.
		fh, err := os.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(fh, f.body); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}

var manifestCode = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)

func randomState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var setupPage = template.Must(template.New("setup").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>basinix setup</title></head>
<body>
<h1>Create the GitHub App {{.Name}}</h1>
<p>The button sends GitHub the App's manifest: the permissions and events basinix needs. GitHub asks you to confirm,
creates the App and sends you back here; basinix then keeps its credentials.</p>
<form action="{{.Action}}" method="post">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create the App on GitHub</button>
</form>
</body></html>
`))
