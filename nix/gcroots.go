package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A garbage-collector root of basinix keeps a set of store paths with one
// indirect root: a small store file whose references are the paths
// (builtins.toFile with their context), rooted by a symbolic link under
// basinix's data directory. Replacing the set is writing a new file and
// moving the link; the same set gives the same file.

// rootExpr writes the file: its content lists the paths, its references
// are them.
const rootExpr = `{ list, name }: builtins.toFile name (builtins.concatStringsSep "\n" (map builtins.storePath (builtins.fromJSON (builtins.readFile list))))`

// storePathRe is a store path basinix hands Nix: /nix/store/HASH-NAME.
var storePathRe = regexp.MustCompile(`^/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$`)

// CheckStorePath returns an error unless p is a plain store path.
func CheckStorePath(p string) error {
	if !storePathRe.MatchString(p) || strings.HasPrefix(filepath.Base(p)[33:], ".") {
		return fmt.Errorf("%q is not a store path", p)
	}
	return nil
}

// RootSet makes the store file that references paths (all valid) and
// roots it at link, replacing what link rooted; tmp is a directory for
// the list. It returns the file's store path.
func (r *Runner) RootSet(ctx context.Context, link, tmp string, paths []string) (string, error) {
	for _, p := range paths {
		if err := CheckStorePath(p); err != nil {
			return "", fmt.Errorf("root %s: %w", link, err)
		}
	}
	if paths == nil {
		paths = []string{}
	}
	b, err := json.Marshal(paths)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(tmp, "gcroot-*.json")
	if err != nil {
		return "", fmt.Errorf("root %s: %w", link, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", fmt.Errorf("root %s: %w", link, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("root %s: %w", link, err)
	}
	res, err := r.Run(ctx, Cmd{
		Program: "nix-instantiate",
		Args:    []string{"--eval", "--read-write-mode", "-E", rootExpr, "--argstr", "list", f.Name(), "--argstr", "name", "basinix-gcroot"},
		Limits:  Limits{Timeout: 10 * time.Minute},
	})
	if err != nil {
		return "", fmt.Errorf("root %s: %w", link, err)
	}
	file, err := strconv.Unquote(strings.TrimSpace(string(res.Stdout)))
	if err != nil || CheckStorePath(file) != nil {
		return "", fmt.Errorf("root %s: nix-instantiate printed %q", link, res.Stdout)
	}
	if _, err := r.Run(ctx, Cmd{
		Program: "nix-store",
		Args:    []string{"--add-root", link, "--indirect", "--realise", file},
		Limits:  Limits{Timeout: 5 * time.Minute},
	}); err != nil {
		return "", fmt.Errorf("root %s: %w", link, err)
	}
	return file, nil
}

// References returns the paths path refers to.
func (r *Runner) References(ctx context.Context, path string) ([]string, error) {
	res, err := r.Run(ctx, Cmd{Program: "nix-store", Args: []string{"--query", "--references", "--", path}, Limits: Limits{Timeout: 5 * time.Minute}})
	if err != nil {
		return nil, fmt.Errorf("references of %s: %w", path, err)
	}
	return strings.Fields(string(res.Stdout)), nil
}

// Requisites returns the closures of paths (of derivations: every
// derivation and source they need).
func (r *Runner) Requisites(ctx context.Context, paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for len(paths) > 0 {
		n := min(len(paths), 2000)
		res, err := r.Run(ctx, Cmd{
			Program: "nix-store",
			Args:    append([]string{"--query", "--requisites", "--"}, paths[:n]...),
			Limits:  Limits{Timeout: 10 * time.Minute, MaxStdout: 512 << 20},
		})
		if err != nil {
			return nil, fmt.Errorf("requisites: %w", err)
		}
		for _, p := range strings.Fields(string(res.Stdout)) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		paths = paths[n:]
	}
	return out, nil
}

// Collected is what a garbage collection did.
type Collected struct {
	Paths int    `json:"paths"`
	Freed string `json:"freed"` // as Nix says it: "12.34 MiB"
}

var collectedRe = regexp.MustCompile(`(\d+) store paths deleted, ([\d.]+ [KMGT]?i?B) freed`)

// CollectGarbage runs Nix's garbage collector, freeing at most maxFreed
// bytes (0: as much as it can).
func (r *Runner) CollectGarbage(ctx context.Context, maxFreed int64) (*Collected, error) {
	args := []string{"--gc"}
	if maxFreed > 0 {
		args = append(args, "--max-freed", strconv.FormatInt(maxFreed, 10))
	}
	res, err := r.Run(ctx, Cmd{Program: "nix-store", Args: args, Limits: Limits{Timeout: 6 * time.Hour}})
	if err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	m := collectedRe.FindStringSubmatch(string(res.Stdout) + string(res.StderrTail))
	if m == nil {
		return &Collected{Freed: "0.00 MiB"}, nil
	}
	n, _ := strconv.Atoi(m[1])
	return &Collected{Paths: n, Freed: m[2]}, nil
}
