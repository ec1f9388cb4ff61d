package nix

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		name   string
		stderr string
		want   Error
	}{
		{
			name: "nix 2.8 undefined variable",
			stderr: `trace: something a package printed
error: undefined variable 'undefinedVar'

       at /tmp/p/d.nix:1:1:

            1| undefinedVar
             | ^
(use '--show-trace' to show detailed location information)
`,
			want: Error{Message: "undefined variable 'undefinedVar'", Positions: []Position{{"/tmp/p/d.nix", 1, 1}}},
		},
		{
			name: "nix 2.8 function called without an argument: the function first",
			stderr: `error: anonymous function at /src/pkgs/by-name/us/usesalias/package.nix:1:1 called without required argument 'oldhello'

       at /src/pkgs/top-level/default.nix:9:8:

            8|     let f = import fn;
            9|     in f (builtins.intersectAttrs (builtins.functionArgs f) pkgs);
             |        ^
`,
			want: Error{Message: "anonymous function at /src/pkgs/by-name/us/usesalias/package.nix:1:1 called without required argument 'oldhello'",
				Positions: []Position{{"/src/pkgs/by-name/us/usesalias/package.nix", 1, 1}, {"/src/pkgs/top-level/default.nix", 9, 8}}},
		},
		{
			name: "nixpkgs' callPackage abort: the package's file first",
			stderr: `error: evaluation aborted with the following error message: 'lib.customisation.callPackageWith: Function called without required argument "libmid_old" at /src/pkgs/by-name/us/usesaliasarg/package.nix, did you mean "libmid"?'

       at /src/pkgs/top-level/default.nix:14:24:
`,
			want: Error{Message: `evaluation aborted with the following error message: 'lib.customisation.callPackageWith: Function called without required argument "libmid_old" at /src/pkgs/by-name/us/usesaliasarg/package.nix, did you mean "libmid"?'`,
				Positions: []Position{{"/src/pkgs/by-name/us/usesaliasarg/package.nix", 1, 0}, {"/src/pkgs/top-level/default.nix", 14, 24}}},
		},
		{
			name: "nix 2.8 abort with trace",
			stderr: `error: evaluation aborted with the following error message: 'boom'

       … while evaluating the attribute 'b'

       at /tmp/p/t.nix:4:5:

            3|     a = 1;
            4|     b = abort "boom";
             |     ^

       … while evaluating 'walk'

       at /tmp/p/walker.nix:12:10:
`,
			want: Error{
				Message:   "evaluation aborted with the following error message: 'boom'",
				Positions: []Position{{"/tmp/p/t.nix", 4, 5}, {"/tmp/p/walker.nix", 12, 10}},
			},
		},
		{
			name: "nix 2.8 multi-line message",
			stderr: `error: attribute 'y' missing

       at /tmp/p/t.nix:7:9:

            7|     e = { x = 1; }.y;
             |         ^
       Did you mean x?
`,
			want: Error{Message: "attribute 'y' missing", Positions: []Position{{"/tmp/p/t.nix", 7, 9}}},
		},
		{
			name: "newer nix: trace outermost first, error last",
			stderr: "error:\n" +
				"       … while evaluating the attribute 'drvPath'\n" +
				"         at /nix/store/x-source/pkgs/stdenv/default.nix:9:7:\n\n" +
				"       … while evaluating derivation 'bad-1.0'\n" +
				"         whose name attribute is located at /repo/pkgs/by-name/bad/default.nix:3:1\n\n" +
				"       error: undefined variable 'nope'\n" +
				"       at /repo/pkgs/by-name/bad/default.nix:5:12:\n" +
				"            5|   deps = [ nope ];\n",
			want: Error{
				Message: "undefined variable 'nope'",
				Positions: []Position{
					{"/repo/pkgs/by-name/bad/default.nix", 5, 12},
					{"/repo/pkgs/by-name/bad/default.nix", 3, 1},
					{"/nix/store/x-source/pkgs/stdenv/default.nix", 9, 7},
				},
			},
		},
		{
			name:   "colours are ignored",
			stderr: "\x1b[31;1merror:\x1b[0m cannot add a string to an integer\n\n       at \x1b[35;1m/r/f.nix:8:13\x1b[0m:\n",
			want:   Error{Message: "cannot add a string to an integer", Positions: []Position{{"/r/f.nix", 8, 13}}},
		},
		{
			name:   "no error line",
			stderr: "warning: something\n",
			want:   Error{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseError([]byte(tc.stderr))
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPositionUnder(t *testing.T) {
	e := &Error{Positions: []Position{{"/walker/walker.nix", 3, 1}, {"/repo/pkgs/a.nix", 5, 2}, {"/repo/default.nix", 1, 1}}}
	got, ok := e.PositionUnder("/repo/")
	if !ok || got != (Position{"pkgs/a.nix", 5, 2}) {
		t.Errorf("PositionUnder = %v, %v; want pkgs/a.nix:5:2", got, ok)
	}
	if _, ok := e.PositionUnder("/elsewhere"); ok {
		t.Error("PositionUnder(/elsewhere) found a position")
	}
}
