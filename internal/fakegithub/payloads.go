package fakegithub

import (
	"encoding/json"
	"fmt"
	"strconv"
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
	Private      bool   // the repository is private
	Title        string // the PR's title (default the payload's)
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
	repo["full_name"], repo["name"], repo["clone_url"], repo["private"] = pr.Repo, repoName, pr.CloneURL, pr.Private
	repo["owner"].(map[string]any)["login"] = owner
	pull := p["pull_request"].(map[string]any)
	pull["number"], pull["draft"] = pr.Number, false
	p["number"] = pr.Number
	pull["state"] = "open"
	if action == "closed" {
		pull["state"] = "closed"
	}
	if pr.Title != "" {
		pull["title"] = pr.Title
	}
	pull["head"].(map[string]any)["sha"] = pr.Head
	pull["base"].(map[string]any)["ref"] = pr.Base
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Repo says which repository and installation a rewritten payload is
// about.
type Repo struct {
	Installation int64
	FullName     string // owner/name
	CloneURL     string
}

// Event loads GitHub's real payload name, rewrites its repository and
// installation to be repo's, then lets edit change the rest.
func Event(t testing.TB, name string, repo Repo, edit func(p map[string]any)) []byte {
	t.Helper()
	p := Payload(t, name)
	owner, short, _ := strings.Cut(repo.FullName, "/")
	p["installation"] = map[string]any{"id": repo.Installation, "account": map[string]any{"login": owner}}
	if r, ok := p["repository"].(map[string]any); ok {
		r["full_name"], r["name"], r["clone_url"], r["default_branch"] = repo.FullName, short, repo.CloneURL, "master"
		r["owner"].(map[string]any)["login"] = owner
	}
	if edit != nil {
		edit(p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CommentEvent is GitHub's real issue_comment payload rewritten to be a new
// comment (id) by user (of userType, "User" or "Bot") on PR pr of repo.
func CommentEvent(t testing.TB, repo Repo, pr int, id int64, user, userType, body string) []byte {
	t.Helper()
	return Event(t, "issue_comment.created.0", repo, func(p map[string]any) {
		issue := p["issue"].(map[string]any)
		issue["number"] = pr
		issue["pull_request"] = map[string]any{"url": "https://api.github.com/repos/" + repo.FullName + "/pulls/" + strconv.Itoa(pr)}
		c := p["comment"].(map[string]any)
		c["id"], c["body"] = id, body
		c["user"].(map[string]any)["login"], c["user"].(map[string]any)["type"] = user, userType
	})
}

// PushEvent is GitHub's real push payload rewritten to be "branch of repo
// moved to commit".
func PushEvent(t testing.TB, repo Repo, branch, commit string) []byte {
	t.Helper()
	return Event(t, "push.0", repo, func(p map[string]any) {
		p["ref"], p["after"], p["deleted"] = "refs/heads/"+branch, commit, false
	})
}

// MergeGroupEvent is a merge_group webhook of repo: the merge queue made
// commit head (on refs/heads/gh-readonly-queue/BASE/pr-PR-HEAD) of PR pr on
// top of base's commit baseSHA. The examples GitHub's webhooks package
// publishes have no merge_group event, so its shape is written from
// GitHub's documented payload (action, merge_group {head_sha, head_ref,
// base_sha, base_ref, head_commit}, repository, installation, sender).
func MergeGroupEvent(t testing.TB, repo Repo, action string, pr int, head, base, baseSHA string) []byte {
	t.Helper()
	return Event(t, "pull_request.opened.0", repo, func(p map[string]any) {
		delete(p, "pull_request")
		delete(p, "number")
		p["action"] = action
		p["merge_group"] = map[string]any{
			"head_sha":    head,
			"head_ref":    fmt.Sprintf("refs/heads/gh-readonly-queue/%s/pr-%d-%s", base, pr, head),
			"base_sha":    baseSHA,
			"base_ref":    "refs/heads/" + base,
			"head_commit": map[string]any{"id": head, "tree_id": head, "message": fmt.Sprintf("Merge pull request #%d", pr), "timestamp": "2024-01-01T00:00:00Z"},
		}
	})
}
