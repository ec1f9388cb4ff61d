// Package sampleset generates nixpkgs-like package sets as git repositories:
// the sample that `basinix review --sample` reviews, and the fixture the
// tests and benchmarks run on. It stands alone because the CLI, the tests of
// several packages and the benchmarks all use it.
//
// The set has what basinix must handle in nixpkgs: default.nix taking
// { system, config }, callPackage-style all-packages.nix, aliases gated by
// config.allowAliases, nested recurseForDerivations sets, meta.position from
// unsafeGetAttrPos, passthru.tests, meta.broken, meta.platforms,
// requiredSystemFeatures, a fixed-output derivation, dependency chains where
// one low-level change rebuilds many, throw and undefined-variable errors,
// attribute names that need quoting, and a PR branch of several pushes that
// adds, removes, changes, breaks and fixes packages. Builders are /bin/sh
// with shell builtins only.
package sampleset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Options shape a generated repository.
type Options struct {
	// Bulk is the number of generated packages besides the hand-written
	// ones (about 40): 20 gives a set of tens, 20000 one of 20,000.
	Bulk int
	// Extra adds packages to the base commit: attribute name → the body of
	// a callPackage file (a function of { stdenv, lib, pkgs, ... }).
	Extra map[string]string
	// PRExtra adds packages in the PR's first push, as Extra does.
	PRExtra map[string]string
	// NoPR leaves out the PR branch.
	NoPR bool
	// BuildLog, when set, is a file every build appends its name to (the
	// builds run without a sandbox here), so tests count the builds Nix ran.
	BuildLog string
	// Nixpkgs gives the set nixpkgs' shape (see nixpkgs.go): one file per
	// package, pkgs/by-name/XX/NAME/package.nix, found by reading the
	// directories at evaluation; callPackage with function arguments; a
	// mkDerivation that does per package what nixpkgs' does. Benchmarks and
	// the tests that claim figures use it. Without it, the set is small
	// and quick: generated packages come 100 to a file, and the
	// hand-written ones are pkgs/by-name/NAME/default.nix.
	Nixpkgs bool
}

// PackageFile returns where package name's file is, relative to the
// repository.
func (o Options) PackageFile(name string) string {
	if o.Nixpkgs {
		return "pkgs/by-name/" + shard(name) + "/" + name + "/package.nix"
	}
	return "pkgs/by-name/" + name + "/default.nix"
}

// Repo is a generated repository.
type Repo struct {
	Dir string
	// Options are the options it was generated with.
	Options Options
	// Base is the branch the PR targets ("master"); Head the PR branch ("pr").
	Base, Head string
	// Pushes are the PR's commits, oldest first: each one a push.
	Pushes []string
	// ForkPoint is where the PR branched off master; BaseCommit is master's
	// tip, one commit later (libbase 1.0 -> 1.0.1), so the PR's head must
	// be merged onto it to be compared fairly.
	ForkPoint, BaseCommit string
}

// Bulk package i depends on libmid when i%MidEvery == 1: a change to libmid
// rebuilds libmid and those.
const MidEvery = 10

// Generate writes a new git repository into dir (which must not exist or be
// empty) with master and, unless opt.NoPR, the PR branch.
func Generate(dir string, opt Options) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample set: %w", err)
	}
	r := &Repo{Dir: dir, Options: opt, Base: "master", Head: "pr"}
	g := &gen{dir: dir}
	g.git("init", "--quiet", "--initial-branch=master")

	files := baseFiles(opt)
	for name, body := range opt.Extra {
		files[opt.PackageFile(name)] = body
	}
	files["pkgs/top-level/all-packages.nix"] = allPackages(topLevel(opt))
	g.write(files)
	g.commit("init: sample package set")
	if opt.Bulk > 0 {
		g.write(bulkFiles(opt))
		g.commit(fmt.Sprintf("generated: %d packages", opt.Bulk))
	}
	r.ForkPoint = g.rev("HEAD")
	r.BaseCommit = r.ForkPoint
	if g.err != nil || opt.NoPR {
		return r, g.err
	}

	g.git("checkout", "--quiet", "-b", "pr")
	for _, push := range prPushes(opt) {
		g.write(push.files)
		for _, f := range push.remove {
			g.git("rm", "--quiet", "-r", f)
		}
		g.commit(push.title)
		r.Pushes = append(r.Pushes, g.rev("HEAD"))
	}
	g.git("checkout", "--quiet", "master")
	g.write(map[string]string{opt.PackageFile("libbase"): pkg("libbase", "1.0.1", "", "", "")})
	g.commit("libbase: 1.0 -> 1.0.1")
	r.BaseCommit = g.rev("HEAD")
	if opt.Nixpkgs {
		// Packed, as a real clone is: tens of thousands of loose objects
		// would make every checkout and mirror of it read (or link) as
		// many files.
		g.git("repack", "-a", "-d", "-q")
		g.git("prune")
	}
	return r, g.err
}

