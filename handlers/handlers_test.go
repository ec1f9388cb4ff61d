package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/internal/fakegithub"
)

// recorder notes what the handlers ask for.
type recorder struct{ calls []string }

func (r *recorder) Review(_ context.Context, pr PullRequest) error {
	r.calls = append(r.calls, fmt.Sprintf("review %s#%d", pr.Repo, pr.Number))
	return nil
}
func (r *recorder) Closed(_ context.Context, repo string, n int, merged bool) error {
	r.calls = append(r.calls, fmt.Sprintf("withdraw %s#%d", repo, n))
	return nil
}
func (r *recorder) Withdraw(_ context.Context, repo string, n int) error {
	r.calls = append(r.calls, fmt.Sprintf("withdraw %s#%d", repo, n))
	return nil
}
func (r *recorder) Rerun(_ context.Context, repo, head string, rebuild bool) error {
	r.calls = append(r.calls, fmt.Sprintf("rerun rebuild=%v %s", rebuild, repo))
	return nil
}
func (r *recorder) Evaluate(_ context.Context, p BranchPush) error {
	r.calls = append(r.calls, "evaluate "+p.Branch)
	return nil
}
func (r *recorder) Commands(_ context.Context, req CommandRequest) error {
	r.calls = append(r.calls, fmt.Sprintf("commands %d", len(req.Commands)))
	return nil
}
func (r *recorder) Installed(_ context.Context, id int64) error {
	r.calls = append(r.calls, fmt.Sprintf("installed %d", id))
	return nil
}

// Each real payload leads to what its event and action mean, and nothing
// for the actions basinix ignores.
func TestHandlersOnRealPayloads(t *testing.T) {
	tests := []struct {
		payload string
		event   string
		want    []string
	}{
		{"pull_request.opened.0", "pull_request", []string{"review *"}},
		{"pull_request.synchronize.22", "pull_request", []string{"review *"}},
		{"pull_request.reopened.18", "pull_request", []string{"review *"}},
		{"pull_request.closed.3", "pull_request", []string{"withdraw *"}},
		{"pull_request.labeled.8", "pull_request", nil},
		{"pull_request.assigned.1", "pull_request", nil},
		{"check_suite.rerequested.7", "check_suite", []string{"rerun rebuild=false *"}},
		{"check_suite.completed.0", "check_suite", nil},
		{"check_run.rerequested.7", "check_run", []string{"rerun rebuild=false *"}},
		{"check_run.requested_action.6", "check_run", nil}, // an action of another App
		{"check_run.completed.1", "check_run", nil},
		{"installation.created.1", "installation", []string{"installed *"}},
		{"installation.deleted.0", "installation", nil},
		{"installation_repositories.added.0", "installation_repositories", []string{"installed *"}},
		{"issue_comment.created.0", "issue_comment", nil}, // on an issue, not a PR
		{"issue_comment.created.1", "issue_comment", []string{"commands 1"}},
		{"issue_comment.edited.7", "issue_comment", nil},
		{"issue_comment.deleted.5", "issue_comment", nil},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			rec := &recorder{}
			hs := []interface {
				Handles() []string
				Handle(context.Context, string, string, []byte) error
			}{
				&PullRequestHandler{Reviews: rec, Drafts: true, Log: zerolog.Nop()},
				&CheckHandler{Reruns: rec, Log: zerolog.Nop()},
				&InstallationHandler{Installations: rec, Log: zerolog.Nop()},
				&IssueCommentHandler{Commands: rec, Name: "basinix", Log: zerolog.Nop()},
			}
			payload := fakegithub.Payload(t, tt.payload)
			if _, ok := payload["installation"]; !ok { // some examples are repository webhooks
				payload["installation"] = map[string]any{"id": 1}
			}
			if c, ok := payload["comment"].(map[string]any); ok {
				// Every comment asks for something; only a new one on a PR counts.
				c["body"] = "@basinix rebuild"
				if tt.payload != "issue_comment.created.0" {
					payload["issue"].(map[string]any)["pull_request"] = map[string]any{"url": "https://api.github.com/repos/o/r/pulls/1"}
				}
			}
			body, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				for _, e := range h.Handles() {
					if e == tt.event {
						if err := h.Handle(context.Background(), tt.event, "d", body); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			// A want ending in "*" is a prefix (repository names differ
			// between the examples).
			ok := len(rec.calls) == len(tt.want)
			for i := 0; ok && i < len(tt.want); i++ {
				w := tt.want[i]
				ok = rec.calls[i] == w || strings.HasSuffix(w, "*") && strings.HasPrefix(rec.calls[i], strings.TrimSuffix(w, "*"))
			}
			if !ok {
				t.Errorf("calls %q, want %q", rec.calls, tt.want)
			}
		})
	}
}

// Pushes: the tracked branch is evaluated, others and deletions are not.
func TestPushHandler(t *testing.T) {
	p := fakegithub.Payload(t, "push.0")
	rec := &recorder{}
	h := &PushHandler{Branches: rec, Tracked: []string{"main"}, Log: zerolog.Nop()}
	for _, tc := range []struct {
		ref     string
		deleted bool
		want    []string
	}{
		{"refs/heads/main", false, []string{"evaluate main"}},
		{"refs/heads/feature", false, nil},
		{"refs/tags/v1", false, nil},
		{"refs/heads/main", true, nil},
	} {
		rec.calls = nil
		p["ref"], p["deleted"], p["after"] = tc.ref, tc.deleted, "0123456789abcdef0123456789abcdef01234567"
		body, _ := json.Marshal(p)
		if err := h.Handle(context.Background(), "push", "d", body); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, rec.calls); diff != "" {
			t.Errorf("%s deleted=%v (-want +got):\n%s", tc.ref, tc.deleted, diff)
		}
	}
}

// A body that is not the event it claims is ErrBadPayload.
func TestBadPayloads(t *testing.T) {
	rec := &recorder{}
	for _, body := range []string{`{"action": "opened", "pull_request": 7}`, `{"action": "opened"}`, `[]`} {
		err := (&PullRequestHandler{Reviews: rec, Log: zerolog.Nop()}).Handle(context.Background(), "pull_request", "d", []byte(body))
		if !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v, want ErrBadPayload", body, err)
		}
	}
	if len(rec.calls) != 0 {
		t.Errorf("calls: %v", rec.calls)
	}
}
