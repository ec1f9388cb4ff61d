// Package redact removes secrets from text that leaves basinix: check
// runs, comments and reviews on GitHub, web pages, served logs and basinix's
// own log. It stands alone because the GitHub client, the web server and the
// logger all pass their output through the same Redactor. It is the last
// line of defence, behind restricted evaluation and child environments that
// carry no secret: a build that prints the App's key (a sandbox-less builder
// can read it) must not publish it.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Replacement is what a secret is replaced by.
const Replacement = "[redacted]"

// minSecret is the shortest secret replaced literally: a shorter one would
// cut ordinary words out of every text.
const minSecret = 8

// patterns are secrets of any origin, whatever basinix knows of them:
// GitHub's tokens, JSON web tokens and PEM private keys.
// Each runs only on a text holding one of its literals: most text (a
// web page of megabytes) holds none, and is not scanned by regexps.
var patterns = []struct {
	re       *regexp.Regexp
	literals []string
}{
	{regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}`), []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
	{regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{20,}`), []string{"github_pat_"}},
	{regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`), []string{"eyJ"}},
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)`), []string{"PRIVATE KEY-----"}},
}

// A Redactor replaces the secrets it was given, in each of the forms they
// take in text (as they are, JSON-escaped, and for a PEM key each line of
// its body and the body joined), and every token or private key that
// patterns recognise. The zero value and nil replace patterns only. It is
// safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // guarded by mu; longest first
}

// New returns a Redactor for secrets; empty ones are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add adds a secret.
func (r *Redactor) Add(secret string) {
	secret = strings.TrimSpace(secret)
	if len(secret) < minSecret {
		return
	}
	forms := []string{secret}
	if j, err := json.Marshal(secret); err == nil {
		forms = append(forms, string(j[1:len(j)-1]))
	}
	var esc bytes.Buffer
	enc := json.NewEncoder(&esc)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		e := strings.TrimSpace(esc.String())
		forms = append(forms, e[1:len(e)-1])
	}
	if block, _ := pem.Decode([]byte(secret)); block != nil {
		body := base64.StdEncoding.EncodeToString(block.Bytes)
		forms = append(forms, body)
		for len(body) > 0 {
			n := min(64, len(body))
			forms = append(forms, body[:n])
			body = body[n:]
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range forms {
		if len(f) >= minSecret && !slices.Contains(r.secrets, f) {
			r.secrets = append(r.secrets, f)
		}
	}
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		for _, sec := range r.secrets {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, Replacement)
			}
		}
		r.mu.RUnlock()
	}
	for _, p := range patterns {
		if slices.ContainsFunc(p.literals, func(l string) bool { return strings.Contains(s, l) }) {
			s = p.re.ReplaceAllString(s, Replacement)
		}
	}
	return s
}

// Bytes returns b with every secret replaced (b itself when there is none).
func (r *Redactor) Bytes(b []byte) []byte {
	s := string(b)
	if out := r.String(s); out != s {
		return []byte(out)
	}
	return b
}

// maxLine bounds the line a Writer holds back while it waits for its end;
// a longer one is redacted in parts.
const maxLine = 256 << 10

// Writer returns a writer that redacts what it passes to w line by line
// (a secret is cut out even when it comes in several writes); Close
// passes on what is held back. Writes that end lines pass through at once.
func (r *Redactor) Writer(w io.Writer) io.WriteCloser { return &writer{r: r, w: w} }

type writer struct {
	r    *Redactor
	w    io.Writer
	held []byte
}

func (w *writer) Write(p []byte) (int, error) {
	w.held = append(w.held, p...)
	end := bytes.LastIndexByte(w.held, '\n') + 1
	if end == 0 && len(w.held) < maxLine {
		return len(p), nil
	}
	if end == 0 {
		end = len(w.held)
	}
	if _, err := w.w.Write(w.r.Bytes(w.held[:end])); err != nil {
		return 0, err
	}
	w.held = append(w.held[:0], w.held[end:]...)
	return len(p), nil
}

func (w *writer) Close() error {
	if len(w.held) == 0 {
		return nil
	}
	_, err := w.w.Write(w.r.Bytes(w.held))
	w.held = nil
	return err
}

// Each returns a writer that redacts each write on its own, for writers
// whose writes are whole records (zerolog writes one event a call).
func (r *Redactor) Each(w io.Writer) io.Writer { return eachWriter{r: r, w: w} }

type eachWriter struct {
	r *Redactor
	w io.Writer
}

func (e eachWriter) Write(p []byte) (int, error) {
	if _, err := e.w.Write(e.r.Bytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
