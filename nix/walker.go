package nix

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A walker is a nix-instantiate process over expr/walker.nix: it walks
// attributes of a package set (or a flake's jobs) and prints a record for
// each finished one on stderr, as "trace: NONCE [records]" lines; a held
// walker then reads requests from a named pipe, and a limits file stops
// a round early at a group boundary. This file is the process and that
// protocol; what to walk, in what order and what to make of the records
// is the caller's (package eval).

// CmdRunner runs Nix commands; *Runner is one.
type CmdRunner interface {
	Run(ctx context.Context, cmd Cmd) (*Result, error)
}

// WalkerSpec says what one walker process walks.
type WalkerSpec struct {
	Expr string // the walker expression (WriteWalker)
	Dir  string // where the process's own directory of files is made
	// Src is the checkout (or a flake's copy in the store) the walker
	// imports; Readable are the other paths it may read (a flake's
	// locked inputs). Nothing else is readable (restrict-eval).
	Src      string
	Readable []string
	System   string
	Config   string // the package set's config, a Nix expression
	Flake    string // a FlakeSpec as JSON: walk the flake's jobs
	Mode     string // "walk" or "details"
	Strict   bool   // no tryEval: a throw kills the process with its message
	Write    bool   // write the .drv files of the derivations it forces
	Batch    int    // top-level attributes a line
	Fine     int    // the first Fine paths of an explicit list report one by one
	// Fast walks groups under one tryEval (see expr/walker.nix; it
	// applies to a walk that is not Strict): less CPU, but a death tryEval
	// cannot catch in a drvPath or outPath is not named by the trace.
	Fast bool
	// Chunks > 0: the process walks the top-level names whose hash mod
	// Chunks is Chunk, and names them in its first record; otherwise it
	// walks Paths.
	Chunk, Chunks int
	Paths         [][]string
	// Hold keeps the process after its walk, reading requests (when the
	// machine has named pipes: see Walker.Held).
	Hold   bool
	Env    []string
	Limits Limits // MaxLine is the protocol's (MaxWalkerLine)
}

// RecordKind is the kind of a walker record.
type RecordKind byte

// The records (see expr/walker.nix).
const (
	RecordImported RecordKind = 'c' // the set evaluated; Names: the chunk's top-level names, nil for a list
	RecordDrv      RecordKind = 'd' // Path is a derivation: DrvPath, OutPath ("" when it fails)
	RecordThrow    RecordKind = 'x' // tryEval failed; DrvPath: the derivation with aliases on, "" when none
	RecordRecurse  RecordKind = 'r' // Path is a recursed set: its children Names follow in this order
	RecordNone     RecordKind = 'n' // Path is neither (or another walker's, or a cycle)
	RecordDetails  RecordKind = 'i' // details mode: Details of Path
	RecordWaiting  RecordKind = 'w' // held: done with the round, reading the next request
)

// WalkRecord is one record of a walker.
type WalkRecord struct {
	Kind    RecordKind
	Path    []string
	Names   []string
	DrvPath string
	OutPath string
	Details *WalkDetails
}

// WalkDetails is the body of an "i" record.
type WalkDetails struct {
	Name   *string            `json:"name"`
	Out    map[string]*string `json:"out"`
	Pos    *string            `json:"pos"`
	Broken bool               `json:"broken"`
	Sup    bool               `json:"sup"`
	Feat   []string           `json:"feat"`
	Maint  []string           `json:"maint"`
	Tests  map[string]*string `json:"tests"`
}

// WalkRequest is what a held walker is asked: to walk Paths, or give their
// details, in the set with aliases on or off.
type WalkRequest struct {
	Mode    string     `json:"mode"`
	Aliases bool       `json:"aliases"`
	Paths   [][]string `json:"paths"`
	Fine    int        `json:"fine"`
	Fast    bool       `json:"fast"`
}

// WalkerHooks are what the caller hears of a running walker.
type WalkerHooks struct {
	// Records gets each line of records, in order; err is set for a line
	// that breaks the protocol (bad JSON, an unknown record, a line longer
	// than MaxWalkerLine), after which nothing it says can be trusted.
	Records func(recs []WalkRecord, err error)
	// Waiting says the process waits for a request: its silence is not
	// counted then.
	Waiting func() bool
	// OnMemory sees the process's resident memory, ten times a second.
	OnMemory func(rss int64)
}

// MaxWalkerLine bounds one line of walker records (256 top-level
// attributes with their children's names): what basinix holds of it.
const MaxWalkerLine = 64 << 20

// ErrWalkerLineTooLong says a walker line passed MaxWalkerLine: the
// package set has attribute names too long or sets too large to report.
var ErrWalkerLineTooLong = fmt.Errorf("the walker's record line is longer than %d MiB: attribute names too long, or attribute sets too large", MaxWalkerLine>>20)

