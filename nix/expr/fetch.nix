# Trusted: fetches one input a flake.lock pins, or copies a flake's own
# checkout into the store as Nix does (without .git), and returns its store
# path. basinix runs it outside restricted evaluation, with the lock's
# values as string arguments (never as code), and only for inputs it
# checked: local ones below the allowed directories, remote ones over
# https, each with its narHash (git also with its rev), which Nix verifies.
{ type, path ? "", url ? "", rev ? "", ref ? "", submodules ? "", narHash ? "" }:
let
  sha256 = if narHash == "" then { } else { sha256 = narHash; };
  copy = builtins.path {
    path = /. + path;
    name = "source";
    filter = p: t: !(baseNameOf p == ".git" && dirOf p == path);
  };
in
if type == "self" then copy
else if type == "path" then builtins.path ({ path = /. + path; name = "source"; } // sha256)
else if type == "git" then
  (builtins.fetchGit ({ inherit url rev; allRefs = true; submodules = submodules == "1"; }
    // (if ref != "" then { inherit ref; } else { })
    // (if narHash != "" then { inherit narHash; } else { }))).outPath
else if type == "github" || type == "tarball" then builtins.fetchTarball ({ inherit url; name = "source"; } // sha256)
else throw "basinix: inputs of type ${type} are not fetched"
