package sampleset

import (
	"fmt"
	"strings"
)

// nixpkgs' shape of a package set (Options.Nixpkgs): what costs time in
// nixpkgs costs time here too, so that figures measured on it hold there.
//
//   - pkgs/by-name/XX/NAME/package.nix, one file per package, found by
//     reading the shard directories at evaluation, as nixpkgs'
//     pkgs/top-level/by-name-overlay.nix does;
//   - callPackage with function arguments (builtins.functionArgs), the
//     result made overridable, and nixpkgs' abort when a required argument
//     is missing ("Function called without required argument");
//   - stdenv.mkDerivation taking a finalAttrs function (a fixed point),
//     the name from pname and version, meta checked against the known keys,
//     licences and platforms with meta.position from the package's file,
//     passthru merged into the result, several outputs, propagated inputs
//     closed over, and the environment nixpkgs' derivations carry;
//   - aliases.nix, and a recursed scope (python3Packages).

// shard is nixpkgs' by-name shard of a package name: its first two
// characters, lower-cased.
func shard(name string) string {
	if len(name) < 2 {
		return strings.ToLower(name)
	}
	return strings.ToLower(name[:2])
}

// bulkName is the name of generated package i: in nixpkgs' shape, names
// whose first two letters spread the packages over 676 shards, as
// nixpkgs' names spread over its ~1,000.
func bulkName(opt Options, i int) string {
	if !opt.Nixpkgs {
		return BulkName(i)
	}
	return fmt.Sprintf("%c%cpkg%05d", 'a'+i%26, 'a'+(i/26)%26, i)
}

// bulkFiles writes opt.Bulk generated packages. Package i depends on
// libbase when i%10 == 0, on libmid when i%MidEvery == 1, and on package
// i-1 when i%7 == 6 (chains).
func bulkFiles(opt Options) map[string]string {
	if !opt.Nixpkgs {
		return packedBulk(opt.Bulk)
	}
	files := map[string]string{}
	for i := 0; i < opt.Bulk; i++ {
		name := bulkName(opt, i)
		args := []string{"lib", "stdenv"}
		var deps []string
		if i%10 == 0 {
			deps = append(deps, "libbase")
		}
		if i%MidEvery == 1 {
			deps = append(deps, "libmid")
		}
		if i%7 == 6 {
			deps = append(deps, bulkName(opt, i-1))
		}
		args = append(args, deps...)
		var extra strings.Builder
		if i%5 == 0 {
			extra.WriteString("  outputs = [ \"out\" \"dev\" ];\n")
		}
		if i%3 == 0 {
			extra.WriteString("  propagatedBuildInputs = finalAttrs.buildInputs;\n")
		}
		platforms := "lib.platforms.linux"
		if i%97 == 96 {
			platforms = "lib.platforms.darwin"
		}
		fmt.Fprintf(&extra, "  passthru.updateScript = [ \"update-%s\" ];\n", name)
		files[opt.PackageFile(name)] = fmt.Sprintf(`{ %s }:

stdenv.mkDerivation (finalAttrs: {
  pname = %q;
  version = "1.%d";
  buildInputs = [ %s ];
  configureFlags = [ "--enable-%s" "--with-version=${finalAttrs.version}" ];
%s
  meta = {
    description = "Generated package %d of the sample";
    homepage = "https://example.org/%s";
    license = lib.licenses.%s;
    maintainers = [ lib.maintainers.%s ];
    platforms = %s;
  };
})
`, strings.Join(args, ", "), name, i%13, strings.Join(deps, " "), name, extra.String(), i, name,
			licences[i%len(licences)], maintainers[i%len(maintainers)], platforms)
	}
	return files
}

var (
	licences    = []string{"mit", "gpl2Plus", "gpl3Only", "asl20", "bsd3", "lgpl21Plus", "mpl20", "isc", "zlib", "unfree"}
	maintainers = []string{"alice", "bob", "carol", "dave", "erin"}
)

