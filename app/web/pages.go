package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// The web pages are server-rendered templates over one embedded
// stylesheet; every page's data is also its JSON (Accept:
// application/json, or the path with .json), the same data the page
// shows.

//go:embed *.html basinix.css
var webFiles embed.FS

// verdictOrder puts what needs a reviewer's eyes first.
var verdictOrder = map[report.Verdict]int{
	report.NewlyFailing: 0, report.NewFailing: 1, report.EvalBroken: 2, report.StillFailing: 3, report.Pending: 4,
	report.NewlySucceeding: 5, report.NewSucceeding: 6, report.StillSucceeding: 7, report.Removed: 8,
	report.SkippedBroken: 9, report.SkippedUnsupported: 10,
}

// statusClass maps what basinix says of a build, a verdict or a revision
// to one status of the pages' language: success, failure, still-failing,
// dependency-failed, timeout, queued, building, skipped, cancelled, or
// neutral.
func statusClass(s string) string {
	switch s {
	case "success", "newly-succeeding", "new-succeeding", "still-succeeding", "done", "open":
		return "success"
	case "failure", "failed", "newly-failing", "new-failing", "eval-broken":
		return "failure"
	case "still-failing":
		return "still-failing"
	case "dependency-failed":
		return "dependency-failed"
	case "timeout":
		return "timeout"
	case "pending", "queued", "unknown":
		return "queued"
	case "evaluating", "building", "publishing":
		return "building"
	case "skipped-broken", "skipped-unsupported":
		return "skipped"
	case "cancelled", "superseded", "closed":
		return "cancelled"
	case "merged":
		return "merged"
	}
	return "neutral"
}

var statusIcons = map[string]string{
	"success": "✔", "failure": "✘", "still-failing": "⚠", "dependency-failed": "⛓", "timeout": "⏱", "queued": "⏳",
	"building": "⚙", "skipped": "⏭", "cancelled": "⊘", "merged": "⇲", "neutral": "•",
}

// buildName is a derivation's name on the build page's URL: its store
// file name without .drv ("HASH-hello-2.12").
func buildName(drv string) string { return strings.TrimSuffix(filepath.Base(drv), ".drv") }

func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"short":   report.Short,
	"drvName": report.DrvName,
	"base":    filepath.Base,
	"path":    url.PathEscape,
	"query":   url.QueryEscape,
	"size":    report.SizeText,
	"delta":   report.SignedBytes,
	"bytes":   report.HumanBytes,
	"join":    strings.Join,
	"status":  func(v any) string { return statusClass(fmt.Sprint(v)) },
	"icon":    func(v any) string { return statusIcons[statusClass(fmt.Sprint(v))] },
	"build":   buildName,
	"age":     age,
	"time":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"dur":     func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
	// jobCheck is a job's check run name (report.JobCheckName).
	"jobCheck": func(rep *report.Report, job, system string) string {
		return report.JobCheckName(job, system, len(rep.Systems))
	},
	"attrs": func(s *report.System) []string {
		names := make([]string, 0, len(s.Attrs))
		for n := range s.Attrs {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			a, b := verdictOrder[s.Attrs[names[i]].Verdict], verdictOrder[s.Attrs[names[j]].Verdict]
			if a != b {
				return a < b
			}
			return names[i] < names[j]
		})
		return names
	},
	// diffLines splits a patch into its lines with their kind.
	"diffLines": func(patch string) []diffLine {
		var out []diffLine
		for _, l := range strings.Split(patch, "\n") {
			kind := "ctx"
			switch {
			case strings.HasPrefix(l, "@@"):
				kind = "hunk"
			case strings.HasPrefix(l, "+"):
				kind = "add"
			case strings.HasPrefix(l, "-"):
				kind = "del"
			}
			out = append(out, diffLine{kind, l})
		}
		return out
	},
}).ParseFS(webFiles, "*.html"))

type diffLine struct{ Kind, Text string }

