package publish

import (
	"context"
	"fmt"
	"net/url"

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
