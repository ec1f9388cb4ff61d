package publish

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/google/go-github/v60/github"
)

// UserPermission asks GitHub for user's permission on owner/repo. go-github
// v60 lacks role_name, which tells maintain from write.
func UserPermission(ctx context.Context, gh *github.Client, owner, repo, user string) (perm, role string, err error) {
	var p struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	req, err := gh.NewRequest("GET", fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", owner, repo, url.PathEscape(user)), nil)
	if err == nil {
		_, err = gh.Do(ctx, req, &p)
	}
	if err != nil {
		return "", "", fmt.Errorf("permission of %s on %s/%s: %w", user, owner, repo, err)
	}
	return p.Permission, p.RoleName, nil
}

// Permitted is the rule of comment commands and the pages' actions: a
// user may act when GitHub's permission or role for them is one of
// allowed. It also returns the name to show for what they have (the role,
// which tells maintain from write, when GitHub gives one).
func Permitted(allowed []string, perm, role string) (bool, string) {
	return slices.Contains(allowed, perm) || slices.Contains(allowed, role), cmp.Or(role, perm)
}
