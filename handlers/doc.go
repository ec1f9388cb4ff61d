// Package handlers will hold one go-githubapp handler per GitHub event kind
// (push, pull_request, issue_comment, check_run, check_suite, installation)
// and the comment-command parser, turning events into store work. It is
// empty until the GitHub App (`basinix serve`) lands; the local review
// (`basinix review`) does not need it.
package handlers
