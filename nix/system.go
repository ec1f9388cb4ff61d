package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Host is what the local Nix builds: its system and extra platforms, its
// system features, and whether builds are sandboxed.
type Host struct {
	Systems  []string
	Features []string
	Sandbox  bool
}

// Host asks Nix (`nix show-config --json`) what this machine builds.
func (r *Runner) Host(ctx context.Context) (*Host, error) {
	res, err := r.Run(ctx, Cmd{Program: "nix", Args: []string{"--extra-experimental-features", "nix-command", "show-config", "--json"}, Limits: Limits{Timeout: time.Minute}})
	if err != nil {
		return nil, fmt.Errorf("nix show-config: %w", err)
	}
	var cfg map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(res.Stdout, &cfg); err != nil {
		return nil, fmt.Errorf("nix show-config: %w", err)
	}
	var h Host
	var system string
	var extra []string
	_ = json.Unmarshal(cfg["system"].Value, &system)
	_ = json.Unmarshal(cfg["extra-platforms"].Value, &extra)
	_ = json.Unmarshal(cfg["system-features"].Value, &h.Features)
	var sandbox any
	_ = json.Unmarshal(cfg["sandbox"].Value, &sandbox)
	h.Sandbox = sandbox == true || sandbox == "relaxed"
	if system == "" {
		return nil, fmt.Errorf("nix show-config: no system")
	}
	h.Systems = append([]string{system}, extra...)
	return &h, nil
}

// InitStore creates the Nix store's database when it is not there yet
// (nix-store --init), so that processes started at once do not race to
// create it; on an existing store it does nothing.
func (r *Runner) InitStore(ctx context.Context) error {
	_, err := r.Run(ctx, Cmd{Program: "nix-store", Args: []string{"--init"}, Limits: Limits{Timeout: time.Minute}})
	return err
}
