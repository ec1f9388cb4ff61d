package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// Installations is what the installation handler asks of the pipeline.
type Installations interface {
	// Installed reviews the open PRs of an installation's repositories
	// (a new installation, or repositories added to one).
	Installed(ctx context.Context, installationID int64) error
}

// InstallationHandler handles installation and installation_repositories:
// a new installation or new repositories get their open PRs reviewed.
type InstallationHandler struct {
	Installations Installations
	Log           zerolog.Logger
}

// Handles implements githubapp.EventHandler.
func (h *InstallationHandler) Handles() []string {
	return []string{"installation", "installation_repositories"}
}

// Handle implements githubapp.EventHandler.
func (h *InstallationHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev struct {
		Action       string               `json:"action"`
		Installation *github.Installation `json:"installation"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.Installation == nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	log := h.Log.With().Int64("installation", ev.Installation.GetID()).Str("account", ev.Installation.GetAccount().GetLogin()).Str("event", eventType).Str("action", ev.Action).Logger()
	switch ev.Action {
	case "created", "added", "unsuspend", "new_permissions_accepted":
		log.Info().Msg("installation changed: reviewing its open pull requests")
		return h.Installations.Installed(ctx, ev.Installation.GetID())
	}
	log.Info().Msg("installation changed")
	return nil
}
