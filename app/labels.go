package app

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/report"
)

// rebuildLabels sets the PR's rebuild labels ("10.rebuild-linux: 11-100")
// for the systems the config names a label prefix for, and removes the
// stale ones with the same prefix.
func rebuildLabels(ctx context.Context, gh *github.Client, repoFull string, pr int, prefixes map[string]string, rep *report.Report) error {
	owner, repo, _ := strings.Cut(repoFull, "/")
	want := map[string]string{} // prefix → label
	for system, prefix := range prefixes {
		if s := rep.Systems[system]; s != nil && s.SetError == nil {
			want[prefix] = prefix + ": " + s.RebuildLabel
		}
	}
	if len(want) == 0 {
		return nil
	}
	have, _, err := gh.Issues.ListLabelsByIssue(ctx, owner, repo, pr, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fmt.Errorf("labels of %s#%d: %w", repoFull, pr, err)
	}
	present := map[string]bool{}
	for _, l := range have {
		name := l.GetName()
		present[name] = true
		prefix, _, ok := strings.Cut(name, ": ")
		if w, tracked := want[prefix]; ok && tracked && name != w {
			if _, err := gh.Issues.RemoveLabelForIssue(ctx, owner, repo, pr, url.PathEscape(name)); err != nil {
				return fmt.Errorf("remove label %q of %s#%d: %w", name, repoFull, pr, err)
			}
		}
	}
	var add []string
	for _, l := range want {
		if !present[l] {
			add = append(add, l)
		}
	}
	if len(add) == 0 {
		return nil
	}
	sort.Strings(add)
	// The object form GitHub documents; go-github sends a bare array.
	req, err := gh.NewRequest("POST", fmt.Sprintf("repos/%s/%s/issues/%d/labels", owner, repo, pr), map[string][]string{"labels": add})
	if err == nil {
		_, err = gh.Do(ctx, req, nil)
	}
	if err != nil {
		return fmt.Errorf("add labels %v to %s#%d: %w", add, repoFull, pr, err)
	}
	return nil
}
