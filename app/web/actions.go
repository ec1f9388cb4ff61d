package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/basinix/basinix/handlers"
	"github.com/basinix/basinix/nix"
)

// serveAction carries out a PR page's button: the logged-in user's
// permission on the repository is checked as for a comment command
// (commands.permissions), and the action is the command itself, run by
// the same job and recorded with "web" as how it came.
func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || n <= 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "No such pull request.")
		return
	}
	back := fmt.Sprintf("/pr/%s/%d", repo, n)
	verb := r.PostForm.Get("action")
	line := "@" + s.cfg.CommandName + " " + verb
	switch verb {
	case "build", "test", "diff":
		line += " " + r.PostForm.Get("attrs")
	case "merge":
		line += " " + r.PostForm.Get("message")
	}
	cmds, errs := handlers.ParseCommands(strings.ReplaceAll(line, "\n", " "), s.cfg.CommandName)
	if len(errs) > 0 || len(cmds) != 1 || cmds[0].Verb == "help" {
		why := "not an action"
		if len(errs) > 0 {
			why = errs[0].Error()
		}
		s.message(w, r, http.StatusBadRequest, "Not done", "The action was not understood: "+why)
		return
	}
	revs, err := s.st.PRRevisions(r.Context(), repo, n)
	if err != nil || len(revs) == 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "basinix has not seen this pull request.")
		return
	}
	may, role, err := s.mayAct(r.Context(), repo, sess.Login)
	if err != nil {
		s.log.Warn().Err(err).Str("user", sess.Login).Msg("web action")
		s.message(w, r, http.StatusBadGateway, "Not done", "GitHub did not say what you may do on this repository; try again.")
		return
	}
	if !may {
		s.log.Info().Str("repo", repo).Int("pr", n).Str("user", sess.Login).Str("permission", role).Msg("web action refused")
		s.message(w, r, http.StatusForbidden, "Refused", fmt.Sprintf("Only users with %s permission on %s may act on its pull requests; you have %s.",
			strings.Join(s.cfg.CommandPermissions, ", "), repo, cmp.Or(role, "none")))
		return
	}
	closed, merged, err := s.st.PRClosed(r.Context(), repo, n)
	if err != nil {
		s.log.Error().Err(err).Msg("web action")
	}
	req := handlers.CommandRequest{InstallationID: revs[0].InstallationID, Repo: repo, PR: n, User: sess.Login,
		Commands: cmds, Via: "web", Closed: closed, Merged: merged}
	if err := s.app.Commands(r.Context(), req); err != nil {
		s.log.Error().Err(err).Msg("web action")
		s.message(w, r, http.StatusInternalServerError, "Not done", "The action could not be recorded; try again.")
		return
	}
	s.log.Info().Str("repo", repo).Int("pr", n).Str("user", sess.Login).Str("action", verb).Msg("web action queued")
	http.Redirect(w, r, back+"?flash="+url.QueryEscape(verb+": asked, see the PR's comments and check runs"), http.StatusSeeOther)
}

// serveRestart builds a failed derivation again, asked from its build
// page by a user who may act on a repository waiting for it.
func (s *Server) serveRestart(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	drv := "/nix/store/" + name + ".drv"
	if nix.CheckDrvPath(drv) != nil {
		s.message(w, r, http.StatusNotFound, "Not found", "No such derivation.")
		return
	}
	waiters, err := s.st.Waiters(r.Context(), drv, 50)
	if err != nil || len(waiters) == 0 {
		s.message(w, r, http.StatusNotFound, "Not found", "Nobody waits for this derivation.")
		return
	}
	allowed := ""
	for _, wt := range waiters {
		if may, _, err := s.mayAct(r.Context(), wt.Repo, sess.Login); err == nil && may {
			allowed = wt.Repo
			break
		}
	}
	if allowed == "" {
		s.message(w, r, http.StatusForbidden, "Refused", "Only users who may act on a repository waiting for this derivation may build it again.")
		return
	}
	if err := s.app.Restart(r.Context(), drv, sess.Login, allowed); err != nil {
		s.message(w, r, http.StatusInternalServerError, "Not done", "The rebuild could not be recorded; try again.")
		return
	}
	s.log.Info().Str("drv", drv).Str("user", sess.Login).Str("repo", allowed).Msg("rebuild asked from the web")
	http.Redirect(w, r, "/build/"+name+"?flash="+url.QueryEscape("asked: it builds again"), http.StatusSeeOther)
}
