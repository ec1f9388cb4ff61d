package nix

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRealiseMessages(t *testing.T) {
	const drv = "/nix/store/sl4jqxi0hzby5w13j6kpk0m7nwwabhd6-bad.drv"
	tests := []struct {
		name        string
		msg         string
		want        map[string]*Failure
		unreachable []string
	}{
		{
			name: "builder failed (2.8)",
			msg:  "\x1b[31;1merror:\x1b[0m builder for '\x1b[35;1m" + drv + "\x1b[0m' failed with exit code 3",
			want: map[string]*Failure{drv: {Kind: FailBuilder, Message: "builder for '" + drv + "' failed with exit code 3"}},
		},
		{
			name: "builder failed (2.24 and newer)",
			msg:  "error: Cannot build '" + drv + "'.\n       Reason: builder failed with exit code 3.",
			want: map[string]*Failure{drv: {Kind: FailBuilder, Message: "Cannot build '" + drv + "'."}},
		},
		{
			name: "dependencies failed (2.8)",
			msg:  "error: 1 dependencies of derivation '" + drv + "' failed to build",
			want: map[string]*Failure{drv: {Kind: FailDependencies, Message: "1 dependencies of derivation '" + drv + "' failed to build"}},
		},
		{
			name: "dependencies failed (newer)",
			msg:  "error: Cannot build '" + drv + "'.\n       Reason: 1 dependency failed.",
			want: map[string]*Failure{drv: {Kind: FailDependencies, Message: "Cannot build '" + drv + "'."}},
		},
		{
			name: "timed out",
			msg:  "error: building of '" + drv + "!*' from .drv file timed out after 2 seconds",
			want: map[string]*Failure{drv: {Kind: FailTimeout, Message: "building of '" + drv + "!*' from .drv file timed out after 2 seconds"}},
		},
		{
			name: "silent too long",
			msg:  "error: building of '" + drv + "!*' from .drv file timed out after 1 seconds of silence",
			want: map[string]*Failure{drv: {Kind: FailTimeout, Message: "building of '" + drv + "!*' from .drv file timed out after 1 seconds of silence"}},
		},
		{
			name: "fixed-output hash mismatch",
			msg:  "error: hash mismatch in fixed-output derivation '" + drv + "':\n  specified: sha256-AAAA\n     got: sha256-BBBB",
			want: map[string]*Failure{drv: {Kind: FailBuilder, Message: "hash mismatch in fixed-output derivation '" + drv + "': specified sha256-AAAA, got sha256-BBBB"}},
		},
		{
			name:        "machine unreachable",
			msg:         "cannot build on 'ssh-ng://root@127.0.0.1': error: cannot open connection to remote store 'ssh-ng://root@127.0.0.1': error: unexpected end-of-file",
			want:        map[string]*Failure{},
			unreachable: []string{"ssh-ng://root@127.0.0.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &realiseParser{out: &Realised{Builds: map[string]*Build{}, Failures: map[string]*Failure{}}, ids: map[uint64]string{}}
			p.message(ansiRe.ReplaceAllString(tt.msg, ""))
			if diff := cmp.Diff(tt.want, p.out.Failures); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.unreachable, p.out.Unreachable); diff != "" {
				t.Errorf("unreachable (-want +got):\n%s", diff)
			}
		})
	}
}
