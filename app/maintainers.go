package app

import (
	"slices"
	"strings"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
)

// MaintainersConfig is what a review does with the maintainers of what a
// PR changes, as nixpkgs' CI does: review requests and labels.
type MaintainersConfig struct {
	// RequestReviews asks the maintainers (meta.maintainers with a GitHub
	// handle) of the packages whose files the PR touches for a review,
	// the author and who reviewed already excepted.
	RequestReviews bool `yaml:"request_reviews"`
	// MaxReviewers: a PR with more maintainers than this (a mass change)
	// asks none.
	MaxReviewers int `yaml:"max_reviewers"`
	// The labels set and removed as the PR's head says ("" leaves one out):
	// the author maintains every touched package; the PR adds a package;
	// it removes one.
	ByMaintainerLabel string `yaml:"by_maintainer_label"`
	NewPackageLabel   string `yaml:"new_package_label"`
	CleanUpLabel      string `yaml:"clean_up_label"`
}

// DefaultMaintainers are nixpkgs' habits.
var DefaultMaintainers = MaintainersConfig{RequestReviews: true, MaxReviewers: 15,
	ByMaintainerLabel: "11.by: package-maintainer", NewPackageLabel: "8.has: package (new)", CleanUpLabel: "8.has: clean-up"}

// maintainerPlan is what the maintainers of a PR's touched packages ask
// of it.
type maintainerPlan struct {
	// Maintainers of the touched packages (sorted, without the author).
	Maintainers []string
	// TooMany: more maintainers than MaxReviewers; none is asked.
	TooMany bool
	// Labels maps each label the config manages to whether the PR wants it.
	Labels map[string]bool
}

// planMaintainers reads the report of a PR's head: the touched packages
// are the added and changed ones whose definition (meta.position) is in a
// file the PR changes (so that a library's change does not ask every
// dependent's maintainer). files nil means the files are not known:
// nobody is asked, and the by-maintainer label is left as it is.
func planMaintainers(rep *report.Report, author string, files []string, cfg MaintainersConfig) maintainerPlan {
	plan := maintainerPlan{Labels: map[string]bool{}}
	added, removed := false, false
	var maint []string
	touched, byAuthor := 0, true
	for _, s := range rep.Systems {
		for _, e := range s.Attrs {
			switch e.Change {
			case eval.Added:
				added = true
			case eval.Removed:
				removed = true
			}
			if e.Change != eval.Added && e.Change != eval.Changed || files == nil {
				continue
			}
			file, _, _ := strings.Cut(e.Position, ":")
			if file == "" || !slices.Contains(files, file) {
				continue
			}
			touched++
			byAuthor = byAuthor && slices.ContainsFunc(e.Maintainers, func(m string) bool { return strings.EqualFold(m, author) })
			for _, m := range e.Maintainers {
				if !strings.EqualFold(m, author) && !slices.ContainsFunc(maint, func(x string) bool { return strings.EqualFold(x, m) }) {
					maint = append(maint, m)
				}
			}
		}
	}
	slices.Sort(maint)
	plan.Maintainers = maint
	plan.TooMany = len(maint) > cfg.MaxReviewers
	for label, want := range map[string]bool{cfg.NewPackageLabel: added, cfg.CleanUpLabel: removed} {
		if label != "" {
			plan.Labels[label] = want
		}
	}
	if cfg.ByMaintainerLabel != "" && files != nil {
		plan.Labels[cfg.ByMaintainerLabel] = touched > 0 && byAuthor && author != ""
	}
	return plan
}
