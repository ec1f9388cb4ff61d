package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// PullRequest is a PR head to review.
type PullRequest struct {
	InstallationID int64
	Repo           string // owner/name
	CloneURL       string
	Number         int
	HeadSHA        string
	BaseRef        string
	// Author is the PR's author's login; Title its title.
	Author, Title string
	// Private says the repository is private.
	Private bool
}

// Reviews is what the pull_request handler asks of the pipeline.
type Reviews interface {
	// Review queues a review of the PR's head, superseding older heads.
	Review(ctx context.Context, pr PullRequest) error
	// Closed withdraws a closed PR's work and records it closed (merged or not).
	Closed(ctx context.Context, repo string, number int, merged bool) error
	// Withdraw cancels the PR's queued and running work.
	Withdraw(ctx context.Context, repo string, number int) error
}

// PullRequestHandler handles pull_request events: opened, reopened,
// synchronize and ready_for_review queue a review (draft PRs only when
// Drafts is set); closed withdraws the PR's work; other actions are
// ignored.
type PullRequestHandler struct {
	Reviews Reviews
	Drafts  bool
	Log     zerolog.Logger
}

// Handles implements githubapp.EventHandler.
func (h *PullRequestHandler) Handles() []string { return []string{"pull_request"} }

// Handle implements githubapp.EventHandler.
func (h *PullRequestHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev github.PullRequestEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	pr, repo := ev.GetPullRequest(), ev.GetRepo()
	if pr == nil || repo == nil || ev.GetInstallation().GetID() == 0 {
		return fmt.Errorf("%w: %s %s: no pull request, repository or installation", ErrBadPayload, eventType, deliveryID)
	}
	log := h.Log.With().Str("repo", repo.GetFullName()).Int("pr", pr.GetNumber()).Str("action", ev.GetAction()).Logger()
	switch ev.GetAction() {
	case "opened", "reopened", "synchronize", "ready_for_review":
		if pr.GetDraft() && !h.Drafts {
			log.Info().Msg("draft pull request: not reviewed")
			return nil
		}
		if pr.GetState() == "closed" {
			return nil
		}
		req := PullRequest{
			InstallationID: ev.GetInstallation().GetID(),
			Repo:           repo.GetFullName(),
			CloneURL:       repo.GetCloneURL(),
			Number:         pr.GetNumber(),
			HeadSHA:        pr.GetHead().GetSHA(),
			BaseRef:        pr.GetBase().GetRef(),
			Author:         pr.GetUser().GetLogin(),
			Title:          pr.GetTitle(),
			Private:        repo.GetPrivate(),
		}
		if req.HeadSHA == "" || req.BaseRef == "" || req.CloneURL == "" {
			return fmt.Errorf("%w: %s %s: no head, base or clone URL", ErrBadPayload, eventType, deliveryID)
		}
		log.Info().Str("head", req.HeadSHA).Msg("review queued")
		return h.Reviews.Review(ctx, req)
	case "closed":
		log.Info().Msg("pull request closed: its work is withdrawn")
		return h.Reviews.Closed(ctx, repo.GetFullName(), pr.GetNumber(), pr.GetMerged())
	}
	return nil
}
