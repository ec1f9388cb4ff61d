package fakegithub

import "strings"

// operationPermissions are the permissions each operation needs of an
// installation token, from GitHub's "Permissions required for GitHub
// Apps": any one of the alternatives, at the level the request needs (read
// for GET, write for the others). Operations not listed need metadata.
var operationPermissions = map[string][]string{
	"checks/":                             {"checks"},
	"pulls/merge":                         {"contents"},
	"pulls/":                              {"pull_requests"},
	"issues/":                             {"issues", "pull_requests"},
	"reactions/":                          {"issues", "pull_requests"},
	"repos/compare-commits-with-basehead": {"contents"},
	"repos/create-commit-status":          {"statuses"},
}

// permitted reports whether installation id may do op, and the permission
// it needs. The caller holds s.mu.
func (s *Server) permitted(id int64, op, method string) (string, bool) {
	level := "write"
	if method == "GET" {
		level = "read"
	}
	need := []string{"metadata"}
	for prefix, perms := range operationPermissions {
		if op == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(op, prefix) && !exact(op) {
			need = perms
		}
	}
	if len(need) == 1 && need[0] == "metadata" {
		level = "read"
	}
	inst := s.installations[id]
	for _, p := range need {
		if got := inst.Permissions[p]; got == "write" || got == level {
			return "", true
		}
	}
	return strings.Join(need, " or ") + ": " + level, false
}

// exact reports whether op has an entry of its own, which wins over its
// prefix's.
func exact(op string) bool {
	_, ok := operationPermissions[op]
	return ok
}
