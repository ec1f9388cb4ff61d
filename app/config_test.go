package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigExampleLoads(t *testing.T) {
	cfg, err := LoadConfig("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Eval.AttrTimeout != 2*time.Minute || cfg.Eval.MaxMemoryMiB != 8192 || len(cfg.Systems) != 1 ||
		cfg.Build.MaxJobs != DefaultConfig().Build.MaxJobs || cfg.Build.BuildTimeout != 3*time.Hour || cfg.Build.LocalFeatures != nil {
		t.Errorf("config.example.yml does not give the documented defaults: %+v", cfg)
	}
}

func TestConfigIsStrict(t *testing.T) {
	for _, tc := range []struct{ body, wantErr string }{
		{"eval:\n  workerz: 3\n", "field workerz not found"},
		{"systemz: [x86_64-linux]\n", "field systemz not found"},
		{"systems: [\"x86_64-linux; rm -rf /\"]\n", "is not of the form"},
		{"eval:\n  attr_timeout: soon\n", "soon"},
		{"build:\n  machines: [\"ssh://a x86_64-linux - many\"]\n", `max jobs "many" is not a count`},
		{"build:\n  machines: [\"ssh://a\"]\n", "no systems"},
		{"build:\n  max_silent_time: -1s\n", "must not be negative"},
		{"build:\n  machines_file: /does/not/exist\n", "machines_file"},
	} {
		path := filepath.Join(t.TempDir(), "c.yml")
		os.WriteFile(path, []byte(tc.body), 0o644)
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", tc.body, err, tc.wantErr)
		}
	}
}
