package app

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
)

// The maintainers of the packages a PR's files define are asked for a
// review, as nixpkgs' CI asks them: the author is not, a library's
// dependents' maintainers are not, and GitHub refusing one who is not a
// collaborator does not keep the others from being asked. The PR gets the
// labels for a new package and a removed one.
func TestMaintainersAskedAndLabels(t *testing.T) {
	f := newApp(t)
	f.gh.SetPermission("alice", "write")
	f.gh.SetPermission("carol", "triage")
	head := f.sha(t, f.repo.Head)
	files := strings.Fields(testenv.Git(t, f.repo.Dir, "diff", "--name-only", "master..."+f.repo.Head))
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + f.repo.Dir, Files: files})
	if code, body := f.deliver(t, "pull_request", f.prEvent(t, "opened", head)); code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", code, body)
	}
	f.waitChecks(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	// bob maintains willfail but is no collaborator: GitHub refuses him,
	// and the others are then asked one by one.
	var asked []string
	testenv.Eventually(t, time.Minute, func() bool {
		asked = f.gh.RequestedReviewers("octo/pkgs", 1)
		return slices.Equal(asked, []string{"alice", "carol"})
	}, func() string { return fmt.Sprintf("asked for reviews: %v, want alice and carol", asked) })
	labels := f.gh.Labels("octo/pkgs", 1)
	for _, want := range []string{"8.has: package (new)", "8.has: clean-up"} {
		if !slices.Contains(labels, want) {
			t.Errorf("labels %v lack %q", labels, want)
		}
	}
	if slices.Contains(labels, "11.by: package-maintainer") {
		t.Errorf("labels %v: the author does not maintain willfail", labels)
	}
	if v := f.gh.Violations(); len(v) > 0 {
		t.Errorf("requests GitHub would refuse:\n%s", strings.Join(v, "\n"))
	}
}

// Which maintainers a PR's report asks, and its labels.
func TestPlanMaintainers(t *testing.T) {
	entry := func(change eval.Change, pos string, maint ...string) *report.AttrEntry {
		return &report.AttrEntry{Change: change, Position: pos, Maintainers: maint}
	}
	rep := func(attrs map[string]*report.AttrEntry) *report.Report {
		return &report.Report{Systems: map[string]*report.System{"x86_64-linux": {Attrs: attrs}}}
	}
	cfg := DefaultMaintainers
	cfg.MaxReviewers = 2
	for _, tc := range []struct {
		name   string
		rep    *report.Report
		author string
		files  []string
		want   maintainerPlan
	}{
		{"touched packages' maintainers, not the author's, not a dependent's",
			rep(map[string]*report.AttrEntry{
				"hello":     entry(eval.Changed, "pkgs/hello.nix:3", "Alice", "me"),
				"dependent": entry(eval.Changed, "pkgs/dependent.nix:3", "zed"),
			}), "me", []string{"pkgs/hello.nix"},
			maintainerPlan{Maintainers: []string{"Alice"}, Labels: map[string]bool{cfg.ByMaintainerLabel: true, cfg.NewPackageLabel: false, cfg.CleanUpLabel: false}}},
		{"a new package by someone else, an old one removed",
			rep(map[string]*report.AttrEntry{
				"new": entry(eval.Added, "pkgs/new.nix:1", "bob"),
				"old": entry(eval.Removed, ""),
			}), "me", []string{"pkgs/new.nix", "pkgs/old.nix"},
			maintainerPlan{Maintainers: []string{"bob"}, Labels: map[string]bool{cfg.ByMaintainerLabel: false, cfg.NewPackageLabel: true, cfg.CleanUpLabel: true}}},
		{"too many maintainers",
			rep(map[string]*report.AttrEntry{"a": entry(eval.Changed, "a.nix:1", "x", "y", "z")}), "me", []string{"a.nix"},
			maintainerPlan{Maintainers: []string{"x", "y", "z"}, TooMany: true, Labels: map[string]bool{cfg.ByMaintainerLabel: false, cfg.NewPackageLabel: false, cfg.CleanUpLabel: false}}},
		{"files not known: nobody asked, the maintainer label left alone",
			rep(map[string]*report.AttrEntry{"a": entry(eval.Changed, "a.nix:1", "x")}), "x", nil,
			maintainerPlan{Labels: map[string]bool{cfg.NewPackageLabel: false, cfg.CleanUpLabel: false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, planMaintainers(tc.rep, tc.author, tc.files, cfg)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