// view is what every page's template gets: the page's data (its JSON) and
// who looks.
type view struct {
	Title string
	User  string // the logged-in user, "" for none
	CSRF  string
	Login bool // GitHub login is configured
	Flash string
	Page  any
	// Next is this page, where a login comes back to.
	Next string
}

// wantsJSON says whether the request asks for a page's JSON; name is the
// last path element without ".json".
func wantsJSON(r *http.Request, last string) (name string, asJSON bool) {
	if n, ok := strings.CutSuffix(last, ".json"); ok {
		return n, true
	}
	return last, strings.Contains(r.Header.Get("Accept"), "application/json")
}

// page answers with a page: its JSON or its HTML.
func (s *Server) page(w http.ResponseWriter, r *http.Request, tmpl, title string, data any, asJSON bool) {
	if asJSON {
		b, err := json.Marshal(data)
		if err != nil {
			s.log.Error().Err(err).Str("page", tmpl).Msg("page JSON")
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.red.Bytes(b))
		return
	}
	v := view{Title: title, Page: data, Login: s.cfg.OAuthClientID != "", Flash: r.URL.Query().Get("flash"), Next: r.URL.RequestURI()}
	if sess := s.session(r); sess != nil {
		v.User, v.CSRF = sess.Login, sess.CSRF
	}
	s.render(w, tmpl, v)
}

func (s *Server) render(w http.ResponseWriter, page string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, page, data); err != nil {
		s.log.Error().Err(err).Str("page", page).Msg("rendering")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(s.red.Bytes(b.Bytes()))
}

// message answers with a short page saying what went wrong.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	w.WriteHeader(status)
	v := view{Title: title, Page: text, Login: s.cfg.OAuthClientID != ""}
	if sess := s.session(r); sess != nil {
		v.User, v.CSRF = sess.Login, sess.CSRF
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "message.html", v); err != nil {
		s.log.Error().Err(err).Msg("rendering a message")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(s.red.Bytes(b.Bytes()))
}

