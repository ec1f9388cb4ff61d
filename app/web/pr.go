package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// prPage is a PR's (or a tracked branch's pushes') page.
type prPage struct {
	Repo   string `json:"repo"`
	PR     int    `json:"pr,omitempty"`
	Branch string `json:"branch,omitempty"`
	Title  string `json:"title,omitempty"`
	Author string `json:"author,omitempty"`
	State  string `json:"state,omitempty"` // open, merged, closed
	// Pushes are the PR's heads, newest first; Revision the one shown
	// (?rev=ID, default the newest with a report).
	Pushes    []pushRow       `json:"pushes"`
	Revision  int64           `json:"revision"`
	Report    *report.Report  `json:"report,omitempty"`
	Systems   []systemView    `json:"systems,omitempty"`
	Files     []store.PRFile  `json:"files,omitempty"`
	FilesHead string          `json:"filesHead,omitempty"`
	Commands  []commandRow    `json:"commands,omitempty"`
	Running   *build.Progress `json:"running,omitempty"`
	GitHubURL string          `json:"githubURL"`
	Base      string          `json:"base,omitempty"`
	Actions   []string        `json:"actions,omitempty"` // what a logged-in user may ask here
	// Jobs: the report is a flake's CI, every job in it.
	Jobs bool `json:"jobs,omitempty"`
}

type pushRow struct {
	ID      int64     `json:"id"`
	N       int       `json:"n"`
	Head    string    `json:"head"`
	State   string    `json:"state"`
	Attempt int       `json:"attempt,omitempty"`
	Created time.Time `json:"created"`
	Shown   bool      `json:"shown"`
}

type commandRow struct {
	When    time.Time `json:"when"`
	User    string    `json:"user"`
	Command string    `json:"command"`
	Outcome string    `json:"outcome"`
	Via     string    `json:"via"`
}

// systemView is one system of a report, as Hydra's evaluation page
// shows it: a tab per kind of result.
type systemView struct {
	System       string    `json:"system"`
	RebuildLabel string    `json:"rebuildLabel"`
	SetError     string    `json:"setError,omitempty"`
	Tabs         []tabView `json:"tabs"`
	Open         string    `json:"open"` // the tab shown first: the first with something in it
}

type tabView struct {
	ID    string     `json:"id"`
	Name  string     `json:"name"`
	Attrs []attrView `json:"attrs,omitempty"`
	// Shown is how many of Attrs the HTML lists (tabRows unless ?all=1);
	// the JSON has them all.
	Shown  int                 `json:"-"`
	Errors []report.ErrorEntry `json:"errors,omitempty"`
	Tests  []testView          `json:"tests,omitempty"`
	Count  int                 `json:"count"`
}

type attrView struct {
	// St are the status classes and icons of verdict, head and base,
	// worked out once (the page has thousands of rows).
	St               [3]statusView     `json:"-"`
	Name             string            `json:"name"`
	Verdict          report.Verdict    `json:"verdict"`
	Head             build.Result      `json:"head,omitempty"`
	Base             build.Result      `json:"base,omitempty"`
	Build            string            `json:"build,omitempty"` // the build page
	BaseBuild        string            `json:"baseBuild,omitempty"`
	History          string            `json:"history"`
	FailedDependency string            `json:"failedDependency,omitempty"`
	FailedBuild      string            `json:"failedBuild,omitempty"`
	Position         string            `json:"position,omitempty"`
	Since            string            `json:"since,omitempty"`
	Log              string            `json:"log,omitempty"`
	Message          string            `json:"message,omitempty"`
	Outputs          *build.OutputDiff `json:"outputs,omitempty"`
	Check            string            `json:"check,omitempty"`
}

type testView struct {
	Name  string       `json:"name"`
	Head  build.Result `json:"head"`
	Build string       `json:"build,omitempty"`
	Log   string       `json:"log,omitempty"`
	Error string       `json:"error,omitempty"`
}

// tabs are the PR page's tabs, in Hydra's order, and the verdicts each holds.
var tabs = []struct {
	id, name string
	verdicts []report.Verdict
}{
	{"newly-failing", "newly failing", []report.Verdict{report.NewlyFailing}},
	{"newly-succeeding", "newly succeeding", []report.Verdict{report.NewlySucceeding}},
	{"new", "new", []report.Verdict{report.NewFailing, report.NewSucceeding}},
	{"removed", "removed", []report.Verdict{report.Removed}},
	{"still-failing", "still failing", []report.Verdict{report.StillFailing}},
	{"still-succeeding", "still succeeding", []report.Verdict{report.StillSucceeding}},
	{"queued", "queued / building", []report.Verdict{report.Pending}},
	{"eval-errors", "evaluation errors", []report.Verdict{report.EvalBroken}},
	{"alias-errors", "alias errors", nil},
	{"skipped", "skipped", []report.Verdict{report.SkippedBroken, report.SkippedUnsupported}},
	{"tests", "tests", nil},
}

