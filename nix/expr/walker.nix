# The basinix walker: evaluates attributes of a nixpkgs-style package set and
# streams one record per step to stderr through builtins.trace, so that a
# process killed by an error tryEval cannot catch still tells which attribute
# it was evaluating (the last "s" record) and everything it finished before.
#
# Every record is "trace: <nonce> <json>"; the nonce is random per run so
# that package code cannot forge records with its own builtins.trace calls.
#
# Records:
#   ["s", path]              evaluation of path starts
#   ["c", [names]]           the top-level names of this chunk (chunk mode)
#   ["r", path, [names]]     path is a recurseForDerivations set; its children follow
#   ["x", path]              tryEval failed (throw, assert): message fetched in strict mode
#   ["d", path, info]        path is a derivation; info described in eval/walker.go
#   ["t", path, tests]       tests mode: name -> drvPath (null when it throws)
{ src            # string: absolute path of the checkout
, system
, config         # the package set's config attribute set
, nonce
, pathsFile ? "" # JSON file with a list of attribute paths; "" means chunk mode
, chunk ? 0      # chunk mode: this process walks top-level names i where i mod chunks == chunk
, chunks ? 1
, strict ? false # true: no tryEval around values, so a throw kills the process with its message
, mode ? "walk"  # "walk" or "tests"
}:
let
  inherit (builtins) trace toJSON tryEval isAttrs isList isString attrNames
    foldl' deepSeq seq filter genList length elemAt any map listToAttrs;

  emit = record: v: trace "${nonce} ${toJSON record}" v;

  pkgs = import (/. + src) { inherit system config; };

  try = if strict then (v: { success = true; value = v; }) else tryEval;
  tryOr = d: v: let r = tryEval v; in if r.success then r.value else d;

  get = set: path: foldl' (s: n: s.${n}) set path;

  isDrv = v: isAttrs v && (v.type or null) == "derivation";

  # Platform check in the spirit of lib.meta.availableOn: strings name a
  # system; attribute-set patterns go through the set's own lib when it has one.
  platformMatch =
    let
      host = tryOr null (pkgs.stdenv.hostPlatform or null);
      libMatch = tryOr null (pkgs.lib.meta.platformMatch or null);
    in p:
      if isString p then p == system
      else if isAttrs p && p ? system then p.system == system
      else if libMatch != null && host != null then tryOr true (libMatch host p)
      else true;

  supported = meta:
    let
      platforms = tryOr null (meta.platforms or null);
      bad = tryOr [ ] (meta.badPlatforms or [ ]);
    in
      (!isList platforms || any platformMatch platforms)
      && !(isList bad && any platformMatch bad);

  info = v:
    let
      meta = tryOr { } (v.meta or { });
      drvPath = tryOr null v.drvPath;
      outputs = tryOr [ "out" ] (v.outputs or [ "out" ]);
      tests = tryOr { } ((v.passthru or { }).tests or { });
      features = tryOr [ ] (v.requiredSystemFeatures or [ ]);
    in {
      drv = if strict then v.drvPath else drvPath;
      name = tryOr null (v.name or null);
      out = listToAttrs (map (o: { name = o; value = tryOr null v.${o}.outPath; }) (filter isString outputs));
      pos = tryOr null (meta.position or null);
      broken = tryOr false (meta.broken or false) == true;
      sup = tryOr true (supported meta);
      feat = if isList features then filter isString features else [ ];
      tests = if isAttrs tests then attrNames tests else [ ];
    };

  walk = path: emit [ "s" path ] (
    let r = try (get pkgs path); v = r.value; in
    if !r.success then emit [ "x" path ] null
    else if isDrv v then emit [ "d" path (info v) ] null
    else if isAttrs v && tryOr false (v.recurseForDerivations or false) == true then
      let names = attrNames v; in
      emit [ "r" path names ] (walkAll (map (n: path ++ [ n ]) names))
    else null);

  testsOf = path: emit [ "s" path ] (
    let
      v = get pkgs path;
      tests = (v.passthru or { }).tests or { };
      drvOf = t: if strict then t.drvPath else tryOr null t.drvPath;
    in
      emit [ "t" path (listToAttrs (map (n: { name = n; value = drvOf tests.${n}; })
        (filter (n: tryOr false (isDrv tests.${n})) (attrNames tests)))) ] null);

  step = if mode == "tests" then testsOf else walk;

  # foldl' with deepSeq forces the steps strictly in list order, which is what
  # makes "the last s record" name the attribute a dead process was on.
  walkAll = paths: foldl' (acc: p: deepSeq (step p) (acc + 1)) 0 paths;

  chunkNames =
    let all = attrNames pkgs; in
    filter (n: n != null) (genList (i: if i - (i / chunks) * chunks == chunk then elemAt all i else null) (length all));

  paths =
    if pathsFile != "" then builtins.fromJSON (builtins.readFile (/. + pathsFile))
    else emit [ "c" chunkNames ] (map (n: [ n ]) chunkNames);
in
  walkAll paths
