package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"
)

// Reruns is what the check handlers ask of the pipeline.
type Reruns interface {
	// Rerun reviews the revisions of repo at head again, with new check
	// runs; with rebuildFailed, their remembered failures are built again.
	Rerun(ctx context.Context, repo, head string, rebuildFailed bool) error
}

// CheckHandler handles check_suite requested and rerequested and check_run
// rerequested: the revisions of that head are reviewed again; and the
// check run's "Rebuild failed" button (requested_action rebuild-failed),
// which also builds the failures again.
type CheckHandler struct {
	Reruns Reruns
	Log    zerolog.Logger
}

// Handles implements githubapp.EventHandler.
func (h *CheckHandler) Handles() []string { return []string{"check_suite", "check_run"} }

// Handle implements githubapp.EventHandler.
func (h *CheckHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	// Only the fields needed: GitHub's own examples carry timestamps in
	// layouts go-github's types do not parse.
	var ev struct {
		Action     string `json:"action"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		CheckSuite struct {
			HeadSHA string `json:"head_sha"`
		} `json:"check_suite"`
		CheckRun struct {
			HeadSHA string `json:"head_sha"`
		} `json:"check_run"`
		RequestedAction struct {
			Identifier string `json:"identifier"`
		} `json:"requested_action"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	action, repo, head := ev.Action, ev.Repository.FullName, ev.CheckSuite.HeadSHA
	rebuild := false
	switch {
	case eventType == "check_suite" && (action == "requested" || action == "rerequested"):
	case eventType == "check_run" && action == "rerequested":
		head = ev.CheckRun.HeadSHA
	case eventType == "check_run" && action == "requested_action" && ev.RequestedAction.Identifier == "rebuild-failed":
		head, rebuild = ev.CheckRun.HeadSHA, true
	default:
		return nil
	}
	if repo == "" || head == "" {
		return fmt.Errorf("%w: %s %s: no repository or head", ErrBadPayload, eventType, deliveryID)
	}
	h.Log.Info().Str("repo", repo).Str("head", head).Str("event", eventType).Str("action", action).Msg("re-run asked")
	return h.Reruns.Rerun(ctx, repo, head, rebuild)
}
