package fakegithub

import (
	"encoding/json"
	"strings"
	"testing"
)

// PR says which pull request a rewritten payload is about.
type PR struct {
	Installation int64
	Repo         string // owner/name
	CloneURL     string
	Number       int
	Head, Base   string // head commit, base branch
}

// PullRequestEvent is GitHub's real pull_request payload for action
// (opened, synchronize, reopened, closed, labeled, ...) rewritten to be
// about pr.
func PullRequestEvent(t testing.TB, action string, pr PR) []byte {
	t.Helper()
	name := map[string]string{
		"opened": "pull_request.opened.0", "synchronize": "pull_request.synchronize.22", "reopened": "pull_request.reopened.18",
		"closed": "pull_request.closed.3", "labeled": "pull_request.labeled.8", "ready_for_review": "pull_request.ready_for_review.15",
	}[action]
	if name == "" {
		t.Fatalf("no example payload for pull_request %s", action)
	}
	p := Payload(t, name)
	p["action"] = action
	p["installation"] = map[string]any{"id": pr.Installation}
	owner, repoName, _ := strings.Cut(pr.Repo, "/")
	repo := p["repository"].(map[string]any)
	repo["full_name"], repo["name"], repo["clone_url"] = pr.Repo, repoName, pr.CloneURL
	repo["owner"].(map[string]any)["login"] = owner
	pull := p["pull_request"].(map[string]any)
	pull["number"], pull["draft"] = pr.Number, false
	p["number"] = pr.Number
	pull["state"] = "open"
	if action == "closed" {
		pull["state"] = "closed"
	}
	pull["head"].(map[string]any)["sha"] = pr.Head
	pull["base"].(map[string]any)["ref"] = pr.Base
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
