package app

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

//go:embed web/*.html
var webFiles embed.FS

// verdictOrder puts what needs a reviewer's eyes first.
var verdictOrder = map[report.Verdict]int{
	report.NewlyFailing: 0, report.NewFailing: 1, report.EvalBroken: 2, report.StillFailing: 3, report.Pending: 4,
	report.NewlySucceeding: 5, report.NewSucceeding: 6, report.StillSucceeding: 7, report.Removed: 8,
	report.SkippedBroken: 9, report.SkippedUnsupported: 10,
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"short":   report.Short,
	"drvName": report.DrvName,
	"base":    filepath.Base,
	"path":    url.PathEscape,
	"size":    report.SizeText,
	"delta":   report.SignedBytes,
	"join":    strings.Join,
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
}).ParseFS(webFiles, "web/*.html"))

// serveIndex shows the recent revisions and their state.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	revs, err := s.rv.Store().Revisions(r.Context(), 100)
	if err != nil {
		s.log.Error().Err(err).Msg("index page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, "index.html", map[string]any{"Title": "recent revisions", "Revisions": revs})
}

// servePR shows a PR's latest report, as tables of verdicts, and its
// revisions.
func (s *Server) servePR(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || n <= 0 {
		http.Error(w, "no such pull request", http.StatusNotFound)
		return
	}
	revs, err := s.rv.Store().PRRevisions(r.Context(), repo, n)
	if err != nil {
		s.log.Error().Err(err).Msg("pull request page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(revs) == 0 {
		http.Error(w, "no such pull request", http.StatusNotFound)
		return
	}
	rep := s.latestReport(r, revs)
	cmds, err := s.rv.Store().Commands(r.Context(), repo, n, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("pull request page")
	}
	// From the store only: a page view, anonymous as it may be, never
	// spends the installation's API quota.
	files, filesHead, err := s.rv.Store().PRFiles(r.Context(), repo, n)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error().Err(err).Msg("pull request page")
	}
	s.render(w, "pr.html", map[string]any{
		"Title": repo + " #" + strconv.Itoa(n), "Repo": repo, "Revisions": revs, "Report": rep, "Commands": cmds,
		"Files": files, "FilesHead": filesHead, "Running": s.pipe.progress.get(revs[0].ID), "PR": n,
		"GitHubURL": strings.TrimSuffix(s.cfg.GitHub.WebURL, "/") + "/" + repo + "/pull/" + strconv.Itoa(n),
	})
}

// serveBranch shows a tracked branch's pushes (its push revisions, see
// server.push_checks) and the latest one's report, as the PR page does.
func (s *Server) serveBranch(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	branch := r.PathValue("branch")
	revs, err := s.rv.Store().BranchRevisions(r.Context(), repo, branch, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("branch page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(revs) == 0 {
		http.Error(w, "no pushes of this branch reviewed", http.StatusNotFound)
		return
	}
	s.render(w, "pr.html", map[string]any{
		"Title": repo + " " + branch, "Repo": repo, "Branch": branch, "Revisions": revs, "Report": s.latestReport(r, revs), "Running": s.pipe.progress.get(revs[0].ID),
		"GitHubURL": strings.TrimSuffix(s.cfg.GitHub.WebURL, "/") + "/" + repo + "/commits/" + url.PathEscape(branch),
	})
}

// latestReport is the newest of revs' reports (nil when none has one).
func (s *Server) latestReport(r *http.Request, revs []*store.Revision) *report.Report {
	for _, rev := range revs {
		got, err := loadReview(r.Context(), s.rv.Store(), rev)
		if err != nil {
			s.log.Error().Err(err).Int64("revision", rev.ID).Msg("stored review unreadable")
			continue
		}
		if got != nil {
			return got
		}
	}
	return nil
}

// serveAttr shows what the branch's history knows of an attribute: each
// recorded commit with its derivation and result (?system=, default the
// first configured system).
func (s *Server) serveAttr(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	branch, attr := r.PathValue("branch"), r.PathValue("attr")
	system := r.URL.Query().Get("system")
	if system == "" {
		system = s.cfg.Systems[0]
	}
	hist, err := s.rv.Store().AttrHistory(r.Context(), repo, branch, system, attr, 200)
	if err != nil {
		s.log.Error().Err(err).Msg("attribute page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, "attr.html", map[string]any{"Title": fmt.Sprintf("%s on %s %s (%s)", attr, repo, branch, system), "History": hist})
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
