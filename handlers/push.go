package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// BranchPush is a new tip of a tracked branch.
type BranchPush struct {
	InstallationID int64
	Repo           string
	CloneURL       string
	Branch         string
	Commit         string
	Private        bool
}

// Branches is what the push handler asks of the pipeline.
type Branches interface {
	// Evaluate updates the mirror and evaluates the new tip, so that the
	// PRs against the branch find it cached.
	Evaluate(ctx context.Context, push BranchPush) error
}

// PushHandler handles pushes to tracked branches (Tracked, or the
// repository's default branch when Tracked is empty).
type PushHandler struct {
	Branches Branches
	Tracked  []string
	Log      zerolog.Logger
}

// Handles implements githubapp.EventHandler.
func (h *PushHandler) Handles() []string { return []string{"push"} }

// Handle implements githubapp.EventHandler.
func (h *PushHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.PushEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	branch, ok := strings.CutPrefix(ev.GetRef(), "refs/heads/")
	if !ok || ev.GetDeleted() || ev.GetAfter() == "" {
		return nil
	}
	tracked := h.Tracked
	if len(tracked) == 0 {
		tracked = []string{ev.GetRepo().GetDefaultBranch()}
	}
	if !slices.Contains(tracked, branch) {
		return nil
	}
	push := BranchPush{InstallationID: ev.GetInstallation().GetID(), Repo: ev.GetRepo().GetFullName(), CloneURL: ev.GetRepo().GetCloneURL(), Branch: branch, Commit: ev.GetAfter(), Private: ev.GetRepo().GetPrivate()}
	if push.Repo == "" || push.CloneURL == "" {
		return fmt.Errorf("%w: %s %s: no repository", ErrBadPayload, eventType, deliveryID)
	}
	h.Log.Info().Str("repo", push.Repo).Str("branch", branch).Str("commit", push.Commit).Msg("tracked branch moved")
	return h.Branches.Evaluate(ctx, push)
}
