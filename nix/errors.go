package nix

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Error is a failed Nix command: the message Nix printed and the positions
// it named, innermost first.
type Error struct {
	Op        string // the program, e.g. "nix-instantiate"
	Message   string // the error message without the "error: " prefix
	Positions []Position
	ExitCode  int
	Kill      Kill // set when basinix ended the process
	// Signal is set when a signal basinix did not send ended the process.
	Signal syscall.Signal
	// Stderr is the tail of what the process printed, for MachineFault.
	Stderr string
}

// machineFaults are what Nix says when the machine, not the code it
// evaluates or builds, is at fault: its store, its disk, its daemon, its
// limits. Each is matched against Nix's stderr in the wording of the
// system calls and of SQLite, which no Nix version rephrases. Code that
// quotes them in a throw passes for a machine fault: its review is then
// retried and ends as an infrastructure error, which gains it nothing.
var machineFaults = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`SQLite database '[^']*' is busy|database is locked|database disk image is malformed`), "the Nix store database is busy or damaged"},
	{regexp.MustCompile(`Read-only file system`), "the Nix store is on a read-only file system"},
	{regexp.MustCompile(`No space left on device|Disk quota exceeded`), "no space left on the device"},
	{regexp.MustCompile(`cannot connect to (socket|daemon)|daemon-socket[^\n]*(Connection refused|No such file)|unexpected end-of-file`), "the Nix daemon cannot be reached"},
	{regexp.MustCompile(`'/nix/(store|var)[^']*': Permission denied|Permission denied[^\n]*/nix/(store|var)`), "basinix may not write to the Nix store"},
	{regexp.MustCompile(`Too many open files|Cannot allocate memory|Resource temporarily unavailable|unable to fork|cannot fork`), "the machine is out of resources (processes, files or memory)"},
}

// MachineFault says why the error is the machine's fault and not a result
// of the code Nix evaluated or built, "" when it is not: the store
// database busy or read-only, no space left, the daemon unreachable, the
// store not writable, resources exhausted, or a signal basinix did not
// send. Such an error is never remembered as a package's result.
func (e *Error) MachineFault() string {
	if e.Signal != 0 {
		return fmt.Sprintf("the process was killed by signal %d (%s), which basinix did not send", int(e.Signal), e.Signal)
	}
	if e.Kill != KillNone {
		return "" // basinix's own limits: the code's doing
	}
	text := e.Stderr
	if text == "" {
		text = e.Message
	}
	for _, f := range machineFaults {
		if f.re.MatchString(text) {
			return f.what
		}
	}
	return ""
}

// Position is a place in a Nix file.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	if p.Column > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

func (e *Error) Error() string {
	if len(e.Positions) > 0 {
		return fmt.Sprintf("%s: %s at %s", e.Op, e.Message, e.Positions[0])
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Message)
}

// PositionUnder returns the innermost position inside root, made relative to
// it, and false when Nix named no place there.
func (e *Error) PositionUnder(root string) (Position, bool) {
	root = strings.TrimSuffix(root, "/") + "/"
	for _, p := range e.Positions {
		if rel, ok := strings.CutPrefix(p.File, root); ok {
			p.File = rel
			return p, true
		}
	}
	return Position{}, false
}

var (
	// "at /path/file.nix:12:5:" (2.8) and "at /path/file.nix:12:5: (source not available)".
	posRe = regexp.MustCompile(`^\s*at (/[^:]+):(\d+):(\d+):`)
	// "whose name attribute is located at /path/file.nix:3:5" (newer Nix).
	locatedRe = regexp.MustCompile(`located at (/[^:]+):(\d+):(\d+)`)
	// "anonymous function at /path/package.nix:1:1 called without required
	// argument 'x'" (Nix 2.8): the function is the package's definition,
	// where a reviewer looks, not the callPackage that called it.
	calledRe = regexp.MustCompile(`function at (/[^:]+):(\d+):(\d+) called`)
	// nixpkgs' own abort for it: "Function called without required
	// argument "x" at /path/package.nix" names the file, no line: the
	// function's head, where its arguments are, is its first line.
	callPackageRe = regexp.MustCompile(`without required argument "[^"]*" at (/[^\s,']+\.nix)`)
	ansiRe        = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// ParseError reads Nix's stderr. It understands Nix 2.8's layout (the error
// line first, then its position, then the trace innermost first) and the
// layout of newer Nix (a bare "error:" line, the trace outermost first, the
// error last). The returned Error has Message and Positions set, innermost
// first; Op and ExitCode are left to the caller.
func ParseError(stderr []byte) *Error {
	text := ansiRe.ReplaceAllString(string(stderr), "")
	lines := strings.Split(text, "\n")
	first := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "error:") {
			first = i
			break
		}
	}
	e := &Error{}
	if first < 0 {
		return e
	}
	lines = lines[first:]
	newLayout := strings.TrimSpace(strings.TrimPrefix(lines[0], "error:")) == ""
	msgStart := 0
	if newLayout {
		// The real error is the last "error: ..." line, indented.
		for i := len(lines) - 1; i > 0; i-- {
			if strings.HasPrefix(strings.TrimSpace(lines[i]), "error: ") {
				msgStart = i
				break
			}
		}
	}
	e.Message = messageFrom(lines[msgStart:])
	if m := calledRe.FindStringSubmatch(e.Message); m != nil {
		e.Positions = append(e.Positions, position(m))
	} else if m := callPackageRe.FindStringSubmatch(e.Message); m != nil {
		e.Positions = append(e.Positions, Position{File: m[1], Line: 1})
	}
	for _, l := range lines {
		if m := posRe.FindStringSubmatch(l); m != nil {
			e.Positions = append(e.Positions, position(m))
		} else if m := locatedRe.FindStringSubmatch(l); m != nil {
			e.Positions = append(e.Positions, position(m))
		}
	}
	if newLayout {
		// Outermost first there: turn it around, but the error's own
		// position (printed after the message) is the innermost of all.
		var own []Position
		for _, l := range lines[msgStart:] {
			if m := posRe.FindStringSubmatch(l); m != nil {
				own = append(own, position(m))
				break
			}
		}
		rest := e.Positions
		if len(own) > 0 && len(rest) > 0 {
			rest = rest[:len(rest)-1]
		}
		for i, j := 0, len(rest)-1; i < j; i, j = i+1, j-1 {
			rest[i], rest[j] = rest[j], rest[i]
		}
		e.Positions = append(own, rest...)
	}
	return e
}

// messageFrom joins the error line with its continuation lines, up to the
// first blank line, position or trace line.
func messageFrom(lines []string) string {
	msg := strings.TrimPrefix(strings.TrimSpace(lines[0]), "error:")
	parts := []string{strings.TrimSpace(msg)}
	for _, l := range lines[1:] {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "at ") || strings.HasPrefix(t, "…") ||
			strings.HasPrefix(t, "(use '--show-trace'") || strings.HasPrefix(t, "error:") {
			break
		}
		parts = append(parts, t)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

func position(m []string) Position {
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	return Position{File: m[1], Line: line, Column: col}
}
