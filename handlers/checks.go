package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rs/zerolog"
)

// Reruns is what the check handlers ask of the pipeline.
type Reruns interface {
	// Rerun reviews the revisions of repo at head again, with new check runs.
	Rerun(ctx context.Context, repo, head string) error
}

// CheckHandler handles check_suite requested and rerequested and check_run
// rerequested: the revisions of that head are reviewed again.
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
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	action, repo, head := ev.Action, ev.Repository.FullName, ev.CheckSuite.HeadSHA
	switch {
	case eventType == "check_suite" && (action == "requested" || action == "rerequested"):
	case eventType == "check_run" && action == "rerequested":
		head = ev.CheckRun.HeadSHA
	default:
		return nil
	}
	if repo == "" || head == "" {
		return fmt.Errorf("%w: %s %s: no repository or head", ErrBadPayload, eventType, deliveryID)
	}
	h.Log.Info().Str("repo", repo).Str("head", head).Str("event", eventType).Str("action", action).Msg("re-run asked")
	return h.Reruns.Rerun(ctx, repo, head)
}
