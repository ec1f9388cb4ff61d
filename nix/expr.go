package nix

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

//go:embed expr/*.nix
var exprs embed.FS

// exprFiles are the expressions written beside each other: the walker, the
// flake adapter it imports, and the trusted fetcher of flake inputs.
var exprFiles = []string{"walker.nix", "flake-jobs.nix", "fetch.nix"}

// WalkerHash identifies the walker's expressions; it is part of every
// evaluation's cache key, so a changed walker never reuses old results.
func WalkerHash() string {
	h := sha256.New()
	for _, name := range exprFiles {
		b, _ := exprs.ReadFile("expr/" + name)
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// WriteWalker writes the walker's expressions under dir (once per version)
// and returns the walker's path; the others are beside it. Nix reads
// expressions from files, and restricted evaluation only lets it read
// files below the directories it is given.
func WriteWalker(dir string) (string, error) {
	dir = filepath.Join(dir, "walker-"+WalkerHash())
	path := filepath.Join(dir, "walker.nix")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write walker: %w", err)
	}
	// walker.nix last: its presence says the directory is complete.
	for i := len(exprFiles) - 1; i >= 0; i-- {
		b, _ := exprs.ReadFile("expr/" + exprFiles[i])
		if err := writeAtomic(dir, exprFiles[i], b); err != nil {
			return "", fmt.Errorf("write walker: %w", err)
		}
	}
	return path, nil
}

// writeAtomic writes name in dir through a temporary file and a rename,
// so that a reader sees all of it or nothing.
func writeAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, ".expr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
