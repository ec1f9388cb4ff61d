package nixos_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/basinix/basinix/internal/nixos"
	"github.com/basinix/basinix/internal/testenv"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// dist/options.nix is what config.example.yml gives.
func TestOptionsUpToDate(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(root, "config.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := nixos.Options(example)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "dist/options.nix")
	if testenv.Update() {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("dist/options.nix is not what config.example.yml gives: go test ./internal/nixos -update")
	}
}