// systemViews turns a report into the page's tabs.
func systemViews(rep *report.Report, repo, branch string) []systemView {
	var out []systemView
	for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
		s := rep.Systems[system]
		sv := systemView{System: system, RebuildLabel: s.RebuildLabel}
		if s.SetError != nil {
			sv.SetError = s.SetError.Message
		}
		byVerdict := map[report.Verdict][]attrView{}
		var tests []testView
		for _, name := range slices.Sorted(maps.Keys(s.Attrs)) {
			e := s.Attrs[name]
			a := attrView{Name: name, Verdict: e.Verdict, Head: e.Head, Base: e.Base, Position: e.Position, Since: e.FailingSince,
				Message: e.Message, Outputs: e.Outputs, FailedDependency: e.FailedDependency,
				History: "/attr/" + repo + "/" + url.PathEscape(branch) + "/" + url.PathEscape(name) + "?system=" + url.QueryEscape(system)}
			a.St = [3]statusView{newStatus(string(e.Verdict)), newStatus(string(e.Head)), newStatus(string(e.Base))}
			if e.DrvPath != "" {
				a.Build = "/build/" + buildName(e.DrvPath)
			}
			if e.BaseDrvPath != "" {
				a.BaseBuild = "/build/" + buildName(e.BaseDrvPath)
			}
			if e.FailedDependency != "" {
				a.FailedBuild = "/build/" + buildName(e.FailedDependency)
			}
			if e.Log != "" {
				a.Log = "/log/" + filepath.Base(e.Log)
			}
			if rep.Jobs && e.Verdict != report.Removed {
				a.Check = report.JobCheckName(name, system, len(rep.Systems))
			}
			byVerdict[e.Verdict] = append(byVerdict[e.Verdict], a)
			for _, tn := range slices.Sorted(maps.Keys(e.Tests)) {
				t := e.Tests[tn]
				tv := testView{Name: name + ".passthru.tests." + tn, Head: t.Head, Error: t.Error}
				if t.DrvPath != "" {
					tv.Build = "/build/" + buildName(t.DrvPath)
				}
				if t.Log != "" {
					tv.Log = "/log/" + filepath.Base(t.Log)
				}
				tests = append(tests, tv)
			}
		}
		for _, t := range tabs {
			tv := tabView{ID: t.id, Name: t.name}
			for _, v := range t.verdicts {
				tv.Attrs = append(tv.Attrs, byVerdict[v]...)
			}
			switch t.id {
			case "eval-errors":
				tv.Errors = s.EvalErrors
			case "alias-errors":
				tv.Errors = s.AliasErrors
			case "tests":
				tv.Tests = tests
			}
			tv.Count = max(len(tv.Attrs), len(tv.Errors)) + len(tv.Tests)
			tv.Shown = len(tv.Attrs)
			if sv.Open == "" && tv.Count > 0 {
				sv.Open = t.id
			}
			sv.Tabs = append(sv.Tabs, tv)
		}
		if sv.Open == "" {
			sv.Open = tabs[0].id
		}
		out = append(out, sv)
	}
	return out
}

// statusView is a status as the page shows it: class and icon.
type statusView struct{ Name, Class, Icon string }

func newStatus(s string) statusView {
	c := statusClass(s)
	return statusView{s, c, statusIcons[c]}
}

// tabRows is how many attributes a tab lists unless the page is asked
// with ?all=1: a mass rebuild's thousands of still succeeding packages
// are in the JSON, and one click away.
const tabRows = 200

// webActions are the actions of the PR page, each a comment command.
var webActions = []string{"merge", "review", "rebuild", "build", "test", "eval", "diff"}

