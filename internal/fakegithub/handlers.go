package fakegithub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// paged is a page of a list: the server adds GitHub's Link header when
// there is a next page.
type paged struct {
	body any
	next int // the next page's number, 0 for none
}

// paginate returns the bounds of the page r asks of n items (per_page,
// at most 100, default 30; page from 1) and the next page's number.
func paginate(r *http.Request, n int) (bounds [2]int, next int) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	from := min((page-1)*per, n)
	to := min(from+per, n)
	if to < n {
		next = page + 1
	}
	return [2]int{from, to}, next
}

type handler func(s *Server, params map[string]string, body map[string]any, r *http.Request) (int, any)

// handlers are the operations the fake implements, by operationId; the
// caller holds s.mu.
var handlers = map[string]handler{
	"users/get-authenticated": func(s *Server, _ map[string]string, _ map[string]any, r *http.Request) (int, any) {
		login, _ := r.Context().Value(authorKey{}).(string)
		return http.StatusOK, map[string]any{"login": login, "id": 1000 + len(login), "type": "User", "site_admin": false}
	},
	"apps/create-installation-access-token": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		id, _ := strconv.ParseInt(p["installation_id"], 10, 64)
		if s.installations[id] == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		b := make([]byte, 16)
		rand.Read(b)
		tok := "ghs_" + hex.EncodeToString(b)
		s.tokens[tok] = id
		return http.StatusCreated, map[string]any{"token": tok, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"permissions": s.installations[id].Permissions, "repository_selection": "selected"}
	},
	"apps/get-authenticated": func(s *Server, _ map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		return http.StatusOK, map[string]any{"id": s.AppID, "slug": "basinix", "name": "basinix", "owner": map[string]any{"login": "octo"}}
	},
	"apps/list-installations": func(s *Server, _ map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		var out []any
		for _, inst := range s.installations {
			out = append(out, map[string]any{"id": inst.ID, "account": map[string]any{"login": inst.Account}, "app_id": s.AppID})
		}
		return http.StatusOK, out
	},
	"apps/get-repo-installation": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		for _, inst := range s.installations {
			if s.installationHas(inst.ID, p["owner"]+"/"+p["repo"]) {
				return http.StatusOK, map[string]any{"id": inst.ID, "account": map[string]any{"login": inst.Account}, "app_id": s.AppID}
			}
		}
		return http.StatusNotFound, map[string]any{"message": "Not Found"}
	},
	"apps/list-repos-accessible-to-installation": func(s *Server, _ map[string]string, _ map[string]any, r *http.Request) (int, any) {
		inst := s.installations[s.tokens[tokenOf(r.Header.Get("Authorization"))]]
		var repos []any
		for _, full := range inst.Repos {
			repos = append(repos, map[string]any{"full_name": full, "name": full[len(inst.Account)+1:], "owner": map[string]any{"login": inst.Account}})
		}
		return http.StatusOK, map[string]any{"total_count": len(repos), "repositories": repos}
	},
	"checks/create": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		s.nextID++
		c := &CheckRun{ID: s.nextID, Repo: p["owner"] + "/" + p["repo"], Name: str(b["name"]), HeadSHA: str(b["head_sha"]), Status: "queued", Created: time.Now()}
		s.checkRuns[c.ID] = c
		c.apply(b)
		return http.StatusCreated, c.json()
	},
	"checks/update": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		c := s.checkRun(p)
		if c == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		c.Updates++
		c.apply(b)
		return http.StatusOK, c.json()
	},
	"checks/get": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		if c := s.checkRun(p); c != nil {
			return http.StatusOK, c.json()
		}
		return http.StatusNotFound, map[string]any{"message": "Not Found"}
	},
	"checks/list-for-ref": func(s *Server, p map[string]string, _ map[string]any, r *http.Request) (int, any) {
		var runs []*CheckRun
		for _, c := range s.checkRuns {
			if c.Repo == p["owner"]+"/"+p["repo"] && c.HeadSHA == p["ref"] && (r.URL.Query().Get("check_name") == "" || r.URL.Query().Get("check_name") == c.Name) {
				runs = append(runs, c)
			}
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].ID > runs[j].ID }) // newest first, as GitHub
		page, next := paginate(r, len(runs))
		out := []any{}
		for _, c := range runs[page[0]:page[1]] {
			out = append(out, c.json())
		}
		return http.StatusOK, paged{body: map[string]any{"total_count": len(runs), "check_runs": out}, next: next}
	},
	"pulls/list": func(s *Server, p map[string]string, _ map[string]any, r *http.Request) (int, any) {
		if st := r.URL.Query().Get("state"); st != "" && st != "open" {
			return http.StatusOK, []any{}
		}
		out := []any{}
		for _, pr := range s.pulls {
			if pr["repo"] == p["owner"]+"/"+p["repo"] {
				out = append(out, pullJSON(pr))
			}
		}
		return http.StatusOK, out
	},
	"reactions/create-for-issue-comment": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		id, _ := strconv.ParseInt(p["comment_id"], 10, 64)
		s.reactions[id] = append(s.reactions[id], str(b["content"]))
		return http.StatusCreated, map[string]any{"id": id, "content": b["content"]}
	},
	"repos/get-collaborator-permission-level": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		perm := s.permissions[p["username"]]
		if perm == "" {
			perm = "read"
		}
		// GitHub says "write" for maintain and "read" for triage; the role
		// name tells them apart.
		legacy := map[string]string{"maintain": "write", "triage": "read"}[perm]
		if legacy == "" {
			legacy = perm
		}
		return http.StatusOK, map[string]any{"permission": legacy, "role_name": perm, "user": map[string]any{"login": p["username"]}}
	},
	"pulls/get": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		pr := s.pulls[pullKey(p)]
		if pr == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		return http.StatusOK, pullJSON(pr)
	},
	"repos/get": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		full := p["owner"] + "/" + p["repo"]
		b := s.branches[full]
		if b == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		private := !s.public[strings.ToLower(full)]
		return http.StatusOK, map[string]any{"full_name": full, "name": p["repo"], "default_branch": b[""], "clone_url": s.cloneURLs[full],
			"owner": map[string]any{"login": p["owner"]}, "private": private, "visibility": map[bool]string{true: "private", false: "public"}[private]}
	},
	"repos/get-branch": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		sha := s.branches[p["owner"]+"/"+p["repo"]][p["branch"]]
		if sha == "" || p["branch"] == "" {
			return http.StatusNotFound, map[string]any{"message": "Branch not found"}
		}
		return http.StatusOK, map[string]any{"name": p["branch"], "commit": map[string]any{"sha": sha}}
	},
	"pulls/list-files": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		pr := s.pulls[pullKey(p)]
		if pr == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		out := []any{}
		files, _ := pr["files"].([]string)
		patches, _ := pr["patches"].(map[string]string)
		for _, f := range files {
			file := map[string]any{"filename": f, "status": "modified", "additions": 1, "deletions": 1, "changes": 2}
			if p, ok := patches[f]; ok {
				file["patch"] = p
			}
			out = append(out, file)
		}
		return http.StatusOK, out
	},
	"pulls/merge": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		pr := s.pulls[pullKey(p)]
		switch {
		case pr == nil:
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		case pr["merged"] == true || pr["mergeable"] != true:
			return http.StatusMethodNotAllowed, map[string]any{"message": "Pull Request is not mergeable"}
		case b["sha"] != nil && b["sha"] != pr["head"].(map[string]any)["sha"]:
			return http.StatusConflict, map[string]any{"message": "Head branch was modified. Review and try the merge again."}
		}
		method := str(b["merge_method"])
		if method == "" {
			method = "merge"
		}
		pr["merged"], pr["state"], pr["merge_method"] = true, "closed", method
		s.merges[pullKey(p)]++
		return http.StatusOK, map[string]any{"merged": true, "message": "Pull Request successfully merged", "sha": "0000000000000000000000000000000000000001"}
	},
	"pulls/create-review": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		k := pullKey(p)
		s.reviews[k] = append(s.reviews[k], b)
		s.nextID++
		return http.StatusOK, map[string]any{"id": s.nextID, "body": b["body"], "state": "COMMENTED"}
	},
	"issues/add-labels": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		k := issueKey(p)
		names, _ := b["labels"].([]any)
		for _, n := range names {
			if !contains(s.labels[k], str(n)) {
				s.labels[k] = append(s.labels[k], str(n))
			}
		}
		return http.StatusOK, labelsJSON(s.labels[k])
	},
	"issues/remove-label": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		k := issueKey(p)
		var kept []string
		found := false
		for _, l := range s.labels[k] {
			if l == p["name"] {
				found = true
				continue
			}
			kept = append(kept, l)
		}
		if !found {
			return http.StatusNotFound, map[string]any{"message": "Label does not exist"}
		}
		s.labels[k] = kept
		return http.StatusOK, labelsJSON(kept)
	},
	"issues/list-labels-on-issue": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		return http.StatusOK, labelsJSON(s.labels[issueKey(p)])
	},
	"apps/create-from-manifest": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		m := s.manifests[p["code"]]
		if m == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest"}
		}
		delete(s.manifests, p["code"]) // a code converts once
		slug := strings.ToLower(strings.ReplaceAll(str(m["name"]), " ", "-"))
		return http.StatusCreated, map[string]any{
			"id": s.AppID, "slug": slug, "name": m["name"], "client_id": "Iv1.fakeclientid", "client_secret": "fake-client-secret",
			"webhook_secret": s.WebhookSecret, "pem": s.PrivateKeyPEM, "html_url": "https://github.com/apps/" + slug,
			"permissions": m["default_permissions"], "events": m["default_events"], "owner": map[string]any{"login": "octo"},
		}
	},
	"pulls/request-reviewers": func(s *Server, p map[string]string, b map[string]any, _ *http.Request) (int, any) {
		pr := s.pulls[pullKey(p)]
		if pr == nil {
			return http.StatusNotFound, map[string]any{"message": "Not Found"}
		}
		reviewers, _ := b["reviewers"].([]any)
		author, _ := pr["user"].(map[string]any)
		for _, r := range reviewers {
			// GitHub's answers: the whole request is refused.
			if strings.EqualFold(str(r), str(author["login"])) {
				return http.StatusUnprocessableEntity, map[string]any{"message": "Review cannot be requested from pull request author."}
			}
			if _, collaborator := s.permissions[str(r)]; !collaborator {
				return http.StatusUnprocessableEntity, map[string]any{"message": "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the " + p["owner"] + "/" + p["repo"] + " repository."}
			}
		}
		requested, _ := pr["requested"].([]string)
		for _, r := range reviewers {
			if !slices.Contains(requested, str(r)) {
				requested = append(requested, str(r))
			}
		}
		pr["requested"] = requested
		return http.StatusCreated, pullJSON(pr)
	},
	"issues/create-comment": func(s *Server, p map[string]string, b map[string]any, r *http.Request) (int, any) {
		k := issueKey(p)
		s.nextID++
		s.comments[k] = append(s.comments[k], str(b["body"]))
		s.commentIDs[k] = append(s.commentIDs[k], s.nextID)
		if login, _ := r.Context().Value(authorKey{}).(string); login != "" {
			s.commentAuthors[s.nextID] = login
		}
		return http.StatusCreated, s.commentJSON(s.nextID, str(b["body"]))
	},
	"issues/list-comments": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		k := issueKey(p)
		out := []any{}
		for i, body := range s.comments[k] {
			out = append(out, s.commentJSON(s.commentIDs[k][i], body))
		}
		return http.StatusOK, out
	},
	"pulls/list-reviews": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		out := []any{}
		for i, r := range s.reviews[pullKey(p)] {
			out = append(out, map[string]any{"id": i + 1, "body": r["body"], "state": "COMMENTED", "user": map[string]any{"login": "basinix[bot]", "type": "Bot"}})
		}
		return http.StatusOK, out
	},
	"pulls/check-if-merged": func(s *Server, p map[string]string, _ map[string]any, _ *http.Request) (int, any) {
		if pr := s.pulls[pullKey(p)]; pr != nil && pr["merged"] == true {
			return http.StatusNoContent, nil
		}
		return http.StatusNotFound, map[string]any{"message": "Not Found"}
	},
}