func (s *Server) serveCSS(w http.ResponseWriter, r *http.Request) {
	b, _ := webFiles.ReadFile("basinix.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// prRow is one PR on the index and repository pages.
type prRow struct {
	Repo     string         `json:"repo"`
	PR       int            `json:"pr"`
	Title    string         `json:"title"`
	Author   string         `json:"author"`
	State    string         `json:"state"` // open, merged, closed
	Review   string         `json:"review"`
	Head     string         `json:"head"`
	Updated  time.Time      `json:"updated"`
	Age      string         `json:"age"`
	Systems  []systemCounts `json:"systems"`
	Worst    string         `json:"worst"` // the status the row shows
	Revision int64          `json:"revision"`
	// Reviewed is the newest revision with verdicts (0: none yet).
	Reviewed int64 `json:"reviewed,omitempty"`
}

// systemCounts are a reviewed revision's verdicts on one system, newly
// failing first.
type systemCounts struct {
	System          string `json:"system"`
	NewlyFailing    int    `json:"newlyFailing"`
	NewFailing      int    `json:"newFailing"`
	EvalBroken      int    `json:"evalBroken"`
	StillFailing    int    `json:"stillFailing"`
	Pending         int    `json:"pending"`
	NewlySucceeding int    `json:"newlySucceeding"`
	NewSucceeding   int    `json:"newSucceeding"`
	StillSucceeding int    `json:"stillSucceeding"`
}

func (c systemCounts) worst() string {
	switch {
	case c.NewlyFailing+c.NewFailing+c.EvalBroken > 0:
		return "failure"
	case c.Pending > 0:
		return "queued"
	case c.StillFailing > 0:
		return "still-failing"
	}
	return "success"
}

// prRows reads the PRs of repo ("" all) with their counts.
func (s *Server) prRows(r *http.Request, repo string, limit int) ([]prRow, error) {
	sums, err := s.st.PRSummaries(r.Context(), repo, limit)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, p := range sums {
		if p.Reviewed != 0 {
			ids = append(ids, p.Reviewed)
		}
	}
	counts, err := s.st.VerdictCounts(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	rows := make([]prRow, 0, len(sums))
	for _, p := range sums {
		row := prRow{Repo: p.Repo, PR: p.PR, Title: p.Title, Author: p.Author, State: "open", Review: p.State, Head: p.Head,
			Updated: p.Updated, Age: age(p.Updated), Revision: p.Revision, Reviewed: p.Reviewed, Worst: statusClass(p.State)}
		switch {
		case p.Merged:
			row.State = "merged"
		case !p.Closed.IsZero():
			row.State = "closed"
		}
		bySystem := counts[p.Reviewed]
		systems := make([]string, 0, len(bySystem))
		for sys := range bySystem {
			systems = append(systems, sys)
		}
		sort.Strings(systems)
		for _, sys := range systems {
			n := bySystem[sys]
			c := systemCounts{System: sys, NewlyFailing: n["newly-failing"], NewFailing: n["new-failing"], EvalBroken: n["eval-broken"],
				StillFailing: n["still-failing"], Pending: n["pending"], NewlySucceeding: n["newly-succeeding"], NewSucceeding: n["new-succeeding"],
				StillSucceeding: n["still-succeeding"]}
			row.Systems = append(row.Systems, c)
		}
		// The row's status: the review's when it runs or failed, else its
		// verdicts' worst.
		if p.State == store.Done && len(row.Systems) > 0 {
			row.Worst = "success"
			for _, c := range row.Systems {
				if w := c.worst(); w == "failure" || w != "success" && row.Worst == "success" {
					row.Worst = w
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// readable keeps the rows of repositories the request may see, asking
// GitHub at most once per repository.
func (s *Server) readable(r *http.Request, rows []prRow) []prRow {
	reads := s.reads(r, s.session(r))
	return slices.DeleteFunc(rows, func(row prRow) bool { return !reads(row.Repo) })
}

type indexPage struct {
	Repos    []string     `json:"repos"`
	Branches []branchRow  `json:"branches,omitempty"`
	PRs      []prRow      `json:"prs"`
	Query    string       `json:"query,omitempty"`
	Matches  []searchAttr `json:"matches,omitempty"`
}

type searchAttr struct {
	store.AttrHit
	Where string `json:"where"` // the page that shows it
}

// serveIndex lists the repositories and the PRs under review, most
// recently active first; ?q= searches PRs (number, title, author) and
// attributes.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if !s.canRead(w, r) {
		return
	}
	_, asJSON := wantsJSON(r, "")
	if r.URL.Path == "/index.json" {
		asJSON = true
	}
	rows, err := s.prRows(r, "", 1000)
	if err != nil {
		s.log.Error().Err(err).Msg("index page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	rows = s.readable(r, rows)
	p := indexPage{PRs: rows, Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	repos := map[string]bool{}
	for _, row := range rows {
		repos[row.Repo] = true
	}
	if p.Query != "" {
		q := strings.ToLower(strings.TrimPrefix(p.Query, "#"))
		kept := p.PRs[:0]
		for _, row := range p.PRs {
			if strings.Contains(strings.ToLower(row.Title), q) || strings.Contains(strings.ToLower(row.Author), q) ||
				fmt.Sprint(row.PR) == q || strings.Contains(strings.ToLower(row.Repo), q) {
				kept = append(kept, row)
			}
		}
		p.PRs = kept
		hits, err := s.st.SearchAttrs(r.Context(), p.Query, 200)
		if err != nil {
			s.log.Error().Err(err).Msg("search")
		}
		for _, h := range hits {
			if !repos[h.Repo] {
				continue // a repository the request may not see
			}
			where := fmt.Sprintf("/pr/%s/%d", h.Repo, h.PR)
			if h.Branch != "" {
				where = "/branch/" + h.Repo + "/" + url.PathEscape(h.Branch)
			}
			p.Matches = append(p.Matches, searchAttr{h, where})
		}
	}
	if p.Query == "" {
		p.Branches = s.branchRows(r, "")
		for _, b := range p.Branches {
			repos[b.Repo] = true
		}
	}
	for repo := range repos {
		p.Repos = append(p.Repos, repo)
	}
	sort.Strings(p.Repos)
	title := "pull requests under review"
	if p.Query != "" {
		title = "search: " + p.Query
	}
	s.page(w, r, "index.html", title, p, asJSON)
}

type repoPage struct {
	Repo        string      `json:"repo"`
	Open        []prRow     `json:"open"`
	Closed      []prRow     `json:"closed"`
	Branches    []branchRow `json:"branches"`
	Evaluations []evalRow   `json:"evaluations"`
	GitHubURL   string      `json:"githubURL"`
}

type branchRow struct {
	Repo   string    `json:"repo"`
	Branch string    `json:"branch"`
	Tip    string    `json:"tip"`
	Title  string    `json:"title"`
	Seen   time.Time `json:"seen"`
	State  string    `json:"state,omitempty"` // the latest push revision's
}

type evalRow struct {
	report.EvalInfo
	Where string `json:"where"`
}

// serveRepo shows a repository: its open PRs, its tracked branches with
// their tips, its recent evaluations.
func (s *Server) serveRepo(w http.ResponseWriter, r *http.Request) {
	name, asJSON := wantsJSON(r, r.PathValue("repo"))
	repo := r.PathValue("owner") + "/" + name
	if !s.canRead(w, r, repo) {
		return
	}
	rows, err := s.prRows(r, repo, 1000)
	if err != nil {
		s.log.Error().Err(err).Msg("repository page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(rows) == 0 {
		if tips, _ := s.st.Branches(r.Context()); !containsRepo(tips, repo) {
			s.message(w, r, http.StatusNotFound, "Not found", "basinix has reviewed nothing of this repository.")
			return
		}
	}
	p := repoPage{Repo: repo, GitHubURL: strings.TrimSuffix(s.cfg.GitHubURL, "/") + "/" + repo}
	for _, row := range rows {
		if row.State == "open" {
			p.Open = append(p.Open, row)
		} else if len(p.Closed) < 50 {
			p.Closed = append(p.Closed, row)
		}
	}
	p.Branches = s.branchRows(r, repo)
	// Recent evaluations: those of the newest reviewed revisions.
	for _, row := range rows {
		if len(p.Evaluations) >= 20 {
			break
		}
		if row.Reviewed == 0 {
			continue
		}
		rev, err := s.st.Revision(r.Context(), row.Reviewed)
		if err != nil || len(rev.Report) == 0 {
			continue
		}
		var rep struct {
			Evaluations []report.EvalInfo `json:"evaluations"`
		}
		if json.Unmarshal(rev.Report, &rep) == nil {
			for _, e := range rep.Evaluations {
				p.Evaluations = append(p.Evaluations, evalRow{e, fmt.Sprintf("/pr/%s/%d", repo, row.PR)})
			}
		}
	}
	s.page(w, r, "repo.html", repo, p, asJSON)
}

// branchRows are the tracked branches of repo ("" every readable one)
// with their tips and latest pushes' states.
func (s *Server) branchRows(r *http.Request, repo string) []branchRow {
	branches, err := s.st.Branches(r.Context())
	if err != nil {
		s.log.Error().Err(err).Msg("branches")
	}
	var out []branchRow
	reads := s.reads(r, s.session(r))
	for _, b := range branches {
		if repo != "" && b.Repo != repo || repo == "" && !reads(b.Repo) {
			continue
		}
		row := branchRow{Repo: b.Repo, Branch: b.Branch}
		if tip, err := s.st.LastTip(r.Context(), b.Repo, b.Branch); err == nil && tip != nil {
			row.Tip, row.Title, row.Seen = tip.Commit, tip.Title, tip.Seen
		}
		if revs, err := s.st.BranchRevisions(r.Context(), b.Repo, b.Branch, 1); err == nil && len(revs) > 0 {
			row.State = revs[0].State
		}
		out = append(out, row)
	}
	return out
}

func containsRepo(bs []store.BranchRef, repo string) bool {
	for _, b := range bs {
		if b.Repo == repo {
			return true
		}
	}
	return false
}
