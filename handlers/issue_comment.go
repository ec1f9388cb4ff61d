package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// CommandRequest is a PR comment's commands, or its errors.
type CommandRequest struct {
	InstallationID int64
	Repo           string
	PR             int
	CommentID      int64
	User           string
	// Closed and Merged say what GitHub said of the PR when the comment
	// came: a closed PR is not reviewed again.
	Closed, Merged bool
	Commands       []Command
	// Errors are what could not be read as commands, one message each.
	Errors []string
	// Via is how the commands came: "comment" (CommentID is the comment),
	// or "web" (a logged-in user's button; CommentID 0).
	Via string
}

// Commands is what the issue_comment handler asks of the pipeline.
type Commands interface {
	Commands(ctx context.Context, req CommandRequest) error
}

// IssueCommentHandler reads commands in new comments on pull requests.
// Edited and deleted comments, comments on issues, and comments by bots
// (the App itself among them) are ignored.
type IssueCommentHandler struct {
	Commands Commands
	Name     string // the command name: "@Name rebuild"
	Log      zerolog.Logger
}

// Handles implements githubapp.EventHandler.
func (h *IssueCommentHandler) Handles() []string { return []string{"issue_comment"} }

// Handle implements githubapp.EventHandler.
func (h *IssueCommentHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var ev struct {
		Action string `json:"action"`
		Issue  struct {
			Number      int    `json:"number"`
			State       string `json:"state"`
			PullRequest *struct {
				MergedAt *string `json:"merged_at"`
			} `json:"pull_request"`
		} `json:"issue"`
		Comment struct {
			ID   int64  `json:"id"`
			Body string `json:"body"`
			User struct {
				Login string `json:"login"`
				Type  string `json:"type"`
			} `json:"user"`
			ViaApp *json.RawMessage `json:"performed_via_github_app"`
		} `json:"comment"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrBadPayload, eventType, deliveryID, err)
	}
	if ev.Action != "created" || ev.Issue.PullRequest == nil {
		return nil
	}
	user := ev.Comment.User
	if user.Type == "Bot" || strings.HasSuffix(user.Login, "[bot]") || ev.Comment.ViaApp != nil && string(*ev.Comment.ViaApp) != "null" {
		return nil
	}
	cmds, errs := ParseCommands(ev.Comment.Body, h.Name)
	if len(cmds) == 0 && len(errs) == 0 {
		return nil
	}
	if ev.Repository.FullName == "" || ev.Installation.ID == 0 || ev.Comment.ID == 0 {
		return fmt.Errorf("%w: %s %s: no repository, installation or comment", ErrBadPayload, eventType, deliveryID)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	h.Log.Info().Str("repo", ev.Repository.FullName).Int("pr", ev.Issue.Number).Str("user", user.Login).
		Int("commands", len(cmds)).Int("errors", len(errs)).Msg("comment commands")
	return h.Commands.Commands(ctx, CommandRequest{InstallationID: ev.Installation.ID, Repo: ev.Repository.FullName, PR: ev.Issue.Number,
		CommentID: ev.Comment.ID, User: user.Login, Commands: cmds, Errors: msgs, Via: "comment",
		Closed: ev.Issue.State == "closed", Merged: ev.Issue.PullRequest.MergedAt != nil})
}
