package handlers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommands(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Command
		errs int
	}{
		{"one", "@basinix rebuild", []Command{{Verb: "rebuild"}}, 0},
		{"two in one comment", "LGTM\n@basinix build hello python3Packages.requests\r\n@Basinix TEST hello\nthanks", []Command{
			{Verb: "build", Attrs: []string{"hello", "python3Packages.requests"}}, {Verb: "test", Attrs: []string{"hello"}}}, 0},
		{"merge with a message", "@basinix merge Thanks, merging!", []Command{{Verb: "merge", Message: "Thanks, merging!"}}, 0},
		{"merge without", "@basinix merge", []Command{{Verb: "merge"}}, 0},
		{"not at the start", "please @basinix rebuild", nil, 0},
		{"other bot", "@ofborg build hello", nil, 0},
		{"unknown verb", "@basinix deploy", nil, 1},
		{"shell after an attribute", "@basinix build foo; rm -rf /", nil, 1},
		{"command substitution", "@basinix build $(touch /tmp/x)", nil, 1},
		{"backticks", "@basinix build `touch /tmp/x`", nil, 1},
		{"quoted attribute", `@basinix build "foo bar"`, nil, 1},
		{"very long line", "@basinix build " + strings.Repeat("a.", 600) + "b", nil, 1},
		{"build without attributes", "@basinix build", nil, 1},
		{"rebuild with arguments", "@basinix rebuild now", nil, 1},
		{"mention alone", "@basinix", nil, 1},
		{"diff", "@basinix diff hello python3Packages.requests", []Command{{Verb: "diff", Attrs: []string{"hello", "python3Packages.requests"}}}, 0},
		{"diff of too many", "@basinix diff a b c d e f", nil, 1},
		{"diff with a shell", "@basinix diff hello|sh", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseCommands(tt.body, "basinix")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if len(errs) != tt.errs {
				t.Errorf("errors %v, want %d", errs, tt.errs)
			}
		})
	}
}

// What a reply echoes of a comment is quoted as code: a command line with a
// mention or a fence brings neither into basinix's reply.
func TestParseErrorsQuoteTheComment(t *testing.T) {
	for body, want := range map[string]string{
		"@basinix rebuild @octocat ![x](https://evil.example/x.png)": "`@basinix rebuild @octocat ![x](https://evil.example/x.png)`: rebuild takes no arguments",
		"@basinix ``@octocat``": "``` ``@octocat`` ``` is not a command",
		"@basinix build a`b":    "``a`b`` is not an attribute path",
	} {
		_, errs := ParseCommands(body, "basinix")
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("%q: errors %v, want %q", body, errs, want)
		}
	}
}
