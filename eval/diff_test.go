package eval

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompare(t *testing.T) {
	ok := func(name, drv string) *Attr { return &Attr{Path: Path{name}, DrvPath: drv} }
	bad := func(name string) *Attr { return &Attr{Path: Path{name}, Error: &Error{Message: "boom"}} }
	alias := func(name, drv string) *Attr {
		return &Attr{Path: Path{name}, DrvPath: drv, Error: &Error{Message: "attribute 'old' missing"}, AliasError: true}
	}
	base := &Evaluation{System: "x86_64-linux", Attrs: map[string]*Attr{
		"same": ok("same", "/nix/store/a-same.drv"), "changed": ok("changed", "/nix/store/a-changed.drv"),
		"removed": ok("removed", "/nix/store/a-removed.drv"), "breaks": ok("breaks", "/nix/store/a-breaks.drv"),
		"fixed": bad("fixed"), "stillbad": bad("stillbad"), "oldalias": alias("oldalias", "/nix/store/a-oldalias.drv"),
	}}
	head := &Evaluation{System: "x86_64-linux", Attrs: map[string]*Attr{
		"same": ok("same", "/nix/store/a-same.drv"), "changed": ok("changed", "/nix/store/b-changed.drv"),
		"added": ok("added", "/nix/store/b-added.drv"), "breaks": bad("breaks"), "fixed": ok("fixed", "/nix/store/b-fixed.drv"),
		"stillbad": bad("stillbad"), "newbad": bad("newbad"), "oldalias": alias("oldalias", "/nix/store/a-oldalias.drv"),
		"newalias": alias("newalias", "/nix/store/b-newalias.drv"),
	}}
	d := Compare(base, head)
	got := map[string]Change{}
	for _, a := range d.Attrs {
		got[a.Attr] = a.Change
	}
	want := map[string]Change{
		"added": Added, "changed": Changed, "removed": Removed, "breaks": EvalBroken,
		"fixed": EvalFixed, "newbad": EvalBroken, "newalias": Added,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if len(d.AliasErrors) != 1 || d.AliasErrors[0].Path.String() != "newalias" {
		t.Errorf("alias errors: want only newalias, got %v", d.AliasErrors)
	}
	if got := d.Rebuilds(); got != 4 {
		t.Errorf("rebuilds: want 4 (added, changed, fixed, newalias), got %d", got)
	}
}

func TestCompareWithBrokenHeadSetRemovesNothing(t *testing.T) {
	base := &Evaluation{Attrs: map[string]*Attr{"a": {Path: Path{"a"}, DrvPath: "/nix/store/a.drv"}}}
	head := &Evaluation{Attrs: map[string]*Attr{}, Error: &Error{Message: "syntax error"}}
	d := Compare(base, head)
	if len(d.Attrs) != 0 || d.HeadError == nil {
		t.Errorf("want no attribute changes and the head error, got %+v", d)
	}
}

func TestRebuildLabel(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {1, "1-10"}, {10, "1-10"}, {11, "11-100"}, {100, "11-100"}, {101, "101-500"},
		{500, "101-500"}, {501, "501-1000"}, {1000, "501-1000"}, {1001, "1001-2500"}, {2500, "1001-2500"},
		{2501, "2501-5000"}, {5000, "2501-5000"}, {5001, "5001+"}, {100000, "5001+"},
	} {
		if got := RebuildLabel(tc.n); got != tc.want {
			t.Errorf("RebuildLabel(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Path
		wantErr bool
	}{
		{in: "hello", want: Path{"hello"}},
		{in: "python3Packages.requests", want: Path{"python3Packages", "requests"}},
		{in: `weird."foo.bar"`, want: Path{"weird", "foo.bar"}},
		{in: `weird."$(touch /tmp/x)"`, want: Path{"weird", "$(touch /tmp/x)"}},
		{in: `"a\"b"`, want: Path{`a"b`}},
		{in: "it's", want: Path{"it's"}},
		{in: "foo; rm -rf /", wantErr: true},
		{in: "$(touch /tmp/x)", wantErr: true},
		{in: "`id`", wantErr: true},
		{in: `"${builtins.currentTime}"`, wantErr: true},
		{in: "a..b", wantErr: true},
		{in: "a.", wantErr: true},
		{in: "", wantErr: true},
		{in: `"unterminated`, wantErr: true},
	} {
		got, err := ParsePath(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePath(%q): error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr {
			if !cmp.Equal(got, tc.want) {
				t.Errorf("ParsePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if back, _ := ParsePath(got.String()); !cmp.Equal(back, got) {
				t.Errorf("round trip of %q gives %q", got.String(), back)
			}
		}
	}
}
