package nix

import (
	"context"
	"encoding/json"
	"fmt"
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
// filled either way. A path that is not valid is an error.
func (r *Runner) PathInfos(ctx context.Context, paths []string, closure bool) (map[string]PathInfo, error) {
	out := map[string]PathInfo{}
	for len(paths) > 0 {
		n := min(len(paths), 2000)
		args := []string{"path-info", "--json", "--closure-size"}
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
	return out, nil
}