// ErrWalkerExited says a held walker was gone when a request was sent.
var ErrWalkerExited = errors.New("walker process exited")

// Walker is a running walker process.
type Walker struct {
	nonce  string
	pipe   string // the request pipe, "" when the process exits after its walk
	limits string // the file that stops a round early
	done   chan struct{}
	res    *Result // set before done is closed
	err    error   // likewise
}

// StartWalker starts a walker process for spec; it runs until it exits,
// is told to (Send nil) or ctx ends. Its files live in a directory of
// their own, the only one of them Nix may read: package code cannot list
// or read another walker's pipe, and the names give nothing away.
func StartWalker(ctx context.Context, run CmdRunner, spec WalkerSpec, h WalkerHooks) (*Walker, error) {
	w := &Walker{nonce: randomNonce(), done: make(chan struct{})}
	dir, err := os.MkdirTemp(spec.Dir, "walk-")
	if err != nil {
		return nil, fmt.Errorf("walker files: %w", err)
	}
	args, err := w.args(spec, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	lim := spec.Limits
	lim.MaxLine = MaxWalkerLine
	go func() {
		defer close(w.done)
		defer os.RemoveAll(dir)
		w.res, w.err = run.Run(ctx, Cmd{
			Program:      "nix-instantiate",
			Args:         args,
			Env:          append(UntrustedEvalEnv(), spec.Env...),
			Limits:       lim,
			OnStderrLine: w.onLine(h.Records),
			Waiting:      h.Waiting,
			OnMemory:     h.OnMemory,
		})
	}()
	return w, nil
}

// args writes the process's files into dir and returns its arguments.
func (w *Walker) args(spec WalkerSpec, dir string) ([]string, error) {
	args := append([]string{"--eval", "--strict", "--show-trace"},
		UntrustedEvalArgs(append([]string{spec.Src, filepath.Dir(spec.Expr), dir}, spec.Readable...)...)...)
	args = append(args,
		spec.Expr,
		"--argstr", "src", spec.Src,
		"--argstr", "system", spec.System,
		"--arg", "config", spec.Config,
		"--argstr", "nonce", w.nonce,
		"--argstr", "mode", spec.Mode,
		"--arg", "strict", strconv.FormatBool(spec.Strict),
		"--arg", "batch", strconv.Itoa(spec.Batch),
		"--arg", "fine", strconv.Itoa(spec.Fine),
		"--arg", "fast", strconv.FormatBool(spec.Fast),
	)
	if spec.Flake != "" {
		args = append(args, "--argstr", "flake", spec.Flake)
	}
	if spec.Write {
		args = append(args, "--read-write-mode")
	}
	if spec.Chunks > 0 {
		args = append(args, "--arg", "chunk", strconv.Itoa(spec.Chunk), "--arg", "chunks", strconv.Itoa(spec.Chunks))
	} else {
		f := filepath.Join(dir, "paths.json")
		if err := writeNewJSON(f, spec.Paths); err != nil {
			return nil, fmt.Errorf("write attribute list: %w", err)
		}
		args = append(args, "--argstr", "pathsFile", f)
	}
	if !spec.Hold {
		return args, nil
	}
	pipe, limits := filepath.Join(dir, "requests"), filepath.Join(dir, "limits.json")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		// No pipes here: the process exits after its walk, as a walker
		// that cannot wait does.
		return args, nil
	}
	if err := os.WriteFile(limits, []byte(`{"round":-1,"limit":0}`), 0o600); err != nil {
		return nil, fmt.Errorf("walker limits: %w", err)
	}
	w.pipe, w.limits = pipe, limits
	return append(args, "--argstr", "requests", pipe, "--argstr", "limits", limits), nil
}

// onLine takes the walker's lines from stderr and hands their records to
// records; the others stay in the tail.
func (w *Walker) onLine(records func([]WalkRecord, error)) func([]byte, bool) bool {
	prefix := []byte("trace: " + w.nonce + " ")
	return func(line []byte, cut bool) bool {
		body, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			return false
		}
		if cut {
			records(nil, ErrWalkerLineTooLong)
			return true
		}
		records(ParseWalkLine(body))
		return true
	}
}

// Held says whether the process waits for requests after its walk.
func (w *Walker) Held() bool { return w.pipe != "" }

// Done is closed when the process has exited.
func (w *Walker) Done() <-chan struct{} { return w.done }

// Err is how the process ended (Runner.Run's error), once Done is closed.
func (w *Walker) Err() error { return w.err }

// Marked returns the path the walker's error context names in a dead
// process's trace ("… NONCE [json path]"), nil when there is none (a
// kill, or a trace cut short): the first one, which is the innermost.
// Valid once Done is closed.
func (w *Walker) Marked() []string {
	if w.res == nil {
		return nil
	}
	return markedPath(w.res.StderrTail, w.nonce)
}