type push struct {
	title  string
	files  map[string]string
	remove []string
}

// prPushes is the PR: three pushes, each a commit.
func prPushes(opt Options) []push {
	tl := topLevel(opt)
	// Push 1: libmid changes (rebuilding its dependents), newpkg is added,
	// willfail starts failing, willsucceed is fixed, failing keeps failing.
	// The packages whose files it touches have maintainers (GitHub
	// handles; Codertocat is the real payloads' PR author): Maintainers.
	entries := []string{opt.entry("newpkg")}
	files := map[string]string{
		opt.PackageFile("libmid"):      pkg("libmid", "1.1", "libbase", "", ""),
		opt.PackageFile("newpkg"):      pkg("newpkg", "0.1", "hello", "", maintainedBy("carol")),
		opt.PackageFile("willfail"):    pkg("willfail", "2.0", "", `echo "willfail: test suite failed" >&2; exit 1`, maintainedBy("alice", "bob")),
		opt.PackageFile("willsucceed"): pkg("willsucceed", "2.0", "", "", maintainedBy("Codertocat", "alice")),
		opt.PackageFile("failing"):     pkg("failing", "2.0", "", `echo "failing: still broken" >&2; exit 1`, ""),
	}
	for _, n := range sortedNames(opt.PRExtra) {
		entries = append(entries, opt.entry(n))
		files[opt.PackageFile(n)] = opt.PRExtra[n]
	}
	tl1 := withEntries(tl, entries...)
	files["pkgs/top-level/all-packages.nix"] = allPackages(tl1)
	p1 := push{title: "libmid: 1.0 -> 1.1, add newpkg, touch failing ones", files: files}
	// Push 2: oldpkg is removed, evalbreaks stops evaluating, evalfixed is
	// fixed, usesalias starts using an alias in-tree.
	tl2 := withoutEntry(tl1, "oldpkg")
	p2 := push{title: "remove oldpkg, break evalbreaks, fix evalfixed", files: map[string]string{
		opt.PackageFile("evalbreaks"):     "{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"evalbreaks\";\n  version = \"1.1\";\n  deps = [ notInScope ];\n}\n",
		opt.PackageFile("evalfixed"):      pkg("evalfixed", "1.1", "", "", ""),
		opt.PackageFile("usesalias"):      "{ stdenv, pkgs }:\n\nstdenv.mkDerivation {\n  pname = \"usesalias\";\n  version = \"1.1\";\n  deps = [ pkgs.oldhello ];\n}\n",
		"pkgs/top-level/all-packages.nix": allPackages(tl2),
	}, remove: []string{filepath.Dir(opt.PackageFile("oldpkg"))}}
	// Push 3: withtests changes (and so do its tests).
	p3 := push{title: "withtests: 1.0 -> 1.1", files: map[string]string{
		opt.PackageFile("withtests"): withTests("1.1"),
	}}
	return []push{p1, p2, p3}
}

// handWritten are the packages the PR's story is about.
var handWritten = []string{
	"libbase", "libmid", "hello", "oldpkg", "withtests", "failing", "willfail", "willsucceed",
	"depfails", "brokenpkg", "armonly", "bigpkg", "evalbreaks", "evalfixed", "usesalias",
}

// topLevel lists all-packages.nix entries, one line each.
func topLevel(opt Options) []string {
	var names []string
	for _, n := range handWritten {
		names = append(names, opt.entry(n))
	}
	for _, n := range sortedNames(opt.Extra) {
		names = append(names, opt.entry(n))
	}
	return slices.DeleteFunc(names, func(s string) bool { return s == "" })
}

// entry is the all-packages.nix line of package name: none in nixpkgs'
// shape, where by-name packages are found by reading the directories.
func (o Options) entry(name string) string {
	if o.Nixpkgs {
		return ""
	}
	return fmt.Sprintf("  %s = callPackage ../by-name/%s { };", quote(name), name)
}

func withEntries(tl []string, lines ...string) []string {
	return slices.DeleteFunc(append(append([]string{}, tl...), lines...), func(s string) bool { return s == "" })
}

