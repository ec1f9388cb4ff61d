package childenv

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrom(t *testing.T) {
	host := []string{
		"PATH=/usr/bin:/bin",
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"NIX_CONFIG=substituters =",
		"NIX_PATH=nixpkgs=/root/.nix-defexpr/channels/nixpkgs",
		"BASINIX_GITHUB_APP_PRIVATE_KEY=-----BEGIN RSA PRIVATE KEY-----",
		"BASINIX_GITHUB_APP_WEBHOOK_SECRET=hunter2",
		"GITHUB_TOKEN=ghs_0123456789",
		"AWS_SECRET_ACCESS_KEY=abc",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"malformed",
	}
	got := From(host, "NIX_PATH=", "GC_INITIAL_HEAP_SIZE=1")
	want := []string{
		"PATH=/usr/bin:/bin",
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"NIX_CONFIG=substituters =",
		"NIX_PATH=",
		"GC_INITIAL_HEAP_SIZE=1",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("child environment (-want +got):\n%s", d)
	}
}
