# basinix, built from this checkout. vendorHash is the hash of
# `go mod vendor` for go.sum: a test (internal/nixos) recomputes it, so it
# is changed with the dependencies.
{ lib, buildGoModule, makeWrapper, git, nix }:

buildGoModule {
  pname = "basinix";
  version = "0.1.0-dev";

  src = lib.cleanSourceWith {
    src = ../.;
    # Not the packaging: editing the module does not rebuild the binary.
    # (nix/expr/*.nix are Go's: embedded in the binary.)
    filter = path: type:
      !(builtins.elem (lib.removePrefix (toString ../. + "/") (toString path)) [ "dist" "flake.nix" "flake.lock" "default.nix" ".ci" ]);
  };

  vendorHash = "sha256-aU+t/AnjuHYLTFOawbIYBQo3WqoYh4Z8r6EtRWAAo9U=";

  subPackages = [ "cmd/basinix" ];
  ldflags = [ "-s" "-w" ];

  nativeBuildInputs = [ makeWrapper ];
  # basinix runs git and Nix's commands; the system's Nix is the daemon's
  # client, so it comes after whatever PATH has.
  postInstall = ''
    wrapProgram $out/bin/basinix --prefix PATH : ${lib.makeBinPath [ git ]} --suffix PATH : ${lib.makeBinPath [ nix ]}
  '';

  # The tests need a Nix store they may build in and a git: run them with
  # `go test ./...` (README), not in the sandbox.
  doCheck = false;

  meta = {
    description = "Pull-request reviewer for large Nix package sets: a GitHub App with check runs, and a CLI";
    homepage = "https://github.com/basinix/basinix";
    mainProgram = "basinix";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