func withoutEntry(tl []string, name string) []string {
	var out []string
	for _, l := range tl {
		if !strings.HasPrefix(l, "  "+name+" = ") {
			out = append(out, l)
		}
	}
	return out
}

func allPackages(entries []string) string {
	return `# callPackage-style package list, as in nixpkgs.
{ lib, stdenv, callPackage, pkgs }:

{
` + strings.Join(entries, "\n") + `

  fixedsrc = stdenv.mkDerivation {
    pname = "fixedsrc";
    version = "1.0";
    script = "printf 'fixed content\\n' > $out";
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "` + sha256hex("fixed content\n") + `";
  };

  throwing = throw "throwing: this package was removed on purpose";

  python3Packages = lib.recurseIntoAttrs {
    requests = stdenv.mkDerivation { pname = "python3.10-requests"; deps = [ pkgs.python3Packages.six ]; };
    six = stdenv.mkDerivation { pname = "python3.10-six"; };
  };

  # Not discovered: a plain set without recurseForDerivations.
  hidden = { notlisted = stdenv.mkDerivation { pname = "notlisted"; }; };

  # Names that need quoting, and would do harm if a shell ever saw them.
  weird = lib.recurseIntoAttrs {
    "foo.bar" = stdenv.mkDerivation { pname = "foo-bar"; };
    "it's" = stdenv.mkDerivation { pname = "its"; };
    "$(touch /tmp/basinix-pwned)" = stdenv.mkDerivation { pname = "pwned"; };
  };
}
`
}

