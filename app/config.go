// Package app is basinix's composition root and server: it reads the
// configuration, wires a review.Reviewer to GitHub (webhooks in, check
// runs, comments and labels out), runs the jobs and the revision pipeline
// over the store, and serves the web pages (package app/web).
package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/palantir/go-githubapp/githubapp"
	"gopkg.in/yaml.v3"

	"github.com/basinix/basinix/app/commands"
	"github.com/basinix/basinix/app/web"
	"github.com/basinix/basinix/review"
)

// Config is basinix's configuration; config.example.yml documents each
// field. The review's part (data directory, systems, Nix, evaluation,
// builds, checkouts) is review.Config's.
type Config struct {
	review.Config `yaml:",inline"`
	// GitHub is go-githubapp's section: web_url, v3_api_url, v4_api_url,
	// app.integration_id, app.webhook_secret, app.private_key.
	GitHub   githubapp.Config `yaml:"github"`
	Server   ServerConfig     `yaml:"server"`
	Commands commands.Config  `yaml:"commands"`
	Web      web.Config       `yaml:"web"`

	// path is the file the configuration was read from ("" for none).
	path string
}

// ServerConfig is `basinix serve`'s HTTP side and what it reviews.
type ServerConfig struct {
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
	// PublicURL is where users reach the web page; links in check runs use it.
	PublicURL string `yaml:"public_url"`
	// Drafts reviews draft pull requests too.
	Drafts bool `yaml:"drafts"`
	// Concurrent is how many revisions are worked on at once.
	Concurrent int `yaml:"concurrent"`
	// BranchPriority is the build priority of tracked branches' changes;
	// PRs are built at about 10 minus their rebuild count, so the default
	// (-1000000) puts branch builds after every PR's.
	BranchPriority int `yaml:"branch_priority"`
	// TrackedBranches are evaluated on every push, so PRs against them find
	// the base cached; empty: each repository's default branch.
	TrackedBranches []string `yaml:"tracked_branches"`
	// PushChecks says which tracked branches' pushes get check runs on
	// their commits (a push revision, the new tip reviewed against the
	// previous one): "flakes" (repositories evaluated as flakes: a CI's
	// job check runs), "all" (the eval and build check runs of package
	// sets too), "none".
	PushChecks string `yaml:"push_checks"`
	// GitHubRetryFor is how long a GitHub API call is retried (5xx,
	// secondary rate limits) before it fails; final results that failed are
	// sent again later.
	GitHubRetryFor time.Duration `yaml:"github_retry_for"`
	// ReconcileEvery is how often open PRs are listed, for webhooks missed
	// while down (also at start).
	ReconcileEvery time.Duration `yaml:"reconcile_every"`
	// RebuildLabels maps a system to the prefix of its rebuild label
	// ("10.rebuild-linux" gives "10.rebuild-linux: 11-100").
	RebuildLabels map[string]string `yaml:"rebuild_labels"`
	// Maintainers: review requests and labels from the maintainers of what
	// a PR changes.
	Maintainers MaintainersConfig `yaml:"maintainers"`
	// ReadTimeout bounds the time a client has to send a whole request,
	// body included; MaxConnections the connections open at once;
	// WebhookMemoryMiB the webhook bodies held at once.
	// MachineRetry is how long after failing for the machine's fault (the
	// Nix store, the disk, a killed process) a revision is tried again; the
	// wait doubles each time, up to 30 minutes, five times at most.
	MachineRetry     time.Duration `yaml:"machine_retry"`
	ReadTimeout      time.Duration `yaml:"read_timeout"`
	MaxConnections   int           `yaml:"max_connections"`
	WebhookMemoryMiB int           `yaml:"webhook_memory_mib"`
	// PrivateKeyFile and WebhookSecretFile, when set, hold the App's
	// private key and webhook secret (instead of the github section).
	PrivateKeyFile    string `yaml:"private_key_file"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// OAuthClientSecretFile holds the App's OAuth client secret, for
	// GitHub login (instead of github.oauth.client_secret).
	OAuthClientSecretFile string `yaml:"oauth_client_secret_file"`
}

// DefaultConfig returns the configuration used when no file is given.
func DefaultConfig() Config {
	return Config{
		Config: review.DefaultConfig(),
		Server: ServerConfig{Address: "127.0.0.1", Port: 8080, PublicURL: "http://127.0.0.1:8080", Concurrent: 4, ReconcileEvery: 10 * time.Minute, PushChecks: "flakes", BranchPriority: review.DefaultBranchPriority, GitHubRetryFor: 5 * time.Minute,
			ReadTimeout: 30 * time.Second, MaxConnections: 1024, WebhookMemoryMiB: 128, MachineRetry: time.Minute,
			RebuildLabels: map[string]string{"x86_64-linux": "10.rebuild-linux", "x86_64-darwin": "10.rebuild-darwin"},
			Maintainers:   DefaultMaintainers},
		Commands: commands.Config{Name: "basinix", Permissions: []string{"write", "maintain", "admin"}, MergeMethod: "merge", MergeChecks: []string{"eval", "build"}},
		Web:      web.Config{SessionTTL: 30 * 24 * time.Hour},
	}
}

// Review returns the review's part of the configuration, with the
// server's branch priority.
func (c Config) Review() review.Config {
	r := c.Config
	r.BranchPriority = c.Server.BranchPriority
	return r
}

// LoadConfig reads a YAML configuration over the defaults. Decoding is
// strict: an unknown key is an error that names it.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	f, err := os.Open(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if err := decodeConfig(f, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.path = path
	return cfg, cfg.Validate()
}

func decodeConfig(r io.Reader, cfg *Config) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate checks the values a decoder cannot.
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: server.public_url %q is not an http(s) URL (check runs link to it)", c.Server.PublicURL)
	}
	if sv := c.Server; sv.ReadTimeout <= 0 || sv.MaxConnections <= 0 || sv.MachineRetry <= 0 || sv.WebhookMemoryMiB < maxPayload>>20 {
		return fmt.Errorf("config: server.read_timeout, max_connections and machine_retry must be positive, server.webhook_memory_mib at least %d (the largest webhook GitHub sends)", maxPayload>>20)
	}
	if c.Server.Maintainers.MaxReviewers < 0 {
		return fmt.Errorf("config: server.maintainers.max_reviewers must not be negative")
	}
	switch c.Server.PushChecks {
	case "flakes", "all", "none":
	default:
		return fmt.Errorf("config: server.push_checks %q is not flakes, all or none", c.Server.PushChecks)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`).MatchString(c.Commands.Name) {
		return fmt.Errorf("config: commands.name %q is not a GitHub login", c.Commands.Name)
	}
	switch c.Commands.MergeMethod {
	case "merge", "squash", "rebase":
	default:
		return fmt.Errorf("config: commands.merge_method %q is not merge, squash or rebase", c.Commands.MergeMethod)
	}
	for _, m := range c.Commands.MergeChecks {
		if m != "eval" && m != "build" {
			return fmt.Errorf("config: commands.merge_checks: %q is not eval or build", m)
		}
	}
	for _, p := range c.Commands.Permissions {
		switch p {
		case "read", "triage", "write", "maintain", "admin":
		default:
			return fmt.Errorf("config: commands.permissions: %q is not one of read, triage, write, maintain, admin", p)
		}
	}
	return nil
}

