package review

import (
	"strings"
	"testing"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

// The review on a package set of nixpkgs' shape (one package.nix per
// package in its by-name shard, callPackage with function arguments and
// nixpkgs' abort for a missing one, a finalAttrs mkDerivation): the same
// story as on the small set, with every position at the package's own
// file, and an alias used through a callPackage argument found as an
// alias error although nixpkgs' callPackage aborts on it.
func TestReviewNixpkgsShape(t *testing.T) {
	rv := newReviewer(t)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 60, Nixpkgs: true, PRExtra: map[string]string{
		"usesaliasarg": "{ stdenv, libmid_old }:\n\nstdenv.mkDerivation (finalAttrs: {\n  pname = \"usesaliasarg\";\n  version = \"1\";\n  buildInputs = [ libmid_old ];\n})\n",
	}})
	rep := review(t, rv, Request{Repo: repo.Dir, Base: repo.Base, Head: repo.Head})
	s := rep.Systems["x86_64-linux"]
	changes := map[eval.Change][]string{}
	for name, a := range s.Attrs {
		changes[a.Change] = append(changes[a.Change], name)
	}
	if a := s.Attrs["newpkg"]; a == nil || a.Change != eval.Added {
		t.Errorf("newpkg: %+v", a)
	}
	if a := s.Attrs["oldpkg"]; a == nil || a.Change != eval.Removed {
		t.Errorf("oldpkg: %+v", a)
	}
	// libmid changed: it, hello (which uses it) and the generated packages
	// that take it as an argument.
	if n := len(changes[eval.Changed]); n < 8 {
		t.Errorf("%d changed attributes: %v", n, changes[eval.Changed])
	}
	if a := s.Attrs["libmid"]; a == nil || a.Change != eval.Changed || a.Position != "pkgs/by-name/li/libmid/package.nix:4" {
		t.Errorf("libmid: %+v", a)
	}
	var evalErr *report.ErrorEntry
	for i, e := range s.EvalErrors {
		if e.Attr == "evalbreaks" {
			evalErr = &s.EvalErrors[i]
		}
	}
	if evalErr == nil || evalErr.File != "pkgs/by-name/ev/evalbreaks/package.nix" || evalErr.Line != 6 || !strings.Contains(evalErr.Message, "notInScope") {
		t.Errorf("evalbreaks: %+v", evalErr)
	}
	aliases := map[string]report.ErrorEntry{}
	for _, e := range s.AliasErrors {
		aliases[e.Attr] = e
	}
	if e, ok := aliases["usesaliasarg"]; !ok || !strings.Contains(e.Message, `Function called without required argument "libmid_old"`) ||
		e.File != "pkgs/by-name/us/usesaliasarg/package.nix" || strings.Contains(e.Message, repo.Dir) || strings.Contains(e.Message, rv.Config().DataDir) {
		t.Errorf("usesaliasarg: want an alias error with nixpkgs' message, no server path; got %+v (alias errors %v)", e, s.AliasErrors)
	}
	if _, ok := aliases["usesalias"]; !ok {
		t.Errorf("usesalias: not an alias error: %v", s.AliasErrors)
	}
}
