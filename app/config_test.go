package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
)

func TestConfigExampleLoads(t *testing.T) {
	cfg, err := LoadConfig("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Eval.AttrTimeout != 2*time.Minute || cfg.Eval.MaxMemoryMiB != 8192 || len(cfg.Systems) != 1 ||
		cfg.Build.MaxJobs != DefaultConfig().Build.MaxJobs || cfg.Build.BuildTimeout != 3*time.Hour || cfg.Build.LocalFeatures != nil ||
		cfg.Eval.Flakes != "auto" || strings.Join(cfg.Eval.FlakeJobs, " ") != "basinixJobs hydraJobs checks packages" || len(cfg.Eval.FlakeLocalInputs) != 0 {
		t.Errorf("config.example.yml does not give the documented defaults: %+v", cfg)
	}
}

func TestConfigIsStrict(t *testing.T) {
	for _, tc := range []struct{ body, wantErr string }{
		{"eval:\n  workerz: 3\n", "field workerz not found"},
		{"build:\n  machine_sizes:\n    \"ssh://nobody\": {cores: 1}\n", "is none of build.machines' URIs"},
		{"build:\n  cgroups:\n    memory_mib: -1\n", "must not be negative"},
		{"eval:\n  flakes: maybe\n", "eval.flakes is \"maybe\""},
		{"eval:\n  flake_jobs: [\"checks; rm -rf /\"]\n", "is not an output name"},
		{"eval:\n  flake_local_inputs: [relative/dir]\n", "is not an absolute path"},
		{"systemz: [x86_64-linux]\n", "field systemz not found"},
		{"systems: [\"x86_64-linux; rm -rf /\"]\n", "is not of the form"},
		{"eval:\n  attr_timeout: soon\n", "soon"},
		{"build:\n  machines: [\"ssh://a x86_64-linux - many\"]\n", `max jobs "many" is not a count`},
		{"build:\n  machines: [\"ssh://a\"]\n", "no systems"},
		{"build:\n  max_silent_time: -1s\n", "must not be negative"},
		{"build:\n  machines_file: /does/not/exist\n", "machines_file"},
		{"server:\n  public_url: not a url\n", "is not an http(s) URL"},
		{"server:\n  push_checks: sometimes\n", "is not flakes, all or none"},
	} {
		path := filepath.Join(t.TempDir(), "c.yml")
		os.WriteFile(path, []byte(tc.body), 0o644)
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", tc.body, err, tc.wantErr)
		}
	}
}

// The App's secrets load from files only basinix's user may read, from the
// configuration only when every user may not read it, and the private key
// must be one.
func TestLoadSecrets(t *testing.T) {
	key := testPrivateKey(t)
	noEnv := func(string) (string, bool) { return "", false }
	write := func(t *testing.T, name, body string, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T) (Config, func(string) (string, bool))
		wantErr string
	}{
		{"files readable by basinix only", func(t *testing.T) (Config, func(string) (string, bool)) {
			cfg := DefaultConfig()
			cfg.GitHub.App.IntegrationID = 1
			cfg.Server.PrivateKeyFile = write(t, "key.pem", key, 0o600)
			cfg.Server.WebhookSecretFile = write(t, "secret", "a-webhook-secret\n", 0o400)
			return cfg, noEnv
		}, ""},
		{"a world-readable key file", func(t *testing.T) (Config, func(string) (string, bool)) {
			cfg := DefaultConfig()
			cfg.GitHub.App.IntegrationID = 1
			cfg.Server.PrivateKeyFile = write(t, "key.pem", key, 0o644)
			cfg.Server.WebhookSecretFile = write(t, "secret", "a-webhook-secret", 0o600)
			return cfg, noEnv
		}, "key.pem is readable by every user (mode 0644)"},
		{"a world-readable configuration holding a secret", func(t *testing.T) (Config, func(string) (string, bool)) {
			path := write(t, "c.yml", "github:\n  app:\n    integration_id: 1\n    webhook_secret: a-webhook-secret\n", 0o644)
			cfg, err := LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Server.PrivateKeyFile = write(t, "key.pem", key, 0o600)
			return cfg, noEnv
		}, "it holds secrets, and"},
		{"secrets from the environment", func(t *testing.T) (Config, func(string) (string, bool)) {
			env := map[string]string{"BASINIX_GITHUB_APP_INTEGRATION_ID": "7", "BASINIX_GITHUB_APP_PRIVATE_KEY": key, "BASINIX_GITHUB_APP_WEBHOOK_SECRET": "a-webhook-secret"}
			return DefaultConfig(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		}, ""},
		{"a private key that is not one", func(t *testing.T) (Config, func(string) (string, bool)) {
			cfg := DefaultConfig()
			cfg.GitHub.App = githubapp.Config{}.App
			cfg.GitHub.App.IntegrationID, cfg.GitHub.App.PrivateKey, cfg.GitHub.App.WebhookSecret = 1, "not a key", "a-webhook-secret"
			return cfg, noEnv
		}, "is not the App's private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, env := tc.setup(t)
			err := cfg.LoadSecrets(env)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.GitHub.App.PrivateKey != strings.TrimSpace(key) && cfg.GitHub.App.PrivateKey != key || cfg.GitHub.App.WebhookSecret != "a-webhook-secret" {
					t.Errorf("secrets not loaded: %+v", cfg.GitHub.App)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func testPrivateKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}