// SecretEnv are the environment variables that may hold secrets: the
// App's, and the user's token basinix pr uses (GITHUB_TOKEN); basinix
// takes them out of its environment once read.
var SecretEnv = []string{"BASINIX_GITHUB_APP_WEBHOOK_SECRET", "BASINIX_GITHUB_APP_PRIVATE_KEY", "BASINIX_GITHUB_OAUTH_CLIENT_SECRET", "GITHUB_TOKEN"}

// LoadSecrets fills the App's secrets from the files the server section
// names and from the environment, through lookup (os.LookupEnv, or what
// basinix took out of its environment): BASINIX_GITHUB_APP_INTEGRATION_ID,
// BASINIX_GITHUB_APP_WEBHOOK_SECRET, BASINIX_GITHUB_APP_PRIVATE_KEY, ...,
// which win over the files. Then it checks that serving is possible: a
// file holding a secret (the configuration too, when it holds one) must
// not be readable by every user, and the private key must be one.
func (c *Config) LoadSecrets(lookup func(string) (string, bool)) error {
	app := &c.GitHub.App
	if c.path != "" && (app.PrivateKey != "" || app.WebhookSecret != "" || c.GitHub.OAuth.ClientSecret != "") {
		if err := privateFile(c.path); err != nil {
			return fmt.Errorf("config: it holds secrets, and %w", err)
		}
	}
	for _, f := range []struct {
		path string
		dst  *string
	}{{c.Server.PrivateKeyFile, &app.PrivateKey}, {c.Server.WebhookSecretFile, &app.WebhookSecret}, {c.Server.OAuthClientSecretFile, &c.GitHub.OAuth.ClientSecret}} {
		if f.path == "" {
			continue
		}
		if err := privateFile(f.path); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		*f.dst = strings.TrimSpace(string(b))
	}
	for name, dst := range map[string]*string{
		"GITHUB_WEB_URL": &c.GitHub.WebURL, "GITHUB_V3_API_URL": &c.GitHub.V3APIURL, "GITHUB_V4_API_URL": &c.GitHub.V4APIURL,
		"GITHUB_APP_WEBHOOK_SECRET": &app.WebhookSecret, "GITHUB_APP_PRIVATE_KEY": &app.PrivateKey,
		"GITHUB_OAUTH_CLIENT_ID": &c.GitHub.OAuth.ClientID, "GITHUB_OAUTH_CLIENT_SECRET": &c.GitHub.OAuth.ClientSecret,
	} {
		if v, ok := lookup("BASINIX_" + name); ok {
			*dst = v
		}
	}
	if v, ok := lookup("BASINIX_GITHUB_APP_INTEGRATION_ID"); ok {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("config: BASINIX_GITHUB_APP_INTEGRATION_ID %q is not a number", v)
		}
		app.IntegrationID = id
	}
	switch {
	case app.IntegrationID == 0:
		return fmt.Errorf("config: github.app.integration_id is not set")
	case app.PrivateKey == "":
		return fmt.Errorf("config: github.app.private_key is not set (or server.private_key_file)")
	case app.WebhookSecret == "":
		return fmt.Errorf("config: github.app.webhook_secret is not set (or server.webhook_secret_file)")
	}
	if _, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(app.PrivateKey)); err != nil {
		return fmt.Errorf("config: github.app.private_key is not the App's private key (a PEM RSA key, as GitHub gives it): %v", err)
	}
	if c.GitHub.V3APIURL == "" {
		c.GitHub.V3APIURL = "https://api.github.com/"
	}
	if c.GitHub.WebURL == "" {
		c.GitHub.WebURL = "https://github.com/"
	}
	if c.GitHub.V4APIURL == "" {
		c.GitHub.V4APIURL = strings.TrimSuffix(c.GitHub.V3APIURL, "/") + "/graphql"
	}
	return nil
}

// Secrets returns the secrets LoadSecrets loaded, for the redactor.
func (c *Config) Secrets() []string {
	return []string{c.GitHub.App.PrivateKey, c.GitHub.App.WebhookSecret, c.GitHub.OAuth.ClientSecret}
}

// privateFile refuses a file every user of the machine may read.
func privateFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&0o004 != 0 {
		return fmt.Errorf("%s is readable by every user (mode %04o): make it readable by basinix's user only (chmod 600 %s)", path, perm, path)
	}
	return nil
}
