# Derivations for the build pool's tests. Every build appends its name to
# the file `counter`, so a test counts the builds Nix really ran; `nonce`
# makes them new to the store.
{ nonce, counter, system ? builtins.currentSystem }:
let
  mk = name: script: extra: derivation ({
    inherit name nonce system;
    builder = "/bin/sh";
    args = [ "-c" "echo ${name} >> ${counter}; ${script}" ];
  } // extra);
  ok = name: extra: mk name "echo building ${name}; echo ${name} > $out" extra;
in rec {
  base = ok "base" { };
  good = ok "good" { deps = [ base ]; };
  bad = mk "bad" "echo failing here; echo the end >&2; exit 3" { deps = [ base ]; };
  usesbad = ok "usesbad" { deps = [ bad good ]; };
  usesusesbad = ok "usesusesbad" { deps = [ usesbad ]; };
  silent = mk "silent" "echo going quiet; /bin/sleep 60" { };
  chatty = mk "chatty" "while :; do echo tick; /bin/sleep 0.2; done" { };
  arm = ok "arm" { system = "aarch64-linux"; };
  big = ok "big" { requiredSystemFeatures = [ "big-parallel" ]; };
  shared1 = ok "shared1" { deps = [ base good ]; };
  shared2 = ok "shared2" { deps = [ base good ]; };
}
