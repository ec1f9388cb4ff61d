package nix

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

//go:embed expr/walker.nix
var walkerExpr []byte

// WalkerHash identifies the walker expression; it is part of every
// evaluation's cache key, so a changed walker never reuses old results.
func WalkerHash() string {
	sum := sha256.Sum256(walkerExpr)
	return hex.EncodeToString(sum[:8])
}

// WriteWalker writes the walker expression under dir (once per version) and
// returns its path. Nix reads expressions from files, and restricted
// evaluation only lets it read files below the directories it is given.
func WriteWalker(dir string) (string, error) {
	dir = filepath.Join(dir, "walker-"+WalkerHash())
	path := filepath.Join(dir, "walker.nix")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write walker: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".walker-*")
	if err != nil {
		return "", fmt.Errorf("write walker: %w", err)
	}
	if _, err := tmp.Write(walkerExpr); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write walker: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write walker: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write walker: %w", err)
	}
	return path, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
