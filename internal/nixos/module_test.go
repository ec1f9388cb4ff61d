package nixos_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/basinix/basinix/app"
	"github.com/basinix/basinix/internal/testenv"
)

// evalModule evaluates dist/module.nix in the harness with services as
// services.basinix (a Nix expression).
func evalModule(t *testing.T, services string) map[string]any {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf("import %s/internal/nixos/testdata/harness.nix { module = %s/dist/module.nix; options = %s/dist/options.nix; services = %s; }", abs, abs, abs, services)
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", "-E", expr).CombinedOutput()
	if err != nil {
		t.Fatalf("the module does not evaluate: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// normalize makes v what JSON gives for it (numbers as float64).
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// services.basinix: its settings' defaults are config.example.yml's (each
// checked against its type), the configuration file it renders is the one
// basinix takes, with the defaults but for the state directory and the
// credentials, which come through LoadCredential and never from the Nix
// store; the unit is hardened; Nix trusts the service and gets the
// configured builders; nginx proxies with TLS.
func TestModule(t *testing.T) {
	testenv.RequireNix(t)
	got := evalModule(t, `{ enable = true; privateKeyFile = "/run/secrets/key.pem"; webhookSecretFile = "/run/secrets/hook";
		nginx = { enable = true; virtualHost = "basinix.example.org"; };
		settings.build.machines = [ "ssh-ng://builder@arm1 aarch64-linux /etc/basinix/id 4 2 big-parallel - -" ]; }`)

	example, err := os.ReadFile(filepath.Join(root, "config.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := yaml.Unmarshal(example, &want); err != nil {
		t.Fatal(err)
	}
	if g, w := normalize(t, got["settings"]), normalize(t, want); !jsonEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", " ")
		wb, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("the module's defaults differ from config.example.yml:\n%s\nwant\n%s", gb, wb)
	}
	if f := got["failedAssertions"].([]any); len(f) > 0 {
		t.Errorf("assertions failed: %v", f)
	}

	unit := got["unit"].(map[string]any)
	sc := unit["serviceConfig"].(map[string]any)
	m := regexp.MustCompile(`^/nix/store/0{32}-basinix/bin/basinix serve --config (/nix/store/[a-z0-9]{32}-basinix\.yml)$`).FindStringSubmatch(sc["ExecStart"].(string))
	if m == nil {
		t.Fatalf("ExecStart: %v", sc["ExecStart"])
	}
	rendered, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rendered, []byte("/run/secrets")) {
		t.Errorf("the configuration in the store names the secrets' files:\n%s", rendered)
	}
	loaded, err := app.LoadConfig(m[1])
	if err != nil {
		t.Fatalf("basinix does not take the rendered configuration: %v\n%s", err, rendered)
	}
	def, err := app.LoadConfig(filepath.Join(root, "config.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	def.DataDir = "/var/lib/basinix"
	def.Server.PrivateKeyFile = "/run/credentials/basinix.service/private-key"
	def.Server.WebhookSecretFile = "/run/credentials/basinix.service/webhook-secret"
	def.Build.Machines = []string{"ssh-ng://builder@arm1 aarch64-linux /etc/basinix/id 4 2 big-parallel - -"}
	gy, _ := yaml.Marshal(loaded)
	wy, _ := yaml.Marshal(def)
	if string(gy) != string(wy) {
		t.Errorf("the rendered configuration is not config.example.yml's (but for the state and credentials):\n%s\nwant\n%s", gy, wy)
	}

	for k, v := range map[string]any{"DynamicUser": true, "NoNewPrivileges": true, "ProtectSystem": "strict", "ProtectHome": true,
		"StateDirectory": "basinix", "PrivateTmp": true, "CapabilityBoundingSet": ""} {
		if sc[k] != v {
			t.Errorf("serviceConfig.%s = %v, want %v", k, sc[k], v)
		}
	}
	if lc := fmt.Sprint(sc["LoadCredential"]); lc != "[private-key:/run/secrets/key.pem webhook-secret:/run/secrets/hook]" {
		t.Errorf("LoadCredential %s", lc)
	}
	nix := got["nix"].(map[string]any)
	if fmt.Sprint(nix["settings"].(map[string]any)["trusted-users"]) != "[basinix]" || nix["distributedBuilds"] != true {
		t.Errorf("nix: %v", nix)
	}
	bm := nix["buildMachines"].([]any)[0].(map[string]any)
	if bm["hostName"] != "builder@arm1" || bm["protocol"] != "ssh-ng" || bm["maxJobs"] != 4.0 || fmt.Sprint(bm["supportedFeatures"]) != "[big-parallel]" || bm["publicHostKey"] != nil {
		t.Errorf("build machine: %v", bm)
	}
	vh := got["nginx"].(map[string]any)["virtualHosts"].(map[string]any)["basinix.example.org"].(map[string]any)
	if vh["forceSSL"] != true || vh["enableACME"] != true || fmt.Sprint(vh["locations"]) != "map[/:map[proxyPass:http://127.0.0.1:8080]]" {
		t.Errorf("nginx virtual host: %v", vh)
	}

	// Without the secrets' files the module refuses, saying what to set.
	got = evalModule(t, `{ enable = true; }`)
	if f := fmt.Sprint(got["failedAssertions"]); !strings.Contains(f, "privateKeyFile and webhookSecretFile must be set") {
		t.Errorf("assertions without secrets: %s", f)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// Every .nix file of the repository parses.
func TestNixFilesParse(t *testing.T) {
	testenv.RequireNix(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flake.nix", "default.nix", "dist/module.nix", "dist/package.nix", "dist/options.nix"} {
		if !slices.Contains(files, filepath.Join(root, want)) {
			t.Errorf("%s is missing", want)
		}
	}
	for _, f := range files {
		if out, err := exec.Command("nix-instantiate", "--parse", f).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %s", f, out)
		}
	}
}

var vendorHash = regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/=]+)";`)

// dist/package.nix's vendorHash is the hash of `go mod vendor` for this
// go.sum (what buildGoModule's goModules derivation holds), and its
// version is basinix's.
func TestPackage(t *testing.T) {
	testenv.RequireNix(t)
	pkg, err := os.ReadFile(filepath.Join(root, "dist/package.nix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pkg, []byte(fmt.Sprintf("version = %q;", app.Version))) {
		t.Errorf("dist/package.nix does not have the version %s", app.Version)
	}
	dir := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command", "hash", "path", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.TrimSpace(string(out))
	if testenv.Update() {
		if err := os.WriteFile(filepath.Join(root, "dist/package.nix"), vendorHash.ReplaceAll(pkg, []byte(`vendorHash = "`+sum+`";`)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if m := vendorHash.FindSubmatch(pkg); m == nil || string(m[1]) != sum {
		t.Errorf("dist/package.nix: vendorHash %q, go mod vendor gives %s (go test ./internal/nixos -update)", m, sum)
	}
}