func (s *Server) checkRun(p map[string]string) *CheckRun {
	id, _ := strconv.ParseInt(p["check_run_id"], 10, 64)
	c := s.checkRuns[id]
	if c == nil || c.Repo != p["owner"]+"/"+p["repo"] {
		return nil
	}
	return c
}

// apply takes the fields of a create or update request, as GitHub does:
// annotations are appended, a conclusion completes the run.
func (c *CheckRun) apply(b map[string]any) {
	for k, dst := range map[string]*string{"name": &c.Name, "details_url": &c.DetailsURL, "external_id": &c.ExternalID,
		"status": &c.Status, "conclusion": &c.Conclusion, "started_at": &c.StartedAt, "completed_at": &c.CompletedAt} {
		if v, ok := b[k].(string); ok {
			*dst = v
		}
	}
	if c.Conclusion != "" {
		c.Status = "completed"
		if c.completed.IsZero() {
			c.completed = time.Now()
		}
	}
	c.updated = time.Now()
	if out, ok := b["output"].(map[string]any); ok {
		c.Title, c.Summary, c.Text = str(out["title"]), str(out["summary"]), str(out["text"])
		if as, ok := out["annotations"].([]any); ok {
			for _, a := range as {
				c.Annotations = append(c.Annotations, a.(map[string]any))
			}
		}
	}
	if as, ok := b["actions"].([]any); ok {
		c.Actions = nil
		for _, a := range as {
			c.Actions = append(c.Actions, a.(map[string]any))
		}
	}
}

