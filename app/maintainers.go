package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
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

// requestReviews asks the plan's maintainers who did not review the PR
// yet for a review. GitHub refuses a request naming anyone who is not a
// collaborator of the repository (422): then each is asked alone, and
// those GitHub refuses are logged and left out.
func requestReviews(ctx context.Context, gh *github.Client, rev *store.Revision, plan maintainerPlan, log zerolog.Logger) error {
	if len(plan.Maintainers) == 0 || plan.TooMany {
		if plan.TooMany {
			log.Info().Int("maintainers", len(plan.Maintainers)).Msg("too many maintainers to ask for reviews")
		}
		return nil
	}
	owner, name, _ := strings.Cut(rev.Repo, "/")
	reviews, _, err := gh.PullRequests.ListReviews(ctx, owner, name, rev.PR, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fmt.Errorf("reviews of %s#%d: %w", rev.Repo, rev.PR, err)
	}
	ask := slices.DeleteFunc(slices.Clone(plan.Maintainers), func(m string) bool {
		return slices.ContainsFunc(reviews, func(r *github.PullRequestReview) bool { return strings.EqualFold(r.GetUser().GetLogin(), m) })
	})
	if len(ask) == 0 {
		return nil
	}
	// All in one request; when GitHub refuses it, each alone.
	var asked []string
	for _, who := range append([][]string{ask}, split(ask)...) {
		_, _, err := gh.PullRequests.RequestReviewers(ctx, owner, name, rev.PR, github.ReviewersRequest{Reviewers: who})
		if why := refused(err); why != "" {
			log.Info().Str("refusal", why).Strs("maintainers", who).Msg("GitHub refused the review request (not a collaborator?)")
			continue
		}
		if err != nil {
			return fmt.Errorf("request reviews of %v on %s#%d: %w", who, rev.Repo, rev.PR, err)
		}
		if asked = append(asked, who...); len(who) == len(ask) {
			break // the request for all went through
		}
	}
	log.Info().Strs("maintainers", asked).Msg("reviews requested")
	return nil
}

// split is one list for each of names, none when there is one name (the
// list of all is that one already).
func split(names []string) [][]string {
	if len(names) < 2 {
		return nil
	}
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = []string{n}
	}
	return out
}
