# The basinix walker: evaluates attributes of a nixpkgs-style package set and
# streams records of finished attributes to stderr through builtins.trace.
# The caller knows the order of the walk, so when a process is killed by an
# error tryEval cannot catch, the first attribute without a record is where
# it died, and everything before it is kept.
#
# Every line is "trace: <nonce> <json list of records>"; the nonce is random
# per run so that package code cannot forge records with its own trace
# calls. Records come in groups of `batch` top-level attributes, one line a
# group (a line per record costs a write and a wake-up of the reader each);
# the first `fine` paths of an explicit list report each record at once, so
# that after a death the caller re-walks the unreported group finely and
# learns exactly which attribute died.
#
# Records:
#   ["c", names or null]     the package set evaluated; in chunk mode, the
#                            top-level names this process walks
#   ["d", path, drvPath, outPath]  path is a derivation (outPath: its
#                            first output's path, null when it fails)
#   ["x", path, drvPath]     tryEval failed (throw, assert); drvPath is the
#                            derivation with aliases on, or null. The
#                            message is fetched in strict mode when needed
#   ["r", path, [names]]     path is a recurseForDerivations set; its
#                            children follow in this order
#   ["n", path]              path is neither, or a set already on its own
#                            path (a cycle, walked once as nix-env does)
#   ["i", path, details]     details mode: meta, outputs and tests of path
#   ["w", round]             held: done with the walk (round 1) or with a
#                            request, now reading the next request
#
# A held process (`requests` set) does not exit after its walk: it reads
# requests from the named pipe `requests`, one JSON value a write, and
# answers each with its records: { mode = "walk" or "details"; aliases =
# bool; paths = [ path ... ]; fine; fast; } (aliases: in the set with
# aliases on; fine and fast as the arguments), or null to exit. Details
# of attributes it walked cost it little, as their values are already
# evaluated; a new process would import the set again.
{ src            # string: absolute path of the checkout
, system
, config         # the package set's config attribute set
, nonce
, pathsFile ? "" # JSON file with a list of attribute paths; "" means chunk mode
, chunk ? 0      # chunk mode: this process walks the top-level names whose hash mod chunks is chunk (a flake's jobs: see mine)
, chunks ? 1
, strict ? false # true: no tryEval around values, so a throw kills the process with its message
, mode ? "walk"  # "walk" or "details"
, batch ? 256    # top-level attributes a line
, fine ? 0       # explicit mode: the first `fine` paths report each record at once
, fast ? false   # walk groups under one tryEval (see steps)
, requests ? ""  # a named pipe: hold after the walk and serve requests read from it
, limits ? ""    # a JSON file { round; limit; }: in that round (0 the walk, then
                 # each request's number), stop before the group starting at
                 # limit: another walker took the rest of the list over
, maxDepth ? 16  # recursed sets nested deeper fail (nixpkgs nests 3 or 4)
, flake ? ""     # JSON of a FlakeSpec: src is a flake in the store, and the
                 # set walked is its jobs (flake-jobs.nix); no config, no aliases
}:
let
  inherit (builtins) trace toJSON tryEval isAttrs isList isString attrNames
    foldl' deepSeq filter genList length elemAt any map listToAttrs;

  emit = record: v: trace "${nonce} ${toJSON [ record ]}" v;
  emitAll = records: v: trace "${nonce} ${toJSON records}" v;

  pkgs =
    if flake != "" then import ./flake-jobs.nix { spec = builtins.fromJSON flake; inherit system; }
    else import (/. + src) { inherit system config; };
  # Imported only when an attribute throws: does it evaluate with aliases?
  pkgsAliases =
    if flake != "" then pkgs
    else import (/. + src) { inherit system; config = config // { allowAliases = true; }; };

  try = if strict then (v: { success = true; value = v; }) else tryEval;
  tryOr = d: v: let r = tryEval v; in if r.success then r.value else d;

  get = set: path: foldl' (s: n: s.${n}) set path;

  isDrv = v: isAttrs v && (v.type or null) == "derivation";

  aliasDrv = path:
    if strict || flake != "" then null else
    let v = tryOr null (get pkgsAliases path); in
    if isDrv v then tryOr null v.drvPath else null;

  # Nix has no identity test that does not force values (== forces every
  # attribute, an abort among them), so a set counts as one on its path
  # when an ancestor has the same attribute names defined at the same
  # places: the set itself (`s = { recurseForDerivations = true; me = s; }`)
  # or a copy made by the same expression, which would repeat it without
  # end. The walk carries its ancestors' names ({ names; v; } each, the
  # root's built once a round), and names are compared first: lists of
  # different lengths differ at once.
  positions = v: map (n: builtins.unsafeGetAttrPos n v) (attrNames v);
  onPath = anc: names: v: any (a: a.names == names && positions a.v == positions v) anc;
  tooDeep = path: "basinix: attribute sets nested more than ${toString maxDepth} levels deep at ${builtins.concatStringsSep "." path}";
  rootOf = set: [ { names = attrNames set; v = set; } ];

  # walker is a round's walk over set, split or not (a chunk walk of a
  # flake's jobs: see mine). Its functions close over both, so that an
  # attribute costs a call or two rather than one per argument: this is
  # the walk's hot path, run for every attribute of the set. For the same
  # reason recordOf spells out the derivation test, and getIn is get for
  # a top-level path: calling the helpers there (four more calls an
  # attribute) costs 7.6% of the walk's CPU time on the 20,000-attribute
  # nixpkgs-shaped sample (median of 10 paired runs, records identical).
  walker = split: set:
    let
      getIn = path: if length path == 1 then set.${elemAt path 0} else get set path;

      # recordOf is the record of path itself. t evaluates a value, as try
      # does, and o d v is v or d when v fails, as tryOr: the exact walk
      # catches each attribute's errors; the fast walk (see steps) lets
      # them through to its group's tryEval.
      recordOf = t: o: anc: path:
        let
          r = t (getIn path);
          v = r.value;
        in
          if split && length path == 1 && !(mine path) && (!r.success || isDrv v) then [ "n" path ] # another walker's
          else if !r.success then [ "x" path (aliasDrv path) ]
          else if isAttrs v && (v.type or null) == "derivation" then
            let d = t v.drvPath; in
            if d.success then [ "d" path d.value (o null v.outPath) ]
            else [ "x" path (aliasDrv path) ]
          else if !(isAttrs v && o false (v.recurseForDerivations or false) == true) then [ "n" path ]
          else
            let names = attrNames v; in
            if onPath anc names v then [ "n" path ]
            else if length path >= maxDepth then (if strict then throw (tooDeep path) else [ "x" path null ])
            else if split && length path == 1 then [ "r" path (filter (n: mine (path ++ [ n ])) names) ]
            else [ "r" path names ];
      exactRecord = recordOf try tryOr;

      # own is the exact record, forced inside an error context naming the
      # path: when an error tryEval cannot catch kills the process, Nix's
      # trace carries "… <nonce> <json path>" and the caller knows whom to
      # blame without walking the group again. Children of a recursed set
      # are walked outside it, so the trace names exactly one path.
      own = anc: path: builtins.addErrorContext "${nonce} ${toJSON path}" (
        let record = exactRecord anc path; in deepSeq record record);
      # fastOwn is the record without the attribute's own tryEvals, in the
      # same error context, and not forced there: the group is forced whole
      # (see steps). So a death in the attribute's value is named as in
      # own, and one in its drvPath or outPath is not. (Forcing those
      # inside the error context, by deepSeq or seq, costs as much as the
      # tryEvals save: 1.01x the exact walk against 0.91x, median of 16
      # paired runs of a half-set walker on the nixpkgs-shaped sample.)
      fastRecord = recordOf (v: { success = true; value = v; }) (d: v: v);
      fastOwn = anc: path: builtins.addErrorContext "${nonce} ${toJSON path}" (fastRecord anc path);

      # walkWith ownOf returns the records of path and, for a recursed set,
      # its children, each record made by ownOf. With each = true it emits
      # every record as soon as it is known instead.
      walkWith = ownOf: each: anc: path:
        let record = ownOf anc path; in
        if elemAt record 0 != "r" then (if each then emit record [ ] else [ record ])
        else walkSet ownOf each anc path record;

      walkSet = ownOf: each: anc: path: record:
        let
          # (A split top-level group's record names only this walker's children.)
          names = if split && length path == 1 then attrNames (getIn path) else elemAt record 2;
          below = anc ++ [ { inherit names; v = getIn path; } ];
          children = map (n: walkWith ownOf each below (path ++ [ n ])) (elemAt record 2);
        in
        if each then emit record (foldl' (acc: c: deepSeq c acc) [ ] children)
        else [ record ] ++ builtins.concatLists children;
    in { walk = walkWith own; fastWalk = walkWith fastOwn false; };

  # A flake's jobs are often grouped (hydraJobs.tests.*, a few top-level
  # names over thousands of jobs): chunks of top-level names would give
  # one walker a whole group. So a chunk walk of a flake's jobs goes over
  # every top-level name, and takes the top-level jobs and the children of
  # top-level groups whose path hashes to its chunk: each walker forces
  # every top-level value (to know a job from a group), and only its own
  # jobs' derivations, where the time goes.
  splitting = flake != "" && chunks > 1 && pathsFile == "";
  mine = path: let b = bucket (builtins.concatStringsSep "." path); in b - (b / chunks) * chunks == chunk;

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

  # details is the "i" record of path, forced inside an error context naming
  # it, as own does.
  details = set: path: builtins.addErrorContext "${nonce} ${toJSON path}" (
    let
      v = get set path;
      meta = tryOr { } (v.meta or { });
      outputs = tryOr [ "out" ] (v.outputs or [ "out" ]);
      tests = tryOr { } ((v.passthru or { }).tests or { });
      testNames = if isAttrs tests then filter (n: tryOr false (isDrv tests.${n})) (attrNames tests) else [ ];
      features = tryOr [ ] (v.requiredSystemFeatures or [ ]);
      record = [ "i" path {
        name = tryOr null (v.name or null);
        out = listToAttrs (map (o: { name = o; value = tryOr null v.${o}.outPath; }) (filter isString outputs));
        pos = tryOr null (meta.position or null);
        broken = tryOr false (meta.broken or false) == true;
        sup = tryOr true (supported meta);
        feat = if isList features then filter isString features else [ ];
        # The maintainers' GitHub handles (lib.maintainers entries have
        # github), for review requests.
        maint = let ms = tryOr [ ] (meta.maintainers or [ ]); in
          if isList ms then filter isString (map (m: tryOr null (if isAttrs m then m.github or null else null)) ms) else [ ];
        tests = listToAttrs (map (n: { name = n; value = tryOr null tests.${n}.drvPath; }) testNames);
      } ];
    in deepSeq record record);

  sublist = start: count: list: genList (i: elemAt list (start + i)) count;

  # The steps: the first `fine` paths one by one, the rest in groups of
  # `batch`, each group one line.
  #
  # A fast walk (`fast`, of a walk that is not strict) forces a group
  # under one tryEval, without each attribute's own tryEvals (fastOwn),
  # and walks the group exactly only when that fails: the records are the
  # same, and the walk costs 9-10% less CPU. An error tryEval cannot
  # catch in a drvPath or outPath is then not named by the trace, so the
  # caller asks for exact walks once a process of the evaluation has died.
  stopped = round: start:
    limits != "" && (let l = builtins.fromJSON (builtins.readFile (/. + limits)); in l.round == round && start >= l.limit);

  steps = round: set: mode: fast: fine: paths:
    let
      n = length paths;
      f = if fine < n then fine else n;
      rest = n - f;
      groups = (rest + batch - 1) / batch;
      root = rootOf set;
      split = splitting && round == 0;
      inherit (walker split set) walk fastWalk;
      one = if mode == "details" then (p: emit (details set p) null) else walk true root;
      many = if mode == "details" then (p: [ (details set p) ]) else walk false root;
      exactly = ps: builtins.concatLists (map many ps);
      group =
        if !fast || strict || mode != "walk" then exactly
        else ps:
          let r = tryEval (let recs = builtins.concatLists (map (fastWalk root) ps); in deepSeq recs recs); in
          if r.success then r.value else exactly ps;
    in
      map one (sublist 0 f paths)
      ++ genList (g:
        let
          start = f + g * batch;
          size = if rest - g * batch < batch then rest - g * batch else batch;
        in
        if stopped round start then null
        else emitAll (group (sublist start size paths)) null) groups;

  # foldl' with deepSeq forces the steps strictly in list order, which is what
  # lets the caller tell which attribute a dead process was on.
  walkAll = round: set: mode: fast: fine: paths: foldl' (acc: s: deepSeq s (acc + 1)) 0 (steps round set mode fast fine paths);

  # A name's chunk comes from a hash of it, not from its place in the list:
  # package sets are regular (every tenth package uses libmid, say), and
  # taking every other name would give one chunk most of the heavy ones.
  # (Hashes of paths, for a flake's jobs: see mine.)
  # (The first byte of the hash, by one lookup: this runs for every
  # top-level name in every walker.)
  byteValue = let hex = "0123456789abcdef"; in listToAttrs (genList (i: {
    name = builtins.substring (i / 16) 1 hex + builtins.substring (i - i / 16 * 16) 1 hex;
    value = i;
  }) 256);
  bucket = n: byteValue.${builtins.substring 0 2 (builtins.hashString "md5" n)};
  chunkNames =
    if chunks == 1 || splitting then attrNames pkgs
    else filter (n: let b = bucket n; in b - (b / chunks) * chunks == chunk) (attrNames pkgs);

  paths =
    if pathsFile != "" then
      builtins.seq (attrNames pkgs) (emit [ "c" null ] (builtins.fromJSON (builtins.readFile (/. + pathsFile))))
    else emit [ "c" chunkNames ] (map (n: [ n ]) chunkNames);

  # Each round reads the pipe anew (the let is per call), after telling the
  # caller it waits.
  serve = round:
    let req = emit [ "w" round ] (builtins.fromJSON (builtins.readFile (/. + requests))); in
    if req == null then round
    else builtins.seq (walkAll round (if req.aliases then pkgsAliases else pkgs) req.mode (req.fast or false) (req.fine or 0) req.paths) (serve (round + 1));
in
  builtins.seq (walkAll 0 pkgs mode fast fine paths) (if requests == "" then 0 else serve 1)
