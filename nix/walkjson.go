package nix

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The walker prints some 20,000 records an evaluation; decoding them with
// encoding/json alone cost 50 ms of CPU a walk, next to Nix on the same
// cores. The helpers here split a line into its records and decode the
// plain strings that make up nearly all of them, and leave everything
// else (escapes, objects) to encoding/json, so the result is the same.

var errBadJSON = errors.New("bad JSON")

// splitRecords splits a line, a JSON list of lists, into the elements of
// each inner list, as raw JSON that shares the line's memory.
func splitRecords(line []byte) ([][]json.RawMessage, error) {
	l := &lite{b: line}
	var out [][]json.RawMessage
	if !l.next('[') {
		return nil, errBadJSON
	}
	if l.next(']') {
		return out, l.end()
	}
	for {
		if !l.next('[') {
			return nil, errBadJSON
		}
		var rec []json.RawMessage
		if !l.next(']') {
			for {
				v, err := l.value()
				if err != nil {
					return nil, err
				}
				rec = append(rec, v)
				if l.next(']') {
					break
				}
				if !l.next(',') {
					return nil, errBadJSON
				}
			}
		}
		out = append(out, rec)
		if l.next(']') {
			return out, l.end()
		}
		if !l.next(',') {
			return nil, errBadJSON
		}
	}
}

// lite is a position in a line of JSON.
type lite struct {
	b []byte
	i int
}

func (l *lite) space() {
	for l.i < len(l.b) && (l.b[l.i] == ' ' || l.b[l.i] == '\t' || l.b[l.i] == '\n' || l.b[l.i] == '\r') {
		l.i++
	}
}

// next consumes c (after white space) if it comes next.
func (l *lite) next(c byte) bool {
	l.space()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

func (l *lite) end() error {
	l.space()
	if l.i != len(l.b) {
		return errBadJSON
	}
	return nil
}

// value skips one JSON value and returns its bytes. Strings, nesting and
// literals are delimited here; what they hold is checked when decoded.
func (l *lite) value() (json.RawMessage, error) {
	l.space()
	start := l.i
	if l.i >= len(l.b) {
		return nil, errBadJSON
	}
	switch l.b[l.i] {
	case '"':
		if !l.skipString() {
			return nil, errBadJSON
		}
	case '[', '{':
		depth := 0
	nested:
		for l.i < len(l.b) {
			switch l.b[l.i] {
			case '"':
				if !l.skipString() {
					return nil, errBadJSON
				}
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			}
			l.i++
			if depth == 0 {
				break nested
			}
		}
		if depth != 0 {
			return nil, errBadJSON
		}
	default:
		for l.i < len(l.b) && isLiteral(l.b[l.i]) {
			l.i++
		}
		if l.i == start {
			return nil, errBadJSON
		}
	}
	return l.b[start:l.i], nil
}

func isLiteral(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.'
}

// skipString skips a string starting at the quote under l.i.
func (l *lite) skipString() bool {
	for l.i++; l.i < len(l.b); l.i++ {
		switch l.b[l.i] {
		case '\\':
			l.i++
		case '"':
			l.i++
			return true
		}
	}
	return false
}

// decodeString decodes a JSON string; plain ones (no escapes, valid UTF-8)
// without encoding/json.
func decodeString(raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		body := raw[1 : len(raw)-1]
		if bytes.IndexByte(body, '\\') < 0 && bytes.IndexByte(body, '"') < 0 && utf8.Valid(body) && !hasControl(body) {
			return string(body), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// decodeStrings decodes a JSON list of strings, or null (a nil list).
func decodeStrings(raw json.RawMessage) ([]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	l := &lite{b: raw}
	if !l.next('[') {
		return nil, errBadJSON
	}
	out := []string{}
	if l.next(']') {
		return out, l.end()
	}
	for {
		v, err := l.value()
		if err != nil {
			return nil, err
		}
		s, err := decodeString(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if l.next(']') {
			return out, l.end()
		}
		if !l.next(',') {
			return nil, errBadJSON
		}
	}
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}
