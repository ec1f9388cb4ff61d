package app

// AppPermissions are the repository permissions the App needs, as GitHub
// names them: check runs (checks), comments, reactions and labels
// (issues), reviews and the PR's files (pull_requests), merging and
// fetching private repositories (contents: write, since merging writes
// the branch), and metadata, which every App has.
var AppPermissions = map[string]string{
	"checks":        "write",
	"contents":      "write",
	"issues":        "write",
	"merge_queues":  "read", // the merge_group event
	"metadata":      "read",
	"pull_requests": "write",
}

// AppEvents are the webhook events the App subscribes to. GitHub sends
// installation and installation_repositories to every App unasked.
var AppEvents = []string{"check_run", "check_suite", "issue_comment", "merge_group", "pull_request", "push"}
