package nix

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLineReader(t *testing.T) {
	type line struct {
		Text string
		Cut  bool
	}
	long := strings.Repeat("x", 200<<10) // longer than the reader's buffer too
	tests := []struct {
		name  string
		input string
		max   int
		want  []line
	}{
		{"short lines", "a\nbb\n", 10, []line{{"a", false}, {"bb", false}}},
		{"last line without newline", "a\nbb", 10, []line{{"a", false}, {"bb", false}}},
		{"empty lines", "\n\na\n", 10, []line{{"", false}, {"", false}, {"a", false}}},
		{"exactly max", "abcd\n", 4, []line{{"abcd", false}}},
		{"one over max", "abcde\nf\n", 4, []line{{"abcd", true}, {"f", false}}},
		{"a line far over the buffer is cut to max, the next one intact", long + "\nnext\n", 1 << 10,
			[]line{{long[:1<<10], true}, {"next", false}}},
		{"cut last line without newline", long, 8, []line{{long[:8], true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			lr := newLineReader(strings.NewReader(tt.input), tt.max, func() { reads++ })
			var got []line
			for {
				l, cut, err := lr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line{string(l), cut})
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("lines (-want +got):\n%s", d)
			}
			if reads == 0 {
				t.Error("onRead was never called")
			}
		})
	}
}