func baseFiles(opt Options) map[string]string {
	f := map[string]string{
		"default.nix": `{ system ? builtins.currentSystem, config ? { } }:

import ./pkgs/top-level { inherit system config; }
`,
		"lib/default.nix": `{
  recurseIntoAttrs = s: s // { recurseForDerivations = true; };
  optionalAttrs = c: s: if c then s else { };
  concatMap = f: l: builtins.concatLists (map f l);
  concatStrings = builtins.concatStringsSep "";
  concatStringsSep = builtins.concatStringsSep;
  unique = builtins.foldl' (acc: e: if builtins.elem e acc then acc else acc ++ [ e ]) [ ];
}
`,
		"pkgs/stdenv/default.nix": `{ system, lib }:

# A small stdenv that does per package what nixpkgs' does, so evaluating a
# package costs about what it costs in nixpkgs: meta is checked against the
# known keys and platforms, phases are assembled into a setup script,
# propagated dependencies are closed over, and the environment carries the
# usual attributes. Builders are /bin/sh with shell builtins only.
let
  metaKeys = [
    "description" "longDescription" "homepage" "downloadPage" "changelog" "license" "maintainers"
    "teams" "priority" "platforms" "badPlatforms" "hydraPlatforms" "broken" "unfree" "insecure"
    "knownVulnerabilities" "mainProgram" "position" "outputsToInstall" "available" "isBuildPythonPackage"
    "timeout" "maxSilent" "tests" "pkgConfigModules"
  ];
  allPlatforms = lib.concatMap (arch: map (os: "${arch}-${os}") [ "linux" "darwin" "freebsd" "netbsd" "openbsd" ])
    [ "x86_64" "i686" "aarch64" "armv6l" "armv7l" "riscv64" "powerpc64le" "mipsel" "s390x" ];
  checkMeta = pname: meta:
    let unknown = builtins.filter (k: !builtins.elem k metaKeys) (builtins.attrNames meta);
    in if unknown != [ ] then throw "${pname}: unknown meta attributes: ${toString unknown}"
    else if !builtins.all (p: builtins.isAttrs p || builtins.elem p allPlatforms) (meta.platforms or [ ])
    then throw "${pname}: unknown platform in meta.platforms"
    else meta;
  phases = [ "unpack" "patch" "updateAutotools" "configure" "build" "check" "install" "fixup" "installCheck" "dist" ];
  phaseScript = name: ''
    ${name}Phase() { : "running ${name}"; }
  '';
  closePropagation = deps: lib.unique (deps ++ builtins.concatLists (map (d: d.propagated or [ ]) deps));
in
{
  mkDerivation = attrs@{ pname, version ? "1.0", deps ? [ ], script ? "", meta ? { }, passthru ? { }, ... }:
    let
      pos = builtins.unsafeGetAttrPos "pname" attrs;
      propagated = closePropagation deps;
      checkedMeta = checkMeta pname ({ platforms = allPlatforms; description = "${pname} ${version}"; } // meta);
      env = {
        name = "${pname}-${version}";
        inherit system;
        builder = "/bin/sh";
        deps = map toString propagated;
        phases = lib.concatStringsSep " " (map (p: "${p}Phase") phases);
        outputs = [ "out" ];
        strictDeps = true;
        enableParallelBuilding = true;
        configureFlags = [ "--prefix=/" "--disable-static" "--enable-shared" ];
        NIX_CFLAGS_COMPILE = lib.concatStringsSep " " (map (d: "-I${d}/include") propagated);
        args = [ "-c" (lib.concatStrings (map phaseScript phases) + ''
          for d in $deps; do read -r _ < "$d" || true; done
          BUILDLOG
          ${script}
          [ -e "$out" ] || echo "${pname}-${version}" > "$out"
        '') ];
      };
      drv = derivation (removeAttrs attrs [ "pname" "version" "deps" "script" "meta" "passthru" ] // env);
    in
    drv // passthru // {
      inherit passthru propagated;
      meta = checkedMeta // { position = "${pos.file}:${toString pos.line}"; };
    };
}
`,
		"pkgs/top-level/default.nix": `{ system, config }:

let
  lib = import ../../lib;
  stdenv = import ../stdenv { inherit system lib; };
  allowAliases = config.allowAliases or true;
  callPackage = fn: overrides:
    let f = import fn;
    in f (builtins.intersectAttrs (builtins.functionArgs f) (pkgs // { inherit lib stdenv pkgs; }) // overrides);
  packages = import ./all-packages.nix { inherit lib stdenv callPackage pkgs; };
  generated = if builtins.pathExists ../generated then import ../generated { inherit stdenv pkgs; } else { };
  pkgs = generated // packages // lib.optionalAttrs allowAliases (import ./aliases.nix pkgs)
    // { inherit lib stdenv; };
in
pkgs
`,
		"pkgs/top-level/aliases.nix": `pkgs:

{
  oldhello = pkgs.hello; # renamed to hello
}
`,
		opt.PackageFile("libbase"):     pkg("libbase", "1.0", "", "", ""),
		opt.PackageFile("libmid"):      pkg("libmid", "1.0", "libbase", "", ""),
		opt.PackageFile("hello"):       pkg("hello", "2.12", "libmid", "", ""),
		opt.PackageFile("oldpkg"):      pkg("oldpkg", "0.9", "", "", ""),
		opt.PackageFile("withtests"):   withTests("1.0"),
		opt.PackageFile("failing"):     pkg("failing", "1.0", "", `echo "failing: error: missing header foo.h" >&2; exit 1`, ""),
		opt.PackageFile("willfail"):    pkg("willfail", "1.0", "", "", ""),
		opt.PackageFile("willsucceed"): pkg("willsucceed", "1.0", "", `echo "willsucceed: compile error" >&2; exit 2`, ""),
		opt.PackageFile("depfails"):    pkg("depfails", "1.0", "willfail", "", ""),
		opt.PackageFile("brokenpkg"):   pkg("brokenpkg", "1.0", "libmid", "", "  meta.broken = true;\n"),
		opt.PackageFile("armonly"):     pkg("armonly", "1.0", "libmid", "", "  meta.platforms = [ \"aarch64-linux\" ];\n"),
		opt.PackageFile("bigpkg"):      pkg("bigpkg", "1.0", "libmid", "", "  requiredSystemFeatures = [ \"big-parallel\" ];\n"),
		opt.PackageFile("evalbreaks"):  pkg("evalbreaks", "1.0", "", "", ""),
		opt.PackageFile("evalfixed"):   "{ stdenv }:\n\nthrow \"evalfixed: needs porting\"\n",
		opt.PackageFile("usesalias"):   pkg("usesalias", "1.0", "hello", "", ""),
	}
	if opt.Nixpkgs {
		maps.Copy(f, nixpkgsFiles())
	}
	buildLog := ""
	if opt.BuildLog != "" {
		buildLog = "\n          echo $out >> " + opt.BuildLog
	}
	f["pkgs/stdenv/default.nix"] = strings.Replace(f["pkgs/stdenv/default.nix"], "\n          BUILDLOG", buildLog, 1)
	return f
}

// pkg renders a callPackage file for a package depending on dep (or nothing).
func pkg(name, version, dep, script, extra string) string {
	args := "stdenv"
	deps := ""
	if dep != "" {
		args += ", " + dep
		deps = "  deps = [ " + dep + " ];\n"
	}
	body := ""
	if script != "" {
		body = "  script = ''\n    " + script + "\n  '';\n"
	}
	return fmt.Sprintf("{ %s }:\n\nstdenv.mkDerivation {\n  pname = %q;\n  version = %q;\n%s%s%s}\n", args, name, version, deps, body, extra)
}

