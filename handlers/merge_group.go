package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// MergeGroupHandler handles merge_group events from GitHub's merge queue:
// checks_requested queues a review of the group's head commit against the
// branch it merges into, so that the required check runs (the eval check
// run, a flake's job check runs) are reported on it; what the PR already
// built is the same derivations, remembered, and not built again.
// destroyed (merged, or taken out of the queue) withdraws the work.
type MergeGroupHandler struct {
	Reviews Reviews
	Log     zerolog.Logger
}

// queueRef is a merge group's head ref: refs/heads/gh-readonly-queue/BASE/pr-N-SHA.
var queueRef = regexp.MustCompile(`^refs/heads/gh-readonly-queue/.+/pr-([0-9]+)-[0-9a-f]+$`)

// Handles implements githubapp.EventHandler.
func (h *MergeGroupHandler) Handles() []string { return []string{"merge_group"} }

// Handle implements githubapp.EventHandler.
func (h *MergeGroupHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.MergeGroupEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	mg, repo := ev.GetMergeGroup(), ev.GetRepo()
	if mg == nil || repo == nil || ev.GetInstallation().GetID() == 0 {
		return fmt.Errorf("%w: %s %s: no merge group, repository or installation", ErrBadPayload, eventType, deliveryID)
	}
	m := queueRef.FindStringSubmatch(mg.GetHeadRef())
	base, ok := strings.CutPrefix(mg.GetBaseRef(), "refs/heads/")
	if m == nil || !ok || mg.GetHeadSHA() == "" || repo.GetCloneURL() == "" {
		return fmt.Errorf("%w: %s %s: head ref %q, base ref %q: not a merge queue's", ErrBadPayload, eventType, deliveryID, mg.GetHeadRef(), mg.GetBaseRef())
	}
	pr, _ := strconv.Atoi(m[1])
	log := h.Log.With().Str("repo", repo.GetFullName()).Int("pr", pr).Str("merge_group", mg.GetHeadSHA()).Str("action", ev.GetAction()).Logger()
	switch ev.GetAction() {
	case "checks_requested":
		log.Info().Msg("merge group: review queued")
		return h.Reviews.Review(ctx, PullRequest{
			InstallationID: ev.GetInstallation().GetID(), Repo: repo.GetFullName(), CloneURL: repo.GetCloneURL(),
			Number: pr, HeadSHA: mg.GetHeadSHA(), BaseRef: base,
		})
	case "destroyed":
		log.Info().Msg("merge group destroyed: its work is withdrawn")
		return h.Reviews.Withdraw(ctx, repo.GetFullName(), pr)
	}
	return nil
}
