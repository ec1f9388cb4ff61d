package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// GitHub writes that must happen once. A request that fails on GitHub's
// side may have been carried out all the same (GitHub acted, its answer was
// lost), and the middleware does not send these again: each leaves a
// marker, and after a failure looks for it before trying once more.

// marker is the hidden line that names a comment or review basinix posted,
// by what it answers (a comment's id and the reply's place, say).
func marker(key string) string { return "\n\n<!-- basinix: " + key + " -->" }

// PostComment posts body on issue (or PR) n of owner/repo once, key naming
// it among basinix's comments there.
func PostComment(ctx context.Context, gh *github.Client, owner, repo string, n int, body, key string) error {
	body += marker(key)
	return once(ctx, func() error {
		_, _, err := gh.Issues.CreateComment(ctx, owner, repo, n, &github.IssueComment{Body: github.String(body)})
		return err
	}, func() (bool, error) {
		opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
		for {
			comments, resp, err := gh.Issues.ListComments(ctx, owner, repo, n, opt)
			if err != nil {
				return false, err
			}
			for _, c := range comments {
				if strings.Contains(c.GetBody(), marker(key)) {
					return true, nil
				}
			}
			if resp.NextPage == 0 {
				return false, nil
			}
			opt.Page = resp.NextPage
		}
	}, fmt.Sprintf("comment on %s/%s#%d", owner, repo, n))
}

// PostReview posts a COMMENT review of commit on PR n once.
func PostReview(ctx context.Context, gh *github.Client, owner, repo string, n int, commit, body, key string) error {
	body += marker(key)
	return once(ctx, func() error {
		_, _, err := gh.PullRequests.CreateReview(ctx, owner, repo, n, &github.PullRequestReviewRequest{
			CommitID: github.String(commit), Body: github.String(body), Event: github.String("COMMENT")})
		return err
	}, func() (bool, error) {
		reviews, _, err := gh.PullRequests.ListReviews(ctx, owner, repo, n, &github.ListOptions{PerPage: 100})
		if err != nil {
			return false, err
		}
		for _, r := range reviews {
			if strings.Contains(r.GetBody(), marker(key)) {
				return true, nil
			}
		}
		return false, nil
	}, fmt.Sprintf("review on %s/%s#%d", owner, repo, n))
}

// MergeOnce merges PR n at head once: after a failure, a PR GitHub says is
// merged was merged by it.
func MergeOnce(ctx context.Context, gh *github.Client, owner, repo string, n int, head, method string) error {
	return once(ctx, func() error {
		_, _, err := gh.PullRequests.Merge(ctx, owner, repo, n, "", &github.PullRequestOptions{MergeMethod: method, SHA: head})
		return err
	}, func() (bool, error) {
		merged, _, err := gh.PullRequests.IsMerged(ctx, owner, repo, n)
		return merged, err
	}, fmt.Sprintf("merge %s/%s#%d", owner, repo, n))
}

// once does write; when it fails on GitHub's side (5xx, or no answer),
// done says whether it was carried out all the same, and if not it is
// done once more. A refusal (4xx) is returned as it is.
func once(ctx context.Context, write func() error, done func() (bool, error), what string) error {
	err := write()
	if err == nil || !serverSide(err) || ctx.Err() != nil {
		return err
	}
	if ok, lerr := done(); lerr == nil && ok {
		return nil
	}
	if err := write(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// serverSide reports whether err is GitHub's side failing (5xx) or no
// answer at all, after which a write may or may not have been carried out.
func serverSide(err error) bool {
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil {
		return ge.Response.StatusCode >= 500
	}
	var ae *github.AcceptedError
	return !errors.As(err, &ae)
}