// servePR shows a PR: its pushes, the shown push's verdicts per system in
// tabs, the changed files and their diff, the commands, and the actions
// for a logged-in user.
func (s *Server) servePR(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	num, asJSON := wantsJSON(r, r.PathValue("number"))
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "No such pull request.")
		return
	}
	if !s.canRead(w, r, repo) {
		return
	}
	st := s.st
	revs, err := st.PRRevisions(r.Context(), repo, n)
	if err != nil {
		s.log.Error().Err(err).Msg("pull request page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(revs) == 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "basinix has not seen this pull request.")
		return
	}
	p := prPage{Repo: repo, PR: n, Author: revs[0].Author, State: "open",
		GitHubURL: strings.TrimSuffix(s.cfg.GitHubURL, "/") + "/" + repo + "/pull/" + strconv.Itoa(n), Base: revs[0].BaseRef}
	for _, rev := range revs {
		if p.Title == "" {
			p.Title = rev.Title
		}
	}
	if closed, merged, err := st.PRClosed(r.Context(), repo, n); err == nil && closed {
		p.State = map[bool]string{true: "merged", false: "closed"}[merged]
	}
	s.fillPushes(r, &p, revs, revs[0].BaseRef)
	if cmds, err := st.Commands(r.Context(), repo, n, 50); err == nil {
		for _, c := range cmds {
			p.Commands = append(p.Commands, commandRow{c.Received, c.User, c.Command, c.Outcome, c.Via})
		}
	}
	// From the store only: a page view, anonymous as it may be, never
	// spends the installation's API quota on files.
	files, filesHead, err := st.PRFiles(r.Context(), repo, n)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error().Err(err).Msg("pull request page")
	}
	p.Files, p.FilesHead = files, filesHead
	if s.session(r) != nil && p.State == "open" {
		p.Actions = webActions
	}
	title := fmt.Sprintf("%s #%d", repo, n)
	if p.Title != "" {
		title += ": " + p.Title
	}
	s.page(w, r, "pr.html", title, p, asJSON)
}

// fillPushes lists the revisions and picks the one shown: ?rev=ID, else
// the newest with a report.
func (s *Server) fillPushes(r *http.Request, p *prPage, revs []*store.Revision, branch string) {
	want, _ := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
	var shown *store.Revision
	for _, rev := range revs {
		if want != 0 && rev.ID == want || want == 0 && shown == nil && len(rev.Report) > 0 {
			shown = rev
		}
	}
	if shown == nil {
		shown = revs[0]
	}
	for i, rev := range revs {
		p.Pushes = append(p.Pushes, pushRow{ID: rev.ID, N: len(revs) - i, Head: rev.HeadSHA, State: rev.State, Attempt: rev.Attempt, Created: rev.Created, Shown: rev == shown})
	}
	p.Revision = shown.ID
	rep, err := s.reports.load(r.Context(), s.st, shown)
	if err != nil {
		s.log.Error().Err(err).Int64("revision", shown.ID).Msg("stored review unreadable")
	}
	p.Report = rep
	if rep != nil {
		p.Systems, p.Jobs = systemViews(rep, p.Repo, branch), rep.Jobs
		if r.URL.Query().Get("all") == "" {
			for i := range p.Systems {
				for j := range p.Systems[i].Tabs {
					t := &p.Systems[i].Tabs[j]
					t.Shown = min(t.Shown, tabRows)
				}
			}
		}
	}
	p.Running = s.app.Progress(shown.ID)
}

