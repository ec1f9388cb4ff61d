package main

import (
	"context"
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
	"strconv"
	"strings"

	"github.com/basinix/basinix/app"
)

func serve(ctx context.Context, args []string, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("basinix serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (see config.example.yml); required")
	logFlags := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}
	if *configPath == "" {
		return &exitError{code: 2, err: errors.New("serve: --config is required (see config.example.yml)")}
	}
	cfg, err := app.LoadConfig(*configPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if unconfigured(cfg, env) {
		return serveSetup(ctx, cfg, stderr)
	}
	if err := cfg.LoadSecrets(env); err != nil {
		return &exitError{code: 2, err: err}
	}
	// Nothing basinix logs shows a secret, whatever Nix or git printed.
	log, err := logFlags.logger(app.NewRedactor(cfg).Each(stderr), stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	srv, err := app.NewServer(ctx, cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer srv.Close()
	if err := srv.Run(ctx); err != nil {
		return &exitError{code: 2, err: err}
	}
	return nil
}

// unconfigured says that no GitHub App is configured at all: no id and no
// key, in the file or the environment. basinix serve then serves the
// setup page instead.
func unconfigured(cfg app.Config, env func(string) (string, bool)) bool {
	for _, name := range []string{"BASINIX_GITHUB_APP_INTEGRATION_ID", "BASINIX_GITHUB_APP_PRIVATE_KEY"} {
		if v, ok := env(name); ok && v != "" {
			return false
		}
	}
	return cfg.GitHub.App.IntegrationID == 0 && cfg.GitHub.App.PrivateKey == "" && cfg.Server.PrivateKeyFile == ""
}

// serveSetup serves, at server.public_url/setup, the page that registers
// the GitHub App (basinix setup's manifest flow, the owner chosen on the
// page), and returns once the App's credentials are written.
func serveSetup(ctx context.Context, cfg app.Config, stderr io.Writer) error {
	web, err := url.Parse(cfg.GitHub.WebURL)
	if err != nil || web.Host == "" {
		return &exitError{code: 2, err: fmt.Errorf("serve: github.web_url %q is not a URL", cfg.GitHub.WebURL)}
	}
	gh, err := gitHubClient(cfg.GitHub.V3APIURL, "")
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("serve: github.v3_api_url: %w", err)}
	}
	dir := filepath.Join(cfg.DataDir, "github-app")
	if _, err := os.Stat(filepath.Join(dir, "private-key.pem")); err == nil {
		return &exitError{code: 2, err: fmt.Errorf("serve: no GitHub App is configured, but %s holds one: add %s to the configuration", dir, filepath.Join(dir, "config.yml"))}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Address, strconv.Itoa(cfg.Server.Port)))
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("serve: listen: %w", err)}
	}
	base := strings.TrimSuffix(cfg.Server.PublicURL, "/") + "/setup"
	flow := newManifestFlow(web, gh, dir, cfg.Commands.Name, cfg.Server.PublicURL, base, stderr)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/setup", http.StatusSeeOther) })
	mux.HandleFunc("GET /setup", func(w http.ResponseWriter, r *http.Request) {
		switch q := r.URL.Query(); q.Get("owner") {
		case "user":
			flow.page(w, "")
		case "org":
			if !ghRepoName.MatchString(q.Get("org")) {
				http.Error(w, "that is not an organization's name", http.StatusBadRequest)
				return
			}
			flow.page(w, q.Get("org"))
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
			_ = ownerPage.Execute(w, nil)
		}
	})
	mux.HandleFunc("GET /setup/callback", flow.callback)
	fmt.Fprintf(stderr, "basinix: no GitHub App is configured: open %s to register one (then add %s to the configuration and start again)\n",
		base, filepath.Join(dir, "config.yml"))
	return flow.serve(ctx, ln, mux)
}

var ownerPage = template.Must(template.New("owner").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>basinix setup</title></head>
<body>
<h1>Register basinix's GitHub App</h1>
<p>No GitHub App is configured yet. Where should GitHub create it?</p>
<form action="/setup" method="get">
<p><label><input type="radio" name="owner" value="user" checked> my own account</label></p>
<p><label><input type="radio" name="owner" value="org"> the organization <input type="text" name="org"></label></p>
<button type="submit">Next</button>
</form>
</body></html>
`))
