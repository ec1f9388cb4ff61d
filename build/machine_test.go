package build

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMachines(t *testing.T) {
	got, err := ParseMachines(`
# a comment
ssh-ng://builder@arm1 aarch64-linux,armv7l-linux /key 4 2 big-parallel,kvm - c3NoLWVkMjU1MTk=
builder@x86 x86_64-linux   # bare host: ssh://
ssh://b benchmark-only-linux - - - - benchmark
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Machine{
		{URI: "ssh-ng://builder@arm1", Systems: []string{"aarch64-linux", "armv7l-linux"}, SSHKey: "/key", MaxJobs: 4, SpeedFactor: 2,
			SupportedFeatures: []string{"big-parallel", "kvm"}, HostKey: "c3NoLWVkMjU1MTk="},
		{URI: "ssh://builder@x86", Systems: []string{"x86_64-linux"}, MaxJobs: 1, SpeedFactor: 1},
		{URI: "ssh://b", Systems: []string{"benchmark-only-linux"}, MaxJobs: 1, SpeedFactor: 1, MandatoryFeatures: []string{"benchmark"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("machines (-want +got):\n%s", diff)
	}
	if line := got[0].Line(); line != "ssh-ng://builder@arm1 aarch64-linux,armv7l-linux /key 4 2 big-parallel,kvm - c3NoLWVkMjU1MTk=" {
		t.Errorf("Line() = %q", line)
	}
	for _, bad := range []string{"ssh://a", "ssh://a x86_64-linux - -1", "ssh://a x86_64-linux - 1 fast", "a b c d e f g h i"} {
		if _, err := ParseMachines(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCanBuild(t *testing.T) {
	m := &Machine{Systems: []string{"x86_64-linux"}, MaxJobs: 1, SupportedFeatures: []string{"big-parallel"}, MandatoryFeatures: []string{"benchmark"}}
	plain := &Machine{Systems: []string{"x86_64-linux"}, MaxJobs: 1}
	tests := []struct {
		name     string
		m        *Machine
		system   string
		features []string
		want     bool
	}{
		{"system and features fit", m, "x86_64-linux", []string{"benchmark", "big-parallel"}, true},
		{"mandatory feature not required", m, "x86_64-linux", []string{"big-parallel"}, false},
		{"other system", plain, "aarch64-linux", nil, false},
		{"builtin builds anywhere", plain, "builtin", nil, true},
		{"unsupported feature", plain, "x86_64-linux", []string{"kvm"}, false},
		{"no slots", &Machine{Systems: []string{"x86_64-linux"}}, "x86_64-linux", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.CanBuild(tt.system, tt.features); got != tt.want {
				t.Errorf("CanBuild(%s, %v) = %v, want %v", tt.system, tt.features, got, tt.want)
			}
		})
	}
}
