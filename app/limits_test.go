package app

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// A PR whose attribute has a 10,000-character name and whose other
// attribute throws a 100 kB message: GitHub refuses (422) an annotation
// title over 255 characters or a message over 64 KB, and the check runs
// once stayed in progress for ever. Every field is cut to its limit (the
// fake refuses what GitHub refuses), and the check runs complete.
func TestServeLongNamesAndMessages(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 1, PRExtra: map[string]string{"hostile": `{ stdenv }:

let
  long = builtins.concatStringsSep "" (builtins.genList (x: "n") 10000);
in
{
  recurseForDerivations = true;
  ${long} = throw "a long name";
  huge = throw (builtins.concatStringsSep "" (builtins.genList (x: "0123456789") 10000));
  fine = stdenv.mkDerivation { pname = "hostilefine"; version = "1"; };
}
`}})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	ev := runs["basinix / eval"]
	if ev.Conclusion != "failure" || !strings.Contains(ev.Summary, "hostile.huge") || !strings.Contains(ev.Summary, "hostile.nnnnnnnn") {
		t.Errorf("eval check run: %s %q\n%.2000s", ev.Conclusion, ev.Title, ev.Summary)
	}
	hostile := 0
	for _, c := range runs {
		if n := utf8.RuneCountInString(c.Summary); n > report.MaxCheckRunText {
			t.Errorf("%s: summary of %d characters", c.Name, n)
		}
		for _, a := range c.Annotations {
			title, msg := fmt.Sprint(a["title"]), fmt.Sprint(a["message"])
			if utf8.RuneCountInString(title) > report.MaxAnnotationTitle || len(msg) > report.MaxAnnotationText {
				t.Errorf("%s: annotation of %d characters of title, %d bytes of message", c.Name, utf8.RuneCountInString(title), len(msg))
			}
			if strings.HasPrefix(fmt.Sprint(a["path"]), "pkgs/by-name/hostile/") {
				hostile++
			}
		}
	}
	if hostile < 2 {
		t.Errorf("%d annotations on the hostile package's file, want its two errors", hostile)
	}
}

// When GitHub refuses a final check run update anyway (422, for a reason
// basinix did not foresee), the check run is completed with a short output
// that points at the web page, instead of the refused one being sent again
// every 30 seconds while the check run stays in progress.
func TestServeGitHubRefusalCompletesTheCheckRun(t *testing.T) {
	f := newAppWith(t, sampleset.Options{Bulk: 1})
	f.gh.FailOp("checks/update", 1, 422, func(b map[string]any) bool {
		return b["conclusion"] != nil && b["name"] == "basinix / eval"
	})
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	runs := f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	ev := runs["basinix / eval"]
	if ev.Conclusion != "failure" || !strings.Contains(ev.Summary, "GitHub refused this check run's full output") ||
		!strings.Contains(ev.Summary, "https://basinix.example/pr/octo/pkgs/1") {
		t.Errorf("eval check run: %s\n%s", ev.Conclusion, ev.Summary)
	}
	if b := runs["basinix / build (x86_64-linux)"]; !strings.Contains(b.Summary, "newly failing") {
		t.Errorf("the build check run is not the full one:\n%s", b.Summary)
	}
}
