package nix

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/derivation"
)

// Derivation is what basinix needs of a .drv file: where it can be built
// and what it depends on.
type Derivation struct {
	Path     string
	System   string
	Features []string          // requiredSystemFeatures
	Outputs  map[string]string // output name → store path ("" for content-addressed outputs)
	Inputs   []string          // input derivations, sorted
	// Fixed is set for a fixed-output derivation (a source download):
	// its output's hash is known before it is built.
	Fixed bool
}

// ReadDerivation parses the .drv file at path, which must be an absolute
// store path of a derivation (as evaluation prints it).
func ReadDerivation(path string) (*Derivation, error) {
	if err := CheckDrvPath(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read derivation %s: %w", path, err)
	}
	defer f.Close()
	d, err := derivation.ReadDerivation(f)
	if err != nil {
		return nil, fmt.Errorf("parse derivation %s: %w", path, err)
	}
	out := &Derivation{Path: path, System: d.Platform, Outputs: map[string]string{}}
	if f := d.Env["requiredSystemFeatures"]; f != "" {
		out.Features = strings.Fields(f)
	}
	for name, o := range d.Outputs {
		out.Outputs[name] = o.Path
		if o.Hash != "" {
			out.Fixed = true
		}
	}
	for in := range d.InputDerivations {
		out.Inputs = append(out.Inputs, in)
	}
	sort.Strings(out.Inputs)
	return out, nil
}

// CheckDrvPath returns an error unless p looks like a derivation in the
// Nix store: an absolute, clean path ending in .drv whose name holds only
// the characters Nix allows. Paths that pass are safe as file names and
// command arguments.
func CheckDrvPath(p string) error {
	if !strings.HasSuffix(p, ".drv") || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%q is not a derivation path", p)
	}
	base := filepath.Base(p)
	if len(base) < 34 || base[32] != '-' || strings.HasPrefix(base, ".") {
		return fmt.Errorf("%q is not a derivation path", p)
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+-._?=", c)) {
			return fmt.Errorf("%q is not a derivation path", p)
		}
	}
	return nil
}