// markedPath returns the first path a trace names after "… NONCE ".
func markedPath(stderr []byte, nonce string) []string {
	marker := []byte("… " + nonce + " ")
	for line := range bytes.Lines(stderr) {
		_, body, ok := bytes.Cut(ansiRe.ReplaceAll(line, nil), marker)
		if !ok {
			continue
		}
		var p []string
		if json.Unmarshal(bytes.TrimSpace(body), &p) == nil && len(p) > 0 {
			return p
		}
	}
	return nil
}

// Limit stops the walker's round number round (0 the walk, then each
// request's) before the group that starts at the k-th top-level path: the
// walker reads the file before each group.
func (w *Walker) Limit(round, k int) error {
	if w.limits == "" {
		return errors.New("walker: not held, no limits file")
	}
	tmp := w.limits + ".new"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf(`{"round":%d,"limit":%d}`, round, k)), 0o600); err != nil {
		return fmt.Errorf("walker limits: %w", err)
	}
	if err := os.Rename(tmp, w.limits); err != nil {
		return fmt.Errorf("walker limits: %w", err)
	}
	return nil
}

// Send writes one request into the held process's pipe, as soon as it
// opened it; nil tells it to exit.
func (w *Walker) Send(ctx context.Context, req *WalkRequest) error {
	data := []byte("null")
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return fmt.Errorf("walker request: %w", err)
		}
	}
	if w.pipe == "" {
		return ErrWalkerExited
	}
	for {
		fd, err := syscall.Open(w.pipe, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			if err := syscall.SetNonblock(fd, false); err != nil {
				syscall.Close(fd)
				return fmt.Errorf("walker request pipe: %w", err)
			}
			f := os.NewFile(uintptr(fd), w.pipe)
			_, werr := f.Write(data)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("walker request: %w", werr)
			}
			return nil
		}
		if !errors.Is(err, syscall.ENXIO) {
			return fmt.Errorf("walker request pipe: %w", err)
		}
		// Not opened for reading yet.
		select {
		case <-w.done:
			return ErrWalkerExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// ParseWalkLine parses the body of one walker line (after the nonce): a
// JSON list of records.
func ParseWalkLine(body []byte) ([]WalkRecord, error) {
	raw, err := splitRecords(body)
	if err != nil {
		return nil, fmt.Errorf("walker line %q: bad JSON", cutText(string(body), 120))
	}
	out := make([]WalkRecord, 0, len(raw))
	for _, rec := range raw {
		r, err := parseRecord(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// parseRecord parses one record.
func parseRecord(rec []json.RawMessage) (WalkRecord, error) {
	if len(rec) >= 1 && string(rec[0]) == `"w"` {
		return WalkRecord{Kind: RecordWaiting}, nil
	}
	if len(rec) < 2 {
		return WalkRecord{}, fmt.Errorf("walker record %s: too short", rec)
	}
	kind, _ := decodeString(rec[0])
	if kind == "c" {
		names, err := decodeStrings(rec[1])
		if err != nil {
			names = nil
		}
		return WalkRecord{Kind: RecordImported, Names: names}, nil
	}
	path, err := decodeStrings(rec[1])
	if err != nil || path == nil {
		return WalkRecord{}, fmt.Errorf("walker record %s: bad path", rec[1])
	}
	r := WalkRecord{Path: path}
	p := pathText(path)
	switch kind {
	case "d":
		r.Kind = RecordDrv
		if len(rec) < 3 {
			return r, fmt.Errorf("walker record for %s: bad drvPath", p)
		}
		if r.DrvPath, err = decodeString(rec[2]); err != nil {
			return r, fmt.Errorf("walker record for %s: bad drvPath", p)
		}
		if len(rec) >= 4 {
			r.OutPath, _ = decodeString(rec[3]) // null: unknown
		}
	case "x":
		r.Kind = RecordThrow
		if len(rec) >= 3 {
			r.DrvPath, _ = decodeString(rec[2])
		}
	case "r":
		r.Kind = RecordRecurse
		if len(rec) < 3 {
			return r, fmt.Errorf("walker record for %s: bad names", p)
		}
		if r.Names, err = decodeStrings(rec[2]); err != nil || r.Names == nil {
			return r, fmt.Errorf("walker record for %s: bad names", p)
		}
	case "i":
		r.Kind = RecordDetails
		r.Details = &WalkDetails{}
		if len(rec) < 3 || json.Unmarshal(rec[2], r.Details) != nil {
			return r, fmt.Errorf("walker record for %s: bad details", p)
		}
	case "n":
		r.Kind = RecordNone
	default:
		return r, fmt.Errorf("walker record of kind %q: unknown", kind)
	}
	return r, nil
}

// pathText is an attribute path for a message.
func pathText(p []string) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// writeNewJSON writes v as JSON to a new file.
func writeNewJSON(name string, v any) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// randomNonce is a walker's nonce: package code cannot forge records
// without it.
func randomNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
