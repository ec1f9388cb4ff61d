package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func BenchmarkPutExtras(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	key := EvalKey{Repo: "r", Commit: "c", System: "x86_64-linux"}
	if err := st.PutEvaluation(ctx, &EvalRecord{Key: key, Attrs: []byte("{}")}); err != nil {
		b.Fatal(err)
	}
	rows := map[string][]byte{}
	for i := 0; i < 2300; i++ {
		rows[fmt.Sprintf("pkg%05d", i)] = []byte(`{"name":"pkg-1.0","outputs":{"out":"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-pkg-1.0"},"position":"pkgs/generated/g0001.nix:4","supported":true}`)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.PutExtras(ctx, key, "details", rows); err != nil {
			b.Fatal(err)
		}
	}
}
