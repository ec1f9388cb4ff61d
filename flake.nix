{
  description = "basinix: a pull-request reviewer for large Nix package sets (GitHub App with check runs, and a CLI)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        basinix = pkgs.callPackage ./dist/package.nix { };
        default = basinix;
      });

      overlays.default = final: prev: { basinix = final.callPackage ./dist/package.nix { }; };

      # services.basinix; the overlay gives it its package.
      nixosModules.basinix = {
        imports = [ ./dist/module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };
      nixosModules.default = self.nixosModules.basinix;

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.go pkgs.gopls pkgs.git pkgs.nix pkgs.sqlite ];
        };
      });

      checks = forAll (pkgs: { basinix = self.packages.${pkgs.stdenv.hostPlatform.system}.basinix; });
    };
}
