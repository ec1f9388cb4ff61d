# basinix for those who do not use flakes:
#   nix-build                  the package
#   imports = [ (import ./. { }).module ];   in a NixOS configuration
{ pkgs ? import <nixpkgs> { } }:

let
  basinix = pkgs.callPackage ./dist/package.nix { };
in
basinix // {
  module = { imports = [ ./dist/module.nix ]; services.basinix.package = pkgs.lib.mkDefault basinix; };
  overlay = final: prev: { basinix = final.callPackage ./dist/package.nix { }; };
}
