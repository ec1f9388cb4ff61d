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
  # Hostile and unlucky builds: a line longer than any bound (540 MB, past
  # the 512 MiB that once failed a whole batch; its log compresses to a
  # few KB), a builder killed by SIGKILL (as the OOM killer does), a build
  # that fails for want of disk space.
  longline = mk "longline" "head -c 540000000 /dev/zero | tr '\\0' x; echo; echo after the long line; echo ok > $out" { PATH = "/usr/bin:/bin"; };
  killed = mk "killed" "echo about to be killed; kill -9 $$" { };
  # 200 MB in one line: tail keeps it whole (cgroup memory limits); the
  # build fails as make does when the kernel kills a compiler.
  hungry = mk "hungry" "echo allocating; head -c 200000000 /dev/zero | tail > /dev/null || exit 2; echo ok > $out" { PATH = "/usr/bin:/bin"; };
  hungrybig = mk "hungrybig" "echo allocating; head -c 200000000 /dev/zero | tail > /dev/null || exit 2; echo ok > $out" { PATH = "/usr/bin:/bin"; requiredSystemFeatures = [ "big-parallel" ]; };
  # Spins for two seconds of wall time, then writes its CPU times (cgroup
  # CPU quotas).
  spin = mk "spin" "end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done; times > $out" { PATH = "/usr/bin:/bin"; };
  fodmismatch = mk "fodmismatch" "echo hello > $out" { outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "0000000000000000000000000000000000000000000000000000"; };
  diskfull = mk "diskfull" "echo 'cp: error writing /build/big: No space left on device' >&2; exit 1" { };
}
