package build

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
)

// sshRemote is the one-machine recipe of NIX.md: sshd on 127.0.0.1 whose
// keys each force a wrapper giving the remote its own /nix, so a "remote"
// machine never shares the local store.
type sshRemote struct {
	port    int
	hostKey string // base64 of the public host key, as machine lines want it
	keys    map[string]string
}

// needSSH skips when the test cannot have root, sshd and unshare, unless
// BASINIX_REQUIRE_SSH is set (CI sets it: there the test must run).
func needSSH(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to bind-mount a private /nix)")
	}
	for _, p := range []string{"/usr/sbin/sshd", "ssh-keygen", "unshare"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "remote building test needs " + strings.Join(missing, ", ") + " (apt-get install openssh-server util-linux; run as root)"
	if os.Getenv("BASINIX_REQUIRE_SSH") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startSSHRemote starts sshd with one client key per remote name; each key's
// sessions see their own /nix.
func startSSHRemote(t *testing.T, names ...string) *sshRemote {
	t.Helper()
	needSSH(t)
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey"))
	r := &sshRemote{keys: map[string]string{}}
	var authorized strings.Builder
	for _, name := range names {
		key := filepath.Join(dir, "key-"+name)
		run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
		r.keys[name] = key
		store := filepath.Join(dir, "nix-"+name)
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		wrap := filepath.Join(dir, "wrap-"+name+".sh")
		script := fmt.Sprintf(`#!/bin/sh
export NIX_CONFIG="extra-platforms = aarch64-linux
substituters =
build-users-group ="
exec unshare -m --propagation private sh -c 'mount --bind %s /nix && exec sh -c "$SSH_ORIGINAL_COMMAND"'
`, store)
		if err := os.WriteFile(wrap, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&authorized, "command=%q,restrict %s", wrap, pub)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(authorized.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "hostkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	r.hostKey = base64.StdEncoding.EncodeToString(hostPub)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile %s
`, r.port, filepath.Join(dir, "hostkey"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))), 0o600); err != nil {
		t.Fatal(err)
	}
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	sshd.Stderr = logf
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sshd.Process.Kill()
		sshd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("sshd log:\n%s", b)
		}
	})
	testenv.Eventually(t, 10*time.Second, func() bool {
		var c net.Conn
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
		}
		return err == nil
	}, func() string { return fmt.Sprintf("sshd did not start: %v", err) })
	return r
}

// Derivations go to the machine whose systems and features fit; a machine
// that refuses connections is marked down and the build still completes.
func TestRemoteMachines(t *testing.T) {
	r := startSSHRemote(t, "multi", "big")
	multi := &Machine{URI: "ssh-ng://root@127.0.0.1", Systems: []string{"x86_64-linux", "aarch64-linux"}, SSHKey: r.keys["multi"],
		MaxJobs: 2, SpeedFactor: 1, HostKey: r.hostKey}
	big := &Machine{URI: "ssh-ng://root@localhost", Systems: []string{"x86_64-linux"}, SSHKey: r.keys["big"],
		MaxJobs: 2, SpeedFactor: 1, SupportedFeatures: []string{"big-parallel"}, MandatoryFeatures: []string{"big-parallel"}, HostKey: r.hostKey}
	// The fastest machine, so it is tried first; nothing listens there.
	refusing := &Machine{URI: "ssh-ng://root@127.0.0.2", Systems: []string{"x86_64-linux", "aarch64-linux"}, SSHKey: r.keys["multi"],
		MaxJobs: 4, SpeedFactor: 10, HostKey: r.hostKey}
	f := newFixture(t, Options{
		Local:      Machine{Systems: []string{"x86_64-linux"}, MaxJobs: 0}, // build nothing locally
		Machines:   []*Machine{refusing, multi, big},
		SSHOptions: fmt.Sprintf("-p %d -o ConnectTimeout=5", r.port),
	})

	got := f.build(false, "arm", "big", "good")
	wantMachine := map[string]string{"arm": multi.URI, "big": big.URI, "good": multi.URI}
	for a, m := range wantMachine {
		o := got[a]
		if o.Result != Success || o.Machine != m {
			t.Errorf("%s: %s on %q (%s), want success on %s", a, o.Result, o.Machine, o.Message, m)
		}
		if o.Log == "" {
			t.Errorf("%s: no log kept for a remote build", a)
		}
	}
	f.pool.mu.Lock()
	down := !f.pool.machines[1].upLocked(time.Now())
	f.pool.mu.Unlock()
	if !down {
		t.Errorf("the machine refusing connections is not marked down")
	}
}
