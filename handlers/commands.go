package handlers

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/basinix/basinix/report"
)

// Command is one `@basinix VERB ARGS…` line of a comment.
type Command struct {
	Verb    string   // rebuild, build, test, diff, eval, merge, review, help
	Attrs   []string // for build, test and diff
	Message string   // for merge: the rest of the line
}

// Limits on what a comment may ask.
const (
	maxLine  = 1000
	maxAttrs = 50
	// maxDiffs: diffoscope takes minutes per attribute.
	maxDiffs = 5
)

// attrRe is an attribute path as a reviewer types it: dot-separated Nix
// identifiers, nothing quoted, nothing a shell could read.
var attrRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*(\.[A-Za-z_][A-Za-z0-9_'-]*)*$`)

// ParseCommands reads the lines of body that start with "@name" (any
// case). Each is one command; lines that are not a valid command are
// returned as errors, which the caller answers with the help text.
func ParseCommands(body, name string) ([]Command, []error) {
	var cmds []Command
	var errs []error
	mention := "@" + strings.ToLower(name)
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.ToLower(fields[0]) != mention {
			continue
		}
		if len(line) > maxLine {
			errs = append(errs, fmt.Errorf("a command line of %d characters is too long (at most %d)", len(line), maxLine))
			continue
		}
		if len(fields) == 1 {
			errs = append(errs, fmt.Errorf("%s: no command", report.Code(line)))
			continue
		}
		c := Command{Verb: strings.ToLower(fields[1])}
		args := fields[2:]
		switch c.Verb {
		case "rebuild", "eval", "review", "help":
			if len(args) > 0 {
				errs = append(errs, fmt.Errorf("%s: %s takes no arguments", report.Code(line), c.Verb))
				continue
			}
		case "build", "test", "diff":
			most := maxAttrs
			if c.Verb == "diff" {
				most = maxDiffs
			}
			if len(args) == 0 || len(args) > most {
				errs = append(errs, fmt.Errorf("%s: %s needs 1 to %d attributes", report.Code(line), c.Verb, most))
				continue
			}
			bad := ""
			for _, a := range args {
				if len(a) > 200 || !attrRe.MatchString(a) {
					bad = a
					break
				}
			}
			if bad != "" {
				errs = append(errs, fmt.Errorf("%s is not an attribute path", report.Code(truncate(bad, 60))))
				continue
			}
			c.Attrs = args
		case "merge":
			_, rest, _ := strings.Cut(line, fields[1])
			c.Message = strings.TrimSpace(rest)
		default:
			errs = append(errs, fmt.Errorf("%s is not a command", report.Code(truncate(fields[1], 40))))
			continue
		}
		cmds = append(cmds, c)
	}
	return cmds, errs
}

// Help is the reply to `@NAME help` and to what is not a command.
func Help(name string) string {
	return fmt.Sprintf("Commands (one per line, each starting with `@%[1]s`):\n\n"+
		"- `@%[1]s rebuild`: build the failed derivations of this PR again\n"+
		"- `@%[1]s build ATTR…`: build these attributes at the merged head\n"+
		"- `@%[1]s test ATTR…`: build the `passthru.tests` of these attributes\n"+
		"- `@%[1]s diff ATTR…`: compare these attributes' base and head outputs with diffoscope\n"+
		"- `@%[1]s eval`: evaluate the head again, ignoring the cache\n"+
		"- `@%[1]s merge [message]`: merge the PR when its checks succeeded\n"+
		"- `@%[1]s review`: post the full report as a review\n"+
		"- `@%[1]s help`: this text\n", name)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