// Maintainers are the GitHub handles of the maintainers of the packages
// the sample PR's first push touches.
var Maintainers = map[string][]string{"newpkg": {"carol"}, "willfail": {"alice", "bob"}, "willsucceed": {"Codertocat", "alice"}}

// maintainedBy is a package's meta.maintainers, as lib.maintainers
// entries are (github, name).
func maintainedBy(handles ...string) string {
	var b strings.Builder
	b.WriteString("  meta.maintainers = [")
	for _, h := range handles {
		fmt.Fprintf(&b, " { github = %q; name = %q; }", h, h)
	}
	b.WriteString(" ];\n")
	return b.String()
}

func withTests(version string) string {
	return fmt.Sprintf(`{ stdenv }:

let
  self = stdenv.mkDerivation {
    pname = "withtests";
    version = %q;
    passthru.tests = {
      basic = stdenv.mkDerivation { pname = "withtests-test-basic"; version = %q; deps = [ self ]; };
      fails = stdenv.mkDerivation {
        pname = "withtests-test-fails";
        version = %q;
        deps = [ self ];
        script = "echo 'test fails: assertion failed' >&2; exit 1";
      };
    };
  };
in
self
`, version, version, version)
}

// packedBulk writes n generated packages, 100 to a file, and the file that
// merges them (the small set's shape; see bulkFiles).
func packedBulk(n int) map[string]string {
	files := map[string]string{}
	var imports []string
	for start := 0; start < n; start += 100 {
		var b strings.Builder
		b.WriteString("{ stdenv, pkgs }:\n\n{\n")
		for i := start; i < start+100 && i < n; i++ {
			var deps []string
			if i%10 == 0 {
				deps = append(deps, "pkgs.libbase")
			}
			if i%MidEvery == 1 {
				deps = append(deps, "pkgs.libmid")
			}
			if i%7 == 6 {
				deps = append(deps, fmt.Sprintf("pkgs.%s", BulkName(i-1)))
			}
			fmt.Fprintf(&b, "  %s = stdenv.mkDerivation {\n    pname = %q;\n    version = \"1.%d\";\n    deps = [ %s ];\n  };\n",
				BulkName(i), BulkName(i), i%13, strings.Join(deps, " "))
		}
		b.WriteString("}\n")
		name := fmt.Sprintf("g%04d.nix", start/100)
		files["pkgs/generated/"+name] = b.String()
		imports = append(imports, "./"+name)
	}
	files["pkgs/generated/default.nix"] = "{ stdenv, pkgs }:\n\nbuiltins.foldl' (acc: f: acc // import f { inherit stdenv pkgs; }) { } [\n  " +
		strings.Join(imports, "\n  ") + "\n]\n"
	return files
}

// BulkName is the attribute name of generated package i.
func BulkName(i int) string { return fmt.Sprintf("pkg%05d", i) }

func quote(name string) string {
	for _, c := range name {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("%q", name)
		}
	}
	return name
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// gen writes files and commits them; the first error sticks.
type gen struct {
	dir  string
	err  error
	tick int
}

func (g *gen) write(files map[string]string) {
	for name, body := range files {
		if g.err != nil {
			return
		}
		p := filepath.Join(g.dir, name)
		if g.err = os.MkdirAll(filepath.Dir(p), 0o755); g.err == nil {
			g.err = os.WriteFile(p, []byte(body), 0o644)
		}
	}
}

func (g *gen) commit(msg string) {
	g.git("add", "-A")
	g.tick++
	// Fixed identity and dates: the same options give the same commits.
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.tick) * time.Hour).Format(time.RFC3339)
	g.gitEnv([]string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, "commit", "--quiet", "--allow-empty", "-m", msg)
}

func (g *gen) rev(ref string) string {
	return strings.TrimSpace(g.gitEnv(nil, "rev-parse", ref))
}

func (g *gen) git(args ...string) { g.gitEnv(nil, args...) }

func (g *gen) gitEnv(env []string, args ...string) string {
	if g.err != nil {
		return ""
	}
	cmd := exec.Command("git", append([]string{"-C", g.dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Sample Author", "GIT_AUTHOR_EMAIL=author@example.org",
		"GIT_COMMITTER_NAME=Sample Author", "GIT_COMMITTER_EMAIL=author@example.org",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.err = fmt.Errorf("sample set: git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String()
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
