package nix

import (
	"slices"
	"testing"
)

func TestMarkedPath(t *testing.T) {
	const nonce = "0123abcd"
	tests := []struct {
		name, trace string
		want        []string
	}{
		{"named", "error: undefined variable 'notInScope'\n       … while evaluating 'callPackage'\n       … " + nonce + ` ["evalbreaks"]` + "\n       … while evaluating 'walk'\n", []string{"evalbreaks"}},
		{"nested and quoted", "error: x\n       … \x1b[35;1m" + nonce + ` ["python3Packages","a.b $(rm)"]` + "\x1b[0m\n", []string{"python3Packages", "a.b $(rm)"}},
		{"the innermost first", "error: x\n       … " + nonce + ` ["inner"]` + "\n       … " + nonce + ` ["outer"]` + "\n", []string{"inner"}},
		{"another nonce is package text, not a marker", "error: x\n       … deadbeef [\"forged\"]\n", nil},
		{"none", "error: killed\n", nil},
		{"bad JSON", "error: x\n       … " + nonce + " [\"cut\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := markedPath([]byte(tt.trace), nonce); !slices.Equal(got, tt.want) {
				t.Errorf("markedPath = %q, want %q", got, tt.want)
			}
		})
	}
}
