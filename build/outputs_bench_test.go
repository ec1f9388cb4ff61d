package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// twoOutputs writes two outputs of n files each in 100 directories, of
// 0.5–4.5 KiB, where one file in a hundred is changed, added or removed.
func twoOutputs(b *testing.B, n int) (base, head string) {
	b.Helper()
	base, head = b.TempDir(), b.TempDir()
	for i := range n {
		name := filepath.Join(fmt.Sprintf("d%02d", i%100), fmt.Sprintf("f%05d", i))
		body := strings.Repeat("x", 512+i%4096)
		write := func(root, body string) {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		switch i % 300 {
		case 0: // only in head
			write(head, body)
		case 100: // only in base
			write(base, body)
		case 200: // changed
			write(base, body)
			write(head, body[1:]+"y")
		default:
			write(base, body)
			write(head, body)
		}
	}
	return base, head
}

// DiffOutputs against `diff -rq` of the same trees, one after the other
// in one run: go test ./build -run '^$' -bench DiffOutputs
func BenchmarkDiffOutputs(b *testing.B) {
	n := 10_000
	base, head := twoOutputs(b, n)
	b.Run("basinix", func(b *testing.B) {
		for range b.N {
			d, err := DiffOutputs(map[string]string{"out": base}, map[string]string{"out": head}, DiffLimits{})
			if err != nil {
				b.Fatal(err)
			}
			if d.Added+d.Removed+d.Changed != 100 {
				b.Fatalf("diff: %+v", d)
			}
		}
	})
	b.Run("diff-rq", func(b *testing.B) {
		for range b.N {
			out, _ := exec.Command("diff", "-rq", base, head).Output()
			if got := strings.Count(string(out), "\n"); got != 100 {
				b.Fatalf("diff -rq: %d lines", got)
			}
		}
	})
}
