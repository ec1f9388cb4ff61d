package report

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

func TestMdCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "`hello`"},
		{"a`b", "``a`b``"},
		{"a``b`", "``` a``b` ```"},
		{"`start", "`` `start ``"},
		{"two\nlines", "`two lines`"},
		{"", "` `"},
	}
	for _, tt := range tests {
		if got := mdCode(tt.in); got != tt.want {
			t.Errorf("mdCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := mdCell("a|b"); got != "`a\\|b`" {
		t.Errorf("mdCell: %q", got)
	}
	if got := mdFence("x\n````y\n"); got != "`````" {
		t.Errorf("mdFence: %q", got)
	}
}

// outsideCode returns the Markdown md without its code spans and fenced
// code blocks, read as CommonMark reads them: a span ends at the next run
// of exactly as many backticks as opened it; a block at a fence line at
// least as long as its opening one.
func outsideCode(md string) string {
	var out strings.Builder
	lines := strings.SplitAfter(md, "\n")
	fenceRe := regexp.MustCompile("^ *(`{3,})")
	for i := 0; i < len(lines); i++ {
		if m := fenceRe.FindStringSubmatch(lines[i]); m != nil {
			for i++; i < len(lines); i++ {
				if c := fenceRe.FindStringSubmatch(lines[i]); c != nil && len(c[1]) >= len(m[1]) && strings.TrimSpace(lines[i]) == c[1] {
					break
				}
			}
			continue
		}
		line := lines[i]
		for len(line) > 0 {
			j := strings.IndexByte(line, '`')
			if j < 0 {
				out.WriteString(line)
				break
			}
			out.WriteString(line[:j])
			n := leadingRun(line[j:], '`')
			rest := line[j+n:]
			closed := false
			for k := 0; k < len(rest); {
				if rest[k] != '`' {
					k++
					continue
				}
				m := leadingRun(rest[k:], '`')
				if m == n {
					line, closed = rest[k+m:], true
					break
				}
				k += m
			}
			if !closed { // a lone run of backticks is text
				out.WriteString(line[j : j+n])
				line = rest
			}
		}
	}
	return out.String()
}

// Names, positions, messages, refs and logs from a PR cannot bring
// mentions, images, links or HTML into what basinix posts: all of it is
// inside code that nothing in it can end.
func TestNoMarkdownInjection(t *testing.T) {
	evil := "x`@octocat `` @octocat ![i](https://evil.example/i.png) <img src=x> [l](https://evil.example)`"
	logFile := filepath.Join(t.TempDir(), "evil.log")
	if err := os.WriteFile(logFile, []byte("building\n```\n</details>\n@octocat ![i](https://evil.example/i.png)\n````\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &System{RebuildLabel: "1-10", Attrs: map[string]*AttrEntry{
		evil:         {Change: eval.Added, Verdict: NewFailing, Head: build.Failure, Position: "pkgs/" + evil + "/default.nix:3", Log: logFile},
		"dep" + evil: {Change: eval.Changed, Verdict: NewlyFailing, Head: build.DependencyFailed, FailedDependency: "/nix/store/00000000000000000000000000000000-x.drv", FailingSince: "abc123def456 \"" + evil + "\" on master", Message: evil},
		"still":      {Change: eval.Changed, Verdict: StillFailing, Head: build.Failure, FailingSince: "c1 " + evil},
		"ok" + evil:  {Change: eval.Changed, Verdict: StillSucceeding, Head: build.Success, Tests: map[string]*TestEntry{evil: {Head: build.Failure}}},
	},
		EvalErrors:  []ErrorEntry{{Attr: evil, Message: evil, File: "pkgs/" + evil, Line: 2}},
		AliasErrors: []ErrorEntry{{Attr: evil, Message: evil}},
	}
	r := &Report{Base: Ref{Ref: "master`@octocat"}, Head: Ref{Ref: "pr`![i](https://evil.example/i.png)"},
		Systems: map[string]*System{"x86_64-linux": s}}
	var md strings.Builder
	if err := WriteMarkdown(&md, r, MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	requested := RequestedCheckRun([]BuiltAttr{{Attr: evil, Message: evil + " | col"}}, MarkdownOptions{})
	for name, text := range map[string]string{
		"review":          md.String(),
		"eval check run":  EvalCheckRun(r, "").Summary,
		"build check run": BuildCheckRun(r, "x86_64-linux", MarkdownOptions{}, "").Summary,
		"requested":       requested.Summary,
	} {
		rest := outsideCode(text)
		for _, bad := range []string{"@octocat", "evil.example", "<img", "</details>\n@"} {
			if strings.Contains(rest, bad) {
				t.Errorf("%s: %q outside code:\n%s", name, bad, text)
			}
		}
	}
	for _, line := range strings.Split(requested.Summary, "\n")[2:] {
		if line == "" {
			continue
		}
		if cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); cells != 4 {
			t.Errorf("requested table row with %d separators: %s", cells, line)
		}
	}
}