// nixpkgsFiles are the files of nixpkgs' shape that replace or add to the
// small set's: lib, stdenv and the top level with its by-name overlay.
func nixpkgsFiles() map[string]string {
	var lic, maint strings.Builder
	for _, l := range licences {
		free := l != "unfree"
		fmt.Fprintf(&lic, "    %s = { spdxId = %q; fullName = %q; free = %t; redistributable = %t; url = \"https://spdx.org/licenses/%s.html\"; };\n", l, l, l+" licence", free, free, l)
	}
	for _, m := range maintainers {
		fmt.Fprintf(&maint, "    %s = { name = %q; email = \"%s@example.org\"; github = %q; githubId = %d; };\n", m, m, m, m, len(m)*1000)
	}
	return map[string]string{
		"lib/default.nix": `let
  arches = [ "x86_64" "i686" "aarch64" "armv6l" "armv7l" "riscv64" "powerpc64le" "mipsel" "s390x" ];
  oses = [ "linux" "darwin" "freebsd" "netbsd" "openbsd" ];
  concatMap = f: l: builtins.concatLists (map f l);
in rec {
  fix = f: let x = f x; in x;
  recurseIntoAttrs = s: s // { recurseForDerivations = true; };
  optionalAttrs = c: s: if c then s else { };
  inherit concatMap;
  concatStrings = builtins.concatStringsSep "";
  concatStringsSep = builtins.concatStringsSep;
  unique = builtins.foldl' (acc: e: if builtins.elem e acc then acc else acc ++ [ e ]) [ ];
  # lib.attrsets.mergeAttrsList: a balanced merge, n log n, where a fold
  # of // would copy the growing set once per element.
  mergeAttrsList = list:
    let
      merge = start: end:
        if end - start >= 2 then
          let mid = start + (end - start) / 2; in merge start mid // merge mid end
        else builtins.elemAt list start;
    in
    if list == [ ] then { } else merge 0 (builtins.length list);
  toLower = s: s;
  platforms = rec {
    all = concatMap (arch: map (os: "${arch}-${os}") oses) arches;
    linux = map (arch: "${arch}-linux") arches;
    darwin = [ "x86_64-darwin" "aarch64-darwin" ];
    unix = linux ++ darwin;
  };
  licenses = {
` + lic.String() + `  };
  maintainers = {
` + maint.String() + `  };
  meta.platformMatch = platform: elem:
    if builtins.isString elem then platform.system == elem else elem.system or null == platform.system;
}
`,
		"pkgs/stdenv/default.nix": `{ system, lib }:

# nixpkgs' stdenv.mkDerivation in miniature: a finalAttrs fixed point, the
# name from pname and version, meta checked (keys, licences, platforms) and
# meta.available computed, passthru merged, outputs, propagated inputs
# closed over, the phases assembled into a setup script, and the
# environment nixpkgs' derivations carry. Builders are /bin/sh with shell
# builtins only.
let
  metaKeys = [
    "description" "longDescription" "homepage" "downloadPage" "changelog" "license" "maintainers"
    "teams" "priority" "platforms" "badPlatforms" "hydraPlatforms" "broken" "unfree" "insecure"
    "knownVulnerabilities" "mainProgram" "position" "outputsToInstall" "available" "isBuildPythonPackage"
    "timeout" "maxSilent" "tests" "pkgConfigModules"
  ];
  hostPlatform = { inherit system; isLinux = builtins.match ".*-linux" system != null; isDarwin = builtins.match ".*-darwin" system != null; };
  platformMatch = lib.meta.platformMatch hostPlatform;
  checkLicense = pname: l:
    if builtins.isList l then builtins.all (checkLicense pname) l
    else if builtins.isAttrs l && l ? spdxId && l ? free then true
    else throw "${pname}: meta.license is not a licence";
  checkMeta = pname: meta:
    let unknown = builtins.filter (k: !builtins.elem k metaKeys) (builtins.attrNames meta);
    in if unknown != [ ] then throw "${pname}: unknown meta attributes: ${toString unknown}"
    else if !builtins.all (p: builtins.isAttrs p || builtins.elem p lib.platforms.all) (meta.platforms or [ ])
    then throw "${pname}: unknown platform in meta.platforms"
    else if meta ? license && !checkLicense pname meta.license then throw "${pname}: bad licence"
    else if meta ? maintainers && !builtins.all (m: m ? github) meta.maintainers then throw "${pname}: a maintainer without a github handle"
    else meta;
  availableOn = meta:
    (!(meta ? platforms) || builtins.any platformMatch meta.platforms)
    && !builtins.any platformMatch (meta.badPlatforms or [ ]);
  phases = [ "unpack" "patch" "configure" "build" "check" "install" "fixup" "installCheck" "dist" ];
  phaseScript = p: ''
    # ${p} phase
    for hook in $pre${p}Hooks; do :; done
    case " $dontRun " in *" ${p} "*) ;; *) : running ${p};; esac
    for hook in $post${p}Hooks; do :; done
  '';
  closePropagation = deps: lib.unique (deps ++ builtins.concatLists (map (d: d.propagated or [ ]) deps));
  mkDerivation = fnOrAttrs:
    let
      attrsFn = if builtins.isFunction fnOrAttrs then fnOrAttrs else (_: fnOrAttrs);
      attrs = lib.fix attrsFn;
      pname = attrs.pname;
      version = attrs.version or "";
      pos = builtins.unsafeGetAttrPos "pname" attrs;
      inputs = (attrs.deps or [ ]) ++ (attrs.buildInputs or [ ]);
      propagated = closePropagation (inputs ++ (attrs.propagatedBuildInputs or [ ]));
      outputs = attrs.outputs or [ "out" ];
      meta = checkMeta pname ({ description = "${pname} ${version}"; } // (attrs.meta or { }));
      passthru = attrs.passthru or { };
      env = removeAttrs attrs [ "pname" "version" "deps" "script" "meta" "passthru" "buildInputs" "propagatedBuildInputs" ] // {
        name = attrs.name or "${pname}-${version}";
        inherit system outputs;
        builder = "/bin/sh";
        deps = map toString propagated;
        nativeBuildInputs = map toString (attrs.nativeBuildInputs or [ ]);
        propagatedBuildInputs = map toString (attrs.propagatedBuildInputs or [ ]);
        phases = lib.concatStringsSep " " (map (p: "${p}Phase") phases);
        strictDeps = true;
        enableParallelBuilding = true;
        configureFlags = [ "--prefix=/" "--disable-static" "--enable-shared" ] ++ (attrs.configureFlags or [ ]);
        NIX_CFLAGS_COMPILE = lib.concatStringsSep " " (map (d: "-isystem ${d}/include") propagated);
        NIX_LDFLAGS = lib.concatStringsSep " " (map (d: "-L${d}/lib") propagated);
        args = [ "-c" (lib.concatStrings (map phaseScript phases) + ''
          for d in $deps; do read -r _ < "$d" || true; done
          BUILDLOG
          ${attrs.script or ""}
          for o in $outputs; do eval "[ -e \"\''${$o}\" ] || echo ${pname}-${version} > \"\''${$o}\""; done
        '') ];
      };
      drv = derivation env;
      fullMeta = meta // {
        available = availableOn meta && !(meta.broken or false);
      } // lib.optionalAttrs (pos != null) { position = "${pos.file}:${toString pos.line}"; };
    in
    drv // passthru // {
      inherit passthru propagated;
      meta = fullMeta;
      overrideAttrs = f: mkDerivation (final: let prev = attrsFn final; in prev // f prev);
    };
in
{ inherit mkDerivation hostPlatform; }
`,
		"pkgs/top-level/default.nix": `{ system, config }:

let
  lib = import ../../lib;
  stdenv = import ../stdenv { inherit system lib; };
  allowAliases = config.allowAliases or true;

  # lib.customisation in miniature: the result of a call can be called
  # again with other arguments (override), and a missing argument is
  # nixpkgs' abort.
  makeOverridable = f: args:
    let result = f args; in
    if builtins.isAttrs result then result // { override = more: makeOverridable f (args // more); } else result;
  callPackageWith = autoArgs: fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      fargs = builtins.functionArgs f;
      allArgs = builtins.intersectAttrs fargs autoArgs // args;
      missing = builtins.filter (n: !fargs.${n} && !(allArgs ? ${n})) (builtins.attrNames fargs);
    in
    if missing != [ ] then abort "lib.customisation.callPackageWith: Function called without required argument \"${builtins.head missing}\" at ${toString fn}"
    else makeOverridable f allArgs;
  callPackage = callPackageWith (pkgs // { inherit lib stdenv pkgs callPackage; });

  # pkgs/top-level/by-name-overlay.nix: every pkgs/by-name/XX/NAME/package.nix,
  # the shards' sets merged by lib.attrsets.mergeAttrsList as there.
  byNameDir = ../by-name;
  byName = builtins.mapAttrs (name: file: callPackage file { }) (lib.mergeAttrsList (map (shard:
    builtins.mapAttrs (name: _: byNameDir + "/${shard}/${name}/package.nix") (builtins.readDir (byNameDir + "/${shard}")))
    (builtins.attrNames (builtins.readDir byNameDir))));

  packages = import ./all-packages.nix { inherit lib stdenv callPackage pkgs; };
  pkgs = byName // packages // lib.optionalAttrs allowAliases (import ./aliases.nix pkgs)
    // { inherit lib stdenv; };
in
pkgs
`,
		"pkgs/top-level/aliases.nix": `pkgs:

{
  oldhello = pkgs.hello; # renamed to hello
  libmid_old = pkgs.libmid; # renamed to libmid
  six-py = pkgs.python3Packages.six; # moved into python3Packages
}
`,
	}
}
