package nix

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func requireNix(t *testing.T) *Runner {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Fatal("nix-instantiate not found: these tests need the real Nix (run .ci/install-nix)")
	}
	return New("", nil, zerolog.Nop())
}

func TestVersion(t *testing.T) {
	r := requireNix(t)
	v, err := r.Version(context.Background())
	if err != nil || !strings.HasPrefix(v, "2.") {
		t.Fatalf("Version() = %q, %v; want 2.x", v, err)
	}
}

func TestRunLimits(t *testing.T) {
	r := requireNix(t)
	// Lazily allocates little but takes forever.
	const slow = `builtins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 1000000)`
	const hog = `builtins.length (builtins.genList (x: [ x x ]) 200000000)`
	tests := []struct {
		name     string
		expr     string
		limits   Limits
		wantKill Kill
		wantMsg  string
	}{
		{"silence", slow, Limits{Silence: 500 * time.Millisecond}, KillSilence, "without progress"},
		{"timeout", slow, Limits{Timeout: 500 * time.Millisecond}, KillTimeout, "time limit of 500ms"},
		{"memory", hog, Limits{MaxMemory: 256 << 20}, KillMemory, "memory limit of 256 MiB"},
		{"nix error", `1 + "a"`, Limits{}, KillNone, "cannot add a string to an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Run(context.Background(), Cmd{Program: "nix-instantiate", Args: []string{"--eval", "-E", tc.expr}, Limits: tc.limits})
			var nerr *Error
			if !errors.As(err, &nerr) {
				t.Fatalf("want an *Error, got %v", err)
			}
			if nerr.Kill != tc.wantKill || res.Killed != tc.wantKill {
				t.Errorf("kill = %q (result %q), want %q", nerr.Kill, res.Killed, tc.wantKill)
			}
			if !strings.Contains(nerr.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", nerr.Message, tc.wantMsg)
			}
		})
	}
}

func TestRunCapsStdout(t *testing.T) {
	r := requireNix(t)
	_, err := r.Run(context.Background(), Cmd{
		Program: "nix-instantiate",
		Args:    []string{"--eval", "--strict", "-E", `builtins.genList (x: x) 10000`},
		Limits:  Limits{MaxStdout: 1000},
	})
	if err == nil || !strings.Contains(err.Error(), "output exceeds 1000 bytes") {
		t.Fatalf("want an output-size error, got %v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	r := requireNix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, Cmd{Program: "nix-instantiate", Args: []string{"--eval", "-E",
		`builtins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 1000000)`}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancellation took %s", took)
	}
}

func TestRunMissingProgram(t *testing.T) {
	r := New("", nil, zerolog.Nop())
	_, err := r.Run(context.Background(), Cmd{Program: "nix-does-not-exist"})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("want ErrNotInstalled, got %v", err)
	}
}
