package review

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
)

// Uploading through basinix's queue against `nix copy --to` of the same
// paths to a fresh file:// cache, one after the other in one run:
//
//	BASINIX_UPLOAD_PATHS=200 go test ./review -run '^$' -bench Upload -benchtime 3x
func BenchmarkUpload(b *testing.B) {
	testenv.RequireNix(b)
	n := testenv.EnvInt("BASINIX_UPLOAD_PATHS", 100)
	nonce := filepath.Base(b.TempDir())
	file := filepath.Join(b.TempDir(), "set.nix")
	os.WriteFile(file, []byte(fmt.Sprintf(`builtins.genList (i: derivation {
  name = "upload-${toString i}"; system = builtins.currentSystem; nonce = %q; builder = "/bin/sh";
  args = [ "-c" "PATH=/usr/bin:/bin; head -c $((20000 + ${toString i} * 1000)) /dev/urandom > $out" ];
}) %d`, nonce, n)), 0o644)
	paths := strings.Fields(string(mustOutputB(b, "nix-build", "--no-out-link", file)))
	if len(paths) != n {
		b.Fatalf("%d paths built, want %d", len(paths), n)
	}
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Cache = CacheConfig{URL: "file:///nonexistent", RetryMin: time.Second, Batch: 64, BranchKeep: time.Hour, PRKeep: time.Hour}
	rv, err := New(context.Background(), cfg, testenv.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer rv.Close()
	ctx := context.Background()
	b.Run("nix-copy", func(b *testing.B) {
		for range b.N {
			mustOutputB(b, "nix", append([]string{"copy", "--to", "file://" + b.TempDir()}, paths...)...)
		}
	})
	b.Run("basinix", func(b *testing.B) {
		for range b.N {
			rv.cfg.Cache.URL = "file://" + b.TempDir()
			if err := rv.store.ForgetCached(ctx, paths); err != nil {
				b.Fatal(err)
			}
			if err := rv.store.QueueUploads(ctx, paths, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			for {
				batch, err := rv.store.TakeUploads(ctx, rv.cfg.Cache.Batch, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if len(batch) == 0 {
					break
				}
				rv.upload(ctx, batch)
			}
			left, _ := rv.store.NextUploadAt(ctx)
			if !left.IsZero() {
				b.Fatal("uploads left queued")
			}
		}
	})
}

func mustOutputB(b *testing.B, program string, args ...string) []byte {
	b.Helper()
	out, err := execOutput(program, args...)
	if err != nil {
		b.Fatalf("%s %v: %v", program, args, err)
	}
	return out
}
