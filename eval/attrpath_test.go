package eval

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// isPlainName is the regular expression it replaces.
func TestIsPlainName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)
	const alphabet = "aZ_0'-9.\" $é"
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(6))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := isPlainName(string(b)), re.MatchString(string(b)); got != want {
			t.Fatalf("isPlainName(%q) = %v, want %v", b, got, want)
		}
	}
}
