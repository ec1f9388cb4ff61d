package nix_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/nix"
)

type mapFiles map[string]string

func (m mapFiles) Has(name string) bool { _, ok := m[name]; return ok }

func (m mapFiles) Read(name string) ([]byte, error) {
	if b, ok := m[name]; ok {
		return []byte(b), nil
	}
	return nil, fmt.Errorf("read %s: %w", name, os.ErrNotExist)
}

// How a commit is evaluated: the server's mode, the files at its root and
// the repository's .basinix.toml.
func TestLocate(t *testing.T) {
	const toml = "[flake]\ndir = \"./nix/\"\njobs = [\"ciJobs\", \"checks\"]\n"
	for _, tc := range []struct {
		name  string
		mode  string
		files mapFiles
		want  nix.Layout
	}{
		{"package set", "auto", mapFiles{"default.nix": ""}, nix.Layout{}},
		{"flake", "auto", mapFiles{"flake.nix": ""}, nix.Layout{Flake: true}},
		{"both: a package set (nixpkgs)", "auto", mapFiles{"flake.nix": "", "default.nix": ""}, nix.Layout{}},
		{"both, always", "always", mapFiles{"flake.nix": "", "default.nix": ""}, nix.Layout{Flake: true}},
		{"flake, never", "never", mapFiles{"flake.nix": "", ".basinix.toml": toml, "nix/flake.nix": ""}, nix.Layout{}},
		{"in a directory", "auto", mapFiles{"default.nix": "", ".basinix.toml": toml, "nix/flake.nix": ""},
			nix.Layout{Flake: true, Dir: "nix", Jobs: []string{"ciJobs", "checks"}}},
		{"no [flake] table", "auto", mapFiles{"default.nix": "", ".basinix.toml": "# nothing yet\n"}, nix.Layout{}},
		{"jobs only", "auto", mapFiles{"flake.nix": "", "default.nix": "", ".basinix.toml": "[flake]\njobs = [\"hydraJobs\"]\n"},
			nix.Layout{Flake: true, Jobs: []string{"hydraJobs"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nix.Locate(tc.mode, tc.files)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("layout (-want +got):\n%s", diff)
			}
			if got.Flake && !tc.files.Has(got.Entry()) {
				t.Errorf("entry %s is not a file of the commit", got.Entry())
			}
		})
	}
	for _, bad := range []string{"[flake]\ndir = \"/etc\"\n", "[flake]\ndir = \"a/../..\"\n", "[flake]\ndir = \".git\"\n", "[flake\n", "[flake]\njobs = \"checks\"\n"} {
		_, err := nix.Locate("auto", mapFiles{"flake.nix": "", ".basinix.toml": bad})
		if !errors.Is(err, nix.ErrFlake) {
			t.Errorf("%q: %v, want an ErrFlake error", bad, err)
		}
	}
}
