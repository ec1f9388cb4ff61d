package publish

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/report"
)

// RebuildLabels are the PR's rebuild labels ("10.rebuild-linux: 11-100")
// for the systems the config names a label prefix for: the labels wanted,
// and the prefixes whose other labels are stale.
func RebuildLabels(prefixes map[string]string, rep *report.Report) (want map[string]bool, managed map[string]bool) {
	want, managed = map[string]bool{}, map[string]bool{}
	for system, prefix := range prefixes {
		if s := rep.Systems[system]; s != nil && s.SetError == nil {
			want[prefix+": "+s.RebuildLabel] = true
			managed[prefix] = true
		}
	}
	return want, managed
}

// SyncLabels adds the labels want says true the PR lacks, and removes the
// ones it says false and those under a managed prefix ("PREFIX: …") that
// are not wanted. One request lists the labels, one adds, one per removal.
func SyncLabels(ctx context.Context, gh *github.Client, repoFull string, pr int, want, managed map[string]bool) error {
	if len(want) == 0 {
		return nil
	}
	owner, repo, _ := strings.Cut(repoFull, "/")
	have, _, err := gh.Issues.ListLabelsByIssue(ctx, owner, repo, pr, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fmt.Errorf("labels of %s#%d: %w", repoFull, pr, err)
	}
	present := map[string]bool{}
	for _, l := range have {
		name := l.GetName()
		present[name] = true
		prefix, _, ok := strings.Cut(name, ": ")
		wanted, known := want[name]
		if known && !wanted || !known && ok && managed[prefix] {
			if _, err := gh.Issues.RemoveLabelForIssue(ctx, owner, repo, pr, url.PathEscape(name)); err != nil {
				return fmt.Errorf("remove label %q of %s#%d: %w", name, repoFull, pr, err)
			}
		}
	}
	var add []string
	for l, wanted := range want {
		if wanted && !present[l] {
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