func (c *CheckRun) json() map[string]any {
	var conclusion any
	if c.Conclusion != "" {
		conclusion = c.Conclusion
	}
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("CR_%d", c.ID), "head_sha": c.HeadSHA, "name": c.Name, "status": c.Status, "conclusion": conclusion,
		"external_id": c.ExternalID, "details_url": c.DetailsURL,
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/check-runs/%d", c.Repo, c.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/runs/%d", c.Repo, c.ID),
		"output":   map[string]any{"title": c.Title, "summary": c.Summary, "text": c.Text, "annotations_count": len(c.Annotations)},
		"app":      map[string]any{"id": 4242}, "pull_requests": []any{}, "check_suite": map[string]any{"id": 1},
	}
}

// pullJSON is a pull request as the API shows it: without the fake's own
// bookkeeping (its repository and changed files).
func pullJSON(pr map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range pr {
		if k != "repo" && k != "files" && k != "requested" && k != "patches" {
			out[k] = v
		}
	}
	reviewers := []any{}
	requested, _ := pr["requested"].([]string)
	for _, r := range requested {
		reviewers = append(reviewers, map[string]any{"login": r, "type": "User"})
	}
	out["requested_reviewers"] = reviewers
	return out
}

func pullKey(p map[string]string) string {
	return fmt.Sprintf("%s/%s#%s", p["owner"], p["repo"], p["pull_number"])
}

func issueKey(p map[string]string) string {
	return fmt.Sprintf("%s/%s#%s", p["owner"], p["repo"], p["issue_number"])
}

func labelsJSON(l []string) []any {
	out := []any{}
	for _, n := range l {
		out = append(out, map[string]any{"name": n})
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// commentJSON is a comment the App made, as the API shows it.
// commentJSON is a comment as GitHub shows it: the App's, or a user's.
// The caller holds s.mu.
func (s *Server) commentJSON(id int64, body string) map[string]any {
	if login := s.commentAuthors[id]; login != "" {
		return map[string]any{"id": id, "body": body, "user": map[string]any{"login": login, "type": "User"}}
	}
	return map[string]any{"id": id, "body": body, "user": map[string]any{"login": "basinix[bot]", "type": "Bot"},
		"performed_via_github_app": map[string]any{"id": 4242, "slug": "basinix"}}
}
