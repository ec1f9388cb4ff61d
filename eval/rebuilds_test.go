package eval_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// Rebuilds are counted as nixpkgs CI counts them, by output path: a
// fixed-output derivation whose URL changes and hash does not gets a new
// drvPath, and so does everything that uses it, but no output changes and
// nothing is to be built. A real change still counts.
func TestRebuildsCountOutputPaths(t *testing.T) {
	fod := func(url string) string {
		return `{ stdenv }:

stdenv.mkDerivation {
  pname = "fodsrc";
  version = "1";
  url = "` + url + `";
  script = "printf 'fixed content\\n' > $out";
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = "` + "8e1f6e2ad8fbba5e3dd4c7d8ed0c5f06b4e4c8a2d5ee4e1f9d3c2f5f2a4b6c8d" + `";
}
`
	}
	uses := "{ stdenv, fodsrc }:\n\nstdenv.mkDerivation { pname = \"usesfod\"; version = \"1\"; deps = [ fodsrc ]; }\n"
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{"fodsrc": fod("https://a.example/src.tar"), "usesfod": uses}})
	ev := newEvaluator(t, eval.Options{Workers: 2})
	base := evaluate(t, ev, repo.Dir, "x86_64-linux")
	file := filepath.Join(repo.Dir, repo.Options.PackageFile("fodsrc"))
	if err := os.WriteFile(file, []byte(fod("https://mirror.example/src.tar")), 0o644); err != nil {
		t.Fatal(err)
	}
	moved := evaluate(t, ev, repo.Dir, "x86_64-linux")
	d := eval.Compare(base, moved)
	if n := d.Count(eval.Changed); n != 2 {
		t.Fatalf("%d changed attributes, want fodsrc and usesfod: %+v", n, d.Attrs)
	}
	if got := d.Rebuilds(); got != 0 {
		t.Errorf("a mirror change rebuilds %d attributes, want 0", got)
	}
	if got := d.ChangedNotRebuilt(); got != 2 {
		t.Errorf("changed but not rebuilt: %d, want 2", got)
	}
	// A real change: hello's version.
	hello := filepath.Join(repo.Dir, repo.Options.PackageFile("hello"))
	if err := os.WriteFile(hello, []byte("{ stdenv, libmid }:\n\nstdenv.mkDerivation { pname = \"hello\"; version = \"2.13\"; deps = [ libmid ]; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := evaluate(t, ev, repo.Dir, "x86_64-linux")
	if d := eval.Compare(base, changed); d.Rebuilds() < 1 {
		t.Errorf("a version change rebuilds nothing: %+v", d.Attrs)
	}
}