// serveBranch shows a tracked branch's pushes (its push revisions, see
// server.push_checks) and one's report, as the PR page does.
func (s *Server) serveBranch(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	branch, asJSON := wantsJSON(r, r.PathValue("branch"))
	if !s.canRead(w, r, repo) {
		return
	}
	revs, err := s.st.BranchRevisions(r.Context(), repo, branch, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("branch page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(revs) == 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "No pushes of this branch reviewed.")
		return
	}
	p := prPage{Repo: repo, Branch: branch, GitHubURL: strings.TrimSuffix(s.cfg.GitHubURL, "/") + "/" + repo + "/commits/" + url.PathEscape(branch)}
	s.fillPushes(r, &p, revs, branch)
	s.page(w, r, "pr.html", repo+" "+branch, p, asJSON)
}

type attrPage struct {
	Repo    string               `json:"repo"`
	Branch  string               `json:"branch"`
	System  string               `json:"system"`
	Attr    string               `json:"attr"`
	History []store.HistoryEntry `json:"history"`
	// LastSuccess and FailingSince sum the history up; Culprit is the
	// commit that broke it (the first of the current failing streak).
	LastSuccess  *store.HistoryEntry `json:"lastSuccess,omitempty"`
	FailingSince *store.HistoryEntry `json:"failingSince,omitempty"`
}

// serveAttr shows what the branch's history knows of an attribute: each
// recorded commit with its derivation and result (?system=, default the
// first configured system), when it last built and since when it fails.
func (s *Server) serveAttr(w http.ResponseWriter, r *http.Request) {
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	attr, asJSON := wantsJSON(r, r.PathValue("attr"))
	branch := r.PathValue("branch")
	if !s.canRead(w, r, repo) {
		return
	}
	system := r.URL.Query().Get("system")
	if system == "" {
		system = s.cfg.Systems[0]
	}
	hist, err := s.st.AttrHistory(r.Context(), repo, branch, system, attr, 200)
	if err != nil {
		s.log.Error().Err(err).Msg("attribute page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := attrPage{Repo: repo, Branch: branch, System: system, Attr: attr, History: hist}
	for i := range hist {
		h := &hist[i]
		if build.Result(h.Result) == build.Success {
			p.LastSuccess = h
			break
		}
		if build.Result(h.Result).Failed() || h.DrvPath == "" {
			p.FailingSince = h
		}
	}
	if p.FailingSince != nil && p.LastSuccess == nil && len(hist) > 0 && p.FailingSince != &hist[len(hist)-1] {
		p.FailingSince = nil // not back to a success: unknown
	}
	s.page(w, r, "attr.html", fmt.Sprintf("%s on %s %s (%s)", attr, repo, branch, system), p, asJSON)
}

type buildPage struct {
	Drv         string        `json:"drv"`
	Name        string        `json:"name"`
	Result      string        `json:"result"`
	Machine     string        `json:"machine,omitempty"`
	Started     time.Time     `json:"started,omitempty"`
	Duration    time.Duration `json:"duration,omitempty"`
	Message     string        `json:"message,omitempty"`
	FailedDep   string        `json:"failedDependency,omitempty"`
	FailedBuild string        `json:"failedBuild,omitempty"`
	Building    bool          `json:"building"`
	LogTail     string        `json:"logTail,omitempty"`
	Log         string        `json:"log,omitempty"` // the full log's page
	Waiters     []waiterRow   `json:"waiters"`
	Restart     bool          `json:"restart"` // a logged-in user may ask it again
}

type waiterRow struct {
	store.Waiter
	Where string `json:"where"`
}

// serveBuild shows one derivation's build: result, machine, times, who
// waits for it, its failed dependency and its log's last lines.
func (s *Server) serveBuild(w http.ResponseWriter, r *http.Request) {
	name, asJSON := wantsJSON(r, r.PathValue("name"))
	drv := "/nix/store/" + name + ".drv"
	if nix.CheckDrvPath(drv) != nil {
		s.message(w, r, http.StatusNotFound, "Not found", "No such derivation.")
		return
	}
	waiters, err := s.st.Waiters(r.Context(), drv, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("build page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !s.canRead(w, r, waiterRepos(waiters)...) {
		return
	}
	p := buildPage{Drv: drv, Name: report.DrvName(drv), Result: "not built"}
	recs, err := s.st.Builds(r.Context(), []string{drv})
	if err != nil {
		s.log.Error().Err(err).Msg("build page")
	}
	if rec := recs[drv]; rec != nil {
		p.Result, p.Machine, p.Started, p.Duration, p.Message, p.FailedDep = rec.Result, rec.Machine, rec.Started, rec.Duration, rec.Message, rec.FailedDep
		if rec.FailedDep != "" {
			p.FailedBuild = "/build/" + buildName(rec.FailedDep)
		}
		if rec.LogPath != "" {
			p.Log = "/log/" + filepath.Base(rec.LogPath)
			tail := strings.Split(strings.TrimRight(string(build.LogEnd(rec.LogPath, 16<<10)), "\n"), "\n")
			p.LogTail = strings.Join(tail[max(0, len(tail)-40):], "\n")
		}
	}
	if _, _, running := s.app.Live(drv, 0); running {
		p.Building, p.Result, p.Log = true, "building", "/log/"+filepath.Base(drv)
	}
	for _, wt := range waiters {
		where := fmt.Sprintf("/pr/%s/%d", wt.Repo, wt.PR)
		if wt.PR == 0 {
			where = "/branch/" + wt.Repo + "/" + url.PathEscape(wt.Branch)
		}
		p.Waiters = append(p.Waiters, waiterRow{wt, where})
	}
	p.Restart = s.session(r) != nil && build.Result(p.Result).Failed() && len(waiters) > 0
	s.page(w, r, "build.html", report.DrvName(drv), p, asJSON)
}

// waiterRepos are the repositories waiting for a derivation.
func waiterRepos(waiters []store.Waiter) []string {
	var repos []string
	for _, wt := range waiters {
		if !slices.Contains(repos, wt.Repo) {
			repos = append(repos, wt.Repo)
		}
	}
	return repos
}

// reportCache keeps the reports of the revisions last shown: a finished
// revision's report changes only with a new attempt or state.
type reportCache struct {
	mu sync.Mutex
	m  map[string]*report.Report
}

func (c *reportCache) load(ctx context.Context, st review.ReportStore, rev *store.Revision) (*report.Report, error) {
	key := fmt.Sprintf("%d/%d/%s/%d", rev.ID, rev.Attempt, rev.State, len(rev.Report))
	c.mu.Lock()
	rep, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return rep, nil
	}
	rep, err := review.LoadReport(ctx, st, rev)
	if err != nil {
		return nil, err
	}
	if rev.State == store.Done {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= 16 {
			c.m = map[string]*report.Report{}
		}
		c.m[key] = rep
		c.mu.Unlock()
	}
	return rep, nil
}
