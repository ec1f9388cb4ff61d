# The jobs of a flake, evaluated as flake-compat evaluates a flake: basinix
# has put the flake and every locked input in the store (spec, a FlakeSpec)
# and here calls each flake's outputs with its inputs, so that Nix's flakes
# feature stays off (with it on, restricted evaluation can be escaped).
#
# The jobs are the first of spec.jobs the flake has: basinixJobs and
# hydraJobs are walked whole, as Hydra walks hydraJobs (every attribute set
# is recursed into; a branch named after another system is left out);
# checks and packages give their system's set.
{ spec, system }:
let
  inherit (builtins) mapAttrs attrNames filter functionArgs isAttrs isFunction
    listToAttrs match concatStringsSep head tail length;

  nodes = mapAttrs (id: n:
    let
      sourceInfo = n.info // { outPath = builtins.storePath n.path; };
      # A flake in a directory of its source (?dir=, or .basinix.toml's
      # flake.dir) is that directory, its outPath too, as in Nix's
      # call-flake.nix; it may read the whole source.
      dir = n.dir or "";
      outPath = if dir == "" then sourceInfo.outPath else "${sourceInfo.outPath}/${dir}";
      inputs = mapAttrs (_: to: nodes.${to}) n.inputs;
      flake = import (outPath + "/flake.nix");
      declared = attrNames (flake.inputs or { })
        ++ filter (x: x != "self") (if isFunction flake.outputs then attrNames (functionArgs flake.outputs) else [ ]);
      missing = filter (x: !(inputs ? ${x})) declared;
      outputs =
        if missing != [ ] then
          throw "basinix: input${if length missing > 1 then "s" else ""} ${concatStringsSep ", " missing} of the flake ${if id == spec.root then "" else "'${id}' "}not locked in flake.lock: run `nix flake lock` and commit flake.lock"
        else flake.outputs (inputs // { self = result; });
      result =
        if n.flake then outputs // sourceInfo // { inherit outPath inputs outputs sourceInfo; _type = "flake"; }
        else sourceInfo;
    in
    result) spec.nodes;

  flakeOutputs = nodes.${spec.root}.outputs;

  isSystem = n: match "[a-z0-9_]+-(linux|darwin|freebsd|netbsd|openbsd|cygwin|windows|none)" n != null;
  isDrv = v: isAttrs v && (v.type or null) == "derivation";

  # Lazy in every value: a job that throws fails alone, in the walker. A
  # set whose names are all systems (hydraJobs.hello.x86_64-linux, or
  # basinixJobs.x86_64-linux.hello) stands for its system's value, so that
  # a job's name is the same on every system.
  names = v: filter (n: n != "recurseForDerivations") (attrNames v);
  perSystem = ns: ns != [ ] && builtins.all isSystem ns;
  mark = v:
    if !(isAttrs v) || isDrv v then v
    else
      let ns = names v; in
      if perSystem ns then (if v ? ${system} then mark v.${system} else { recurseForDerivations = true; })
      else
        listToAttrs (map (n: { name = n; value = mark v.${n}; }) (filter (n: !isSystem n || n == system) ns))
        // { recurseForDerivations = true; };

  pick = names:
    if names == [ ] then throw "basinix: the flake has none of the outputs ${concatStringsSep ", " spec.jobs}"
    else
      let n = head names; in
      if !(flakeOutputs ? ${n}) then pick (tail names)
      else if n == "checks" || n == "packages" then mark (flakeOutputs.${n}.${system} or { })
      else mark flakeOutputs.${n};
in
pick spec.jobs
