package eval

import (
	"fmt"
	"slices"
	"strings"
)

// Path is an attribute path, one element per attribute name:
// python3Packages.requests is Path{"python3Packages", "requests"}.
// Names may hold any character; they reach Nix only as JSON data.
type Path []string

// isPlainName says whether n is a Nix identifier, [A-Za-z_][A-Za-z0-9_'-]*
// (by hand: String runs for every attribute of an evaluation).
func isPlainName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '\'' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Equal says whether q is the same path.
func (p Path) Equal(q Path) bool { return slices.Equal(p, q) }

// String renders the path as Nix writes it, quoting the names that need it:
// python3Packages."foo.bar". The rendering is one-to-one, so it is also the
// key basinix stores and reports attributes under.
func (p Path) String() string {
	var b strings.Builder
	for i, n := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		if isPlainName(n) && !nixKeyword[n] {
			b.WriteString(n)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(n); j++ {
			switch c := n[j]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '$' && j+1 < len(n) && n[j+1] == '{':
				b.WriteString(`\$`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

var nixKeyword = map[string]bool{
	"if": true, "then": true, "else": true, "assert": true, "with": true,
	"let": true, "in": true, "rec": true, "inherit": true, "or": true,
}

// ErrBadPath is returned by ParsePath for anything that is not an attribute path.
var ErrBadPath = fmt.Errorf("not an attribute path")

// ParsePath reads an attribute path as String writes it: names separated by
// dots, each a plain Nix identifier or a double-quoted string without
// interpolation. Anything else (spaces, semicolons, "$(…)" outside quotes,
// backticks) is ErrBadPath.
func ParsePath(s string) (Path, error) {
	if s == "" || len(s) > 1024 {
		return nil, fmt.Errorf("%q: %w", truncate(s, 80), ErrBadPath)
	}
	var p Path
	for i := 0; i < len(s); {
		if s[i] == '"' {
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				c := s[j]
				if c == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				if c == '$' && j+1 < len(s) && s[j+1] == '{' {
					return nil, fmt.Errorf("%q: interpolation: %w", truncate(s, 80), ErrBadPath)
				}
				b.WriteByte(c)
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%q: unterminated quote: %w", truncate(s, 80), ErrBadPath)
			}
			p = append(p, b.String())
			i = j + 1
		} else {
			j := i
			for j < len(s) && s[j] != '.' {
				j++
			}
			name := s[i:j]
			if !isPlainName(name) {
				return nil, fmt.Errorf("%q: bad name %q: %w", truncate(s, 80), truncate(name, 40), ErrBadPath)
			}
			p = append(p, name)
			i = j
		}
		if i < len(s) {
			if s[i] != '.' || i == len(s)-1 {
				return nil, fmt.Errorf("%q: %w", truncate(s, 80), ErrBadPath)
			}
			i++
		}
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
