# A minimal stand-in for the NixOS module system, for the test of
# dist/module.nix where nixpkgs' lib is not available (no network): the
# lib functions and types the module uses, each type with its check; the
# options' defaults, checked against their types; and the module's config
# for a given services.basinix, with mkIf resolved. What it cannot check:
# nixpkgs' real option merging and type descriptions, systemd's unit
# rendering, nginx and ACME, pkgs.formats.yaml (here JSON, which YAML
# reads), and the package's build (buildGoModule needs nixpkgs).
{ module, options, services }:

let
  inherit (builtins) isAttrs isBool isInt isString isList isPath all attrValues mapAttrs filter head tail length
    substring stringLength elemAt;

  type = name: check: { inherit name check; };
  types = {
    bool = type "bool" isBool;
    int = type "int" isInt;
    number = type "number" (x: isInt x || builtins.isFloat x);
    str = type "str" isString;
    path = type "path" (x: isString x || isPath x);
    package = type "package" (x: isString x || isAttrs x);
    anything = type "anything" (_: true);
    listOf = t: type "listOf ${t.name}" (x: isList x && all t.check x);
    attrsOf = t: type "attrsOf ${t.name}" (x: isAttrs x && all t.check (attrValues x));
    nullOr = t: type "nullOr ${t.name}" (x: x == null || t.check x);
    submodule = m: type "submodule" isAttrs // { inherit (m) options; };
  };

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  removePrefix = p: s: if hasPrefix p s then substring (stringLength p) (stringLength s) s else s;
  splitString = sep: s: filter isString (builtins.split sep s);
  recursiveUpdate = a: b: a // mapAttrs (n: v: if isAttrs v && isAttrs (a.${n} or null) then recursiveUpdate a.${n} v else v) b;

  lib = {
    inherit types hasPrefix removePrefix splitString recursiveUpdate filter;
    mkOption = o: o // { _type = "option"; };
    mkEnableOption = what: { _type = "option"; type = types.bool; default = false; description = "Whether to enable ${what}."; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkDefault = x: x;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = c: x: if c then [ x ] else [ ];
    optionalAttrs = c: s: if c then s else { };
    toInt = builtins.fromJSON;
    getExe = p: "${p}/bin/basinix";
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
  };

  # The defaults of an options tree, each checked against its type.
  defaults = path: opts: mapAttrs
    (n: o:
      if (o._type or null) == "option" then
        (if o ? default && !(o.type.check o.default) then throw "${path}.${n}: the default is not a ${o.type.name}" else o.default or null)
      else defaults "${path}.${n}" o)
    opts;

  pkgs = {
    basinix = "/nix/store/00000000000000000000000000000000-basinix";
    git = "/nix/store/00000000000000000000000000000000-git";
    formats.yaml = { }: { type = types.anything; generate = name: value: builtins.toFile name (builtins.toJSON value); };
  };

  eval = m: import m { inherit lib pkgs config; };
  opts = (eval module).options.services.basinix;
  settingsDefaults = defaults "settings" (import options { inherit lib; });
  config = {
    services.basinix = defaults "services.basinix" (removeAttrs opts [ "settings" ]) // services // {
      settings = recursiveUpdate settingsDefaults (services.settings or { });
    };
    nix.package = "/nix/store/00000000000000000000000000000000-nix";
  };
  out = (eval module).config;
  resolve = v: if (v._type or null) == "if" then (if v.condition then resolve v.content else { }) else v;
  content = resolve out;
in
{
  settings = settingsDefaults;
  settingsType = opts.settings.type.name;
  unit = content.systemd.services.basinix or { };
  failedAssertions = map (a: a.message) (filter (a: !a.assertion) (content.assertions or [ ]));
  nix = content.nix or { };
  nginx = resolve (content.services.nginx or { });
}
