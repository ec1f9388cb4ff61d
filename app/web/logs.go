package web

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/review"
)

// logName is what /log/{name} serves: a derivation's file name
// ("HASH-NAME.drv") or a kept log's, nothing that could walk out of the
// log directory.
var logName = regexp.MustCompile(`^[0-9a-z]{32}-[A-Za-z0-9+._?=-]+\.(drv|log|log\.bz2)$`)

// serveDiffoscope serves a diffoscope report, sandboxed: its HTML is made
// of the outputs' contents, which a PR chose.
func (s *Server) serveDiffoscope(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !review.DiffoscopeName(name) {
		http.Error(w, "no such report", http.StatusNotFound)
		return
	}
	file := filepath.Join(review.DiffoscopeDir(s.cfg.DataDir), name)
	// A report asked on a PR is its repository's readers' only.
	var repos []string
	if repo, err := os.ReadFile(file + ".repo"); err == nil {
		repos = append(repos, strings.TrimSpace(string(repo)))
	}
	if !s.canRead(w, r, repos...) {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.Error(w, "no such report", http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if info, err := f.Stat(); err == nil && info.Size() == 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "diffoscope found no differences.\n")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.Copy(w, f)
}

// serveLog serves a derivation's kept log or, while it builds, follows its
// output until the build ends.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !logName.MatchString(name) || strings.Contains(name, "..") {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	dir := filepath.Join(s.cfg.DataDir, "logs")
	drv := "/nix/store/" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".bz2"), ".log"), ".drv") + ".drv"
	// A private repository's builds' logs are its readers' only.
	waiters, err := s.st.Waiters(r.Context(), drv, 50)
	if err != nil {
		s.log.Error().Err(err).Msg("log")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !s.canRead(w, r, waiterRepos(waiters)...) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if kept := build.KeptLog(dir, drv); kept != "" {
		f, err := build.OpenLog(kept)
		if err != nil {
			http.Error(w, "no such log", http.StatusNotFound)
			return
		}
		defer f.Close()
		out := s.red.Writer(w)
		io.Copy(out, f)
		out.Close()
		return
	}
	if _, _, running := s.app.Live(drv, 0); !running {
		http.Error(w, "no such log", http.StatusNotFound)
		return
	}
	s.follow(w, r, dir, drv)
}

// follow streams a running build's output as it comes, until the build
// ends or the client goes.
func (s *Server) follow(rw http.ResponseWriter, r *http.Request, dir, drv string) {
	flusher, _ := rw.(http.Flusher)
	rc := http.NewResponseController(rw)
	w := s.red.Writer(rw)
	defer w.Close()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for from := 0; ; {
		data, next, running := s.app.Live(drv, from)
		if _, err := w.Write(data); err != nil {
			return
		}
		from = next
		if !running {
			// The last lines may have come after the last look: the kept
			// log holds the same output, so go on from there.
			kept := build.KeptLog(dir, drv)
			if f, err := build.OpenLog(kept); err == nil {
				io.CopyN(io.Discard, f, int64(from))
				io.Copy(w, f)
				f.Close()
			}
			fmt.Fprintf(w, "\n[basinix: the build ended; its kept log is at /log/%s]\n", filepath.Base(kept))
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)) // a live log may follow for hours
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
