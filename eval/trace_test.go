package eval

import "testing"

func TestTracedMember(t *testing.T) {
	trace := "error: undefined variable 'notInScope'\n       … while evaluating the attribute 'deps' of the derivation 'x'\n" +
		"       … while evaluating the attribute '\x1b[35;1mevalbreaks\x1b[0m'\n       … while evaluating the attribute 'requests'\n"
	tests := []struct {
		name  string
		group []Path
		want  int
	}{
		{"one member named", []Path{{"hello"}, {"evalbreaks"}, {"zlib"}}, 1},
		{"none named", []Path{{"hello"}, {"zlib"}}, -1},
		{"two named: ambiguous", []Path{{"evalbreaks"}, {"deps"}}, -1},
		{"nested: every component must be named", []Path{{"python3Packages", "requests"}, {"hello"}}, -1},
		{"nested: last component alone is not enough", []Path{{"pkgs", "evalbreaks"}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tracedMember([]byte(trace), tt.group); got != tt.want {
				t.Errorf("tracedMember = %d, want %d", got, tt.want)
			}
		})
	}
}
