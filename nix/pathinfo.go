package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// PathInfo is what the store knows of one valid path.
type PathInfo struct {
	Path        string   `json:"path"`
	NarSize     int64    `json:"narSize"`
	ClosureSize int64    `json:"closureSize,omitempty"`
	References  []string `json:"references,omitempty"`
	Deriver     string   `json:"deriver,omitempty"`
	Signatures  []string `json:"signatures,omitempty"`
}

// PathInfos asks the store about paths (`nix path-info --json`): with
// closure, about every path in their closures too; closure sizes are
// filled either way. A path that is not valid is an error. A .drv is
// asked about as itself (for the new CLI, a .drv means its outputs).
func (r *Runner) PathInfos(ctx context.Context, paths []string, closure bool) (map[string]PathInfo, error) {
	var drvs, others []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".drv") {
			drvs = append(drvs, p)
		} else {
			others = append(others, p)
		}
	}
	out := map[string]PathInfo{}
	for _, set := range []struct {
		paths []string
		flags []string
	}{{others, nil}, {drvs, []string{"--derivation"}}} {
		for paths := set.paths; len(paths) > 0; {
			n := min(len(paths), 2000)
			args := append([]string{"path-info", "--json", "--closure-size"}, set.flags...)
			if closure {
				args = append(args, "--recursive")
			}
			res, err := r.Run(ctx, Cmd{
				Program: "nix",
				Args:    append(append(args, "--"), paths[:n]...),
				Limits:  Limits{Timeout: 5 * time.Minute, MaxStdout: 512 << 20},
			})
			if err != nil {
				return nil, fmt.Errorf("path-info: %w", err)
			}
			var infos []PathInfo
			if err := json.Unmarshal(res.Stdout, &infos); err != nil {
				return nil, fmt.Errorf("path-info: %w", err)
			}
			for _, i := range infos {
				out[i.Path] = i
			}
			paths = paths[n:]
		}
	}
	return out, nil
}

// CopyTo copies paths and their closures to the store at url
// (`nix copy --to`), which signs them when url has a secret-key.
func (r *Runner) CopyTo(ctx context.Context, url string, paths []string) error {
	_, err := r.Run(ctx, Cmd{
		Program: "nix",
		Args:    append([]string{"copy", "--to", url, "--"}, paths...),
		Limits:  Limits{Timeout: 2 * time.Hour, Silence: 30 * time.Minute},
	})
	if err != nil {
		return fmt.Errorf("copy to the cache: %w", err)
	}
	return nil
}
