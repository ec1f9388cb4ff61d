package report

import "strings"

// Everything a package set or a PR author controls (attribute names,
// positions, messages, branch names, commit titles, logs) goes into the
// Markdown of check runs, reviews and comments through these functions:
// inside a code span or block, @mentions, links, images and HTML are plain
// text, and nothing in the text can end the span early.

// maxInline is the most characters of one name or message the Markdown
// shows: a 100 kB message would push everything after it out of a check
// run's 65,535 characters. The report's JSON and the web page have it whole.
const maxInline = 2000

// mdCode renders s as an inline code span: the fence is one backtick longer
// than the longest run of backticks in s, and padded with spaces when s
// starts or ends with a backtick (CommonMark). Line ends become spaces, as
// a span cannot hold them; past maxInline characters s is cut.
func mdCode(s string) string {
	s = cutRunes(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s), maxInline)
	if s == "" {
		return "` `"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdCell is mdCode for a table cell: GitHub splits a table's cells at "|"
// before it reads code spans, so a pipe is escaped even inside one (where
// "\|" shows as "|").
func mdCell(s string) string { return strings.ReplaceAll(mdCode(s), "|", `\|`) }

// mdFence returns the fence of a code block holding s: one backtick longer
// than the longest run of backticks at the start of one of its lines, at
// least three.
func mdFence(s string) string {
	n := 0
	for line := range strings.Lines(s) {
		n = max(n, leadingRun(strings.TrimLeft(line, " "), '`'))
	}
	return strings.Repeat("`", max(3, n+1))
}

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

func leadingRun(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}

// Code is mdCode for other packages' Markdown (comment replies): s as
// inline code that nothing in it can end.
func Code(s string) string { return mdCode(s) }

// CodeBlock returns s as a fenced code block that nothing in it can end.
func CodeBlock(s string) string {
	s = strings.TrimRight(s, "\n")
	fence := mdFence(s)
	return fence + "\n" + s + "\n" + fence + "\n"
}
