package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
	"github.com/rs/zerolog"
)

// RequestReviews asks the maintainers who did not review PR pr of
// fullName (owner/name) yet for a review. GitHub refuses a request naming
// anyone who is not a collaborator of the repository (422): then each is
// asked alone, and those GitHub refuses are logged and left out.
func RequestReviews(ctx context.Context, gh *github.Client, fullName string, pr int, maintainers []string, log zerolog.Logger) error {
	if len(maintainers) == 0 {
		return nil
	}
	owner, name, _ := strings.Cut(fullName, "/")
	reviews, _, err := gh.PullRequests.ListReviews(ctx, owner, name, pr, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fmt.Errorf("reviews of %s#%d: %w", fullName, pr, err)
	}
	ask := slices.DeleteFunc(slices.Clone(maintainers), func(m string) bool {
		return slices.ContainsFunc(reviews, func(r *github.PullRequestReview) bool { return strings.EqualFold(r.GetUser().GetLogin(), m) })
	})
	if len(ask) == 0 {
		return nil
	}
	// All in one request; when GitHub refuses it, each alone.
	var asked []string
	for _, who := range append([][]string{ask}, split(ask)...) {
		_, _, err := gh.PullRequests.RequestReviewers(ctx, owner, name, pr, github.ReviewersRequest{Reviewers: who})
		if why := refused(err); why != "" {
			log.Info().Str("refusal", why).Strs("maintainers", who).Msg("GitHub refused the review request (not a collaborator?)")
			continue
		}
		if err != nil {
			return fmt.Errorf("request reviews of %v on %s#%d: %w", who, fullName, pr, err)
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
