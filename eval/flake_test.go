package eval_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// nixFlakeEval is what Nix's own flakes give for attr of the flake at dir:
// the reference basinix's flake evaluation (flakes off) must match.
func nixFlakeEval(t *testing.T, dir, attr string) string {
	t.Helper()
	ref := "git+file://" + dir + "?rev=" + strings.TrimSpace(testenv.Git(t, dir, "rev-parse", "HEAD"))
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "eval", "--raw", ref+"#"+attr).CombinedOutput()
	if err != nil {
		t.Fatalf("nix eval %s: %v: %s", attr, err, out)
	}
	return string(out)
}

func flakeSample(t *testing.T, opt sampleset.FlakeOptions) *sampleset.FlakeRepo {
	t.Helper()
	testenv.RequireNix(t)
	r, err := sampleset.GenerateFlake(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A flake's jobs are its basinixJobs, walked whole with per-system sets
// standing for their system's value: the same job names on every system,
// the derivations Nix's own flakes give, an evaluation error at its
// file and line, and nothing of Nix's flakes feature turned on.
func TestFlakeJobs(t *testing.T) {
	repo := flakeSample(t, sampleset.FlakeOptions{})
	ev := newEvaluator(t, eval.Options{Workers: 2, FlakeLocalInputs: []string{repo.Inputs}})
	ctx := context.Background()

	base := evaluate(t, ev, repo.Dir, "x86_64-linux")
	want := []string{"changes", "depfails", "failing", "fixed", "group.nested", "oldjob", "passing"}
	if got := slices.Sorted(maps.Keys(okAttrs(base))); !slices.Equal(got, want) {
		t.Errorf("master's jobs: %v, want %v", got, want)
	}
	for _, job := range []string{"passing", "group.nested"} {
		if got, want := base.Attrs[job].DrvPath, nixFlakeEval(t, repo.Dir, "basinixJobs.x86_64-linux."+job+".drvPath"); got != want {
			t.Errorf("%s: drvPath %s, Nix's flakes give %s", job, got, want)
		}
	}
	arm := evaluate(t, ev, repo.Dir, "aarch64-linux")
	if got := slices.Sorted(maps.Keys(okAttrs(arm))); !slices.Equal(got, want) {
		t.Errorf("aarch64-linux jobs: %v, want %v", got, want)
	}
	if arm.Attrs["passing"].DrvPath == base.Attrs["passing"].DrvPath {
		t.Errorf("passing: the same derivation on both systems")
	}

	testenv.Git(t, repo.Dir, "checkout", "--quiet", "pr")
	head := evaluate(t, ev, repo.Dir, "x86_64-linux")
	want = []string{"changes", "depfails", "failing", "fixed", "group.nested", "newjob", "passing"}
	if got := slices.Sorted(maps.Keys(okAttrs(head))); !slices.Equal(got, want) {
		t.Errorf("the PR's jobs: %v, want %v", got, want)
	}
	if a := head.Attrs["evalbreaks"]; a == nil || a.Error == nil {
		t.Fatalf("evalbreaks: want an evaluation error, got %+v", a)
	}
	msgs, err := ev.Explain(ctx, repo.Dir, "x86_64-linux", []eval.Path{{"evalbreaks"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs["evalbreaks"]; m == nil || !strings.Contains(m.Message, "undefined variable 'notInScope'") || m.File != "jobs/evalbreaks.nix" || m.Line != 3 {
		t.Errorf("evalbreaks: %+v, want undefined variable at jobs/evalbreaks.nix:3", m)
	}
	if a := head.Attrs["passing"]; a.DrvPath != base.Attrs["passing"].DrvPath {
		t.Errorf("passing changed from master to the PR: %s -> %s", base.Attrs["passing"].DrvPath, a.DrvPath)
	}
	if a := head.Attrs["changes"]; a.DrvPath == base.Attrs["changes"].DrvPath {
		t.Errorf("changes did not change")
	}
}

// An input that flake.lock does not lock, and a local input outside
// eval.flake_local_inputs, make the flake fail to evaluate with a message
// that says what to do; nothing is fetched for them.
func TestFlakeInputsMustBeLockedAndAllowed(t *testing.T) {
	repo := flakeSample(t, sampleset.FlakeOptions{Unlocked: true})
	ctx := context.Background()

	ev := newEvaluator(t, eval.Options{Workers: 2, FlakeLocalInputs: []string{repo.Inputs}})
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "pr")
	res, err := ev.Evaluate(ctx, repo.Dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, "input unlocked of the flake not locked in flake.lock: run `nix flake lock`") {
		t.Errorf("unlocked input: want the flake refused, got %+v", res.Error)
	}

	testenv.Git(t, repo.Dir, "checkout", "--quiet", "master")
	strict := newEvaluator(t, eval.Options{Workers: 2})
	res, err = strict.Evaluate(ctx, repo.Dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, "outside the directories local inputs may come from (eval.flake_local_inputs)") {
		t.Errorf("local input not allowed: want the flake refused, got %+v", res.Error)
	}
}

// A flake's code is as restricted as a package set's: it reads nothing
// outside its own source and its locked inputs (not through a symlink, not
// through flakes' fetchers), and a lock cannot make basinix copy a
// machine's file into the store. Its self is the source Nix's flakes give.
func TestFlakeCodeCannotReadOutsideItsSource(t *testing.T) {
	testenv.RequireNix(t)
	secretDir := t.TempDir()
	const secret = "-----BEGIN RSA PRIVATE KEY-----MIIEflakesecret"
	keyFile := filepath.Join(secretDir, "app.pem")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =")

	dir := filepath.Join(t.TempDir(), "flake")
	steal := func(expr string) string { return "throw (" + expr + ")" }
	jobs := map[string]string{
		"readkey":   steal(`builtins.readFile "` + keyFile + `"`),
		"symlink":   steal(`builtins.readFile ./link`),
		"fetchtree": steal(`builtins.readFile (builtins.fetchTree { type = "path"; path = "` + keyFile + `"; }).outPath`),
		"getflake":  steal(`builtins.readFile ((builtins.getFlake "path:` + secretDir + `").outPath + "/app.pem")`),
		"selfsrc":   `derivation { name = "selfsrc"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "cat ${self}/flake.nix > $out" ]; }`,
	}
	var b strings.Builder
	b.WriteString("{\n  outputs = { self }: {\n    checks.x86_64-linux = {\n")
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		b.WriteString("      " + name + " = " + jobs[name] + ";\n")
	}
	b.WriteString("    };\n  };\n}\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(b.String()), 0o644)
	if err := os.Symlink(keyFile, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, dir, "init", "--quiet")
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "--quiet", "-m", "hostile flake")

	ev := newEvaluator(t, eval.Options{Workers: 2})
	res := evaluate(t, ev, dir, "x86_64-linux")
	if got, want := res.Attrs["selfsrc"].DrvPath, nixFlakeEval(t, dir, "checks.x86_64-linux.selfsrc.drvPath"); got != want {
		t.Errorf("selfsrc: drvPath %s, Nix's flakes give %s", got, want)
	}
	var paths []eval.Path
	for name := range jobs {
		if name != "selfsrc" {
			paths = append(paths, eval.Path{name})
		}
	}
	msgs, err := ev.Explain(context.Background(), dir, "x86_64-linux", paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		m := msgs[p[0]]
		if m == nil {
			t.Errorf("%s: want an error", p[0])
			continue
		}
		if strings.Contains(m.Message, "flakesecret") {
			t.Errorf("%s: the message shows the secret: %s", p[0], m.Message)
		}
		t.Logf("%s: %s", p[0], m.Message)
	}

	// A lock naming a machine's file as a path input is refused before
	// anything is fetched.
	lock, _ := json.Marshal(map[string]any{"version": 7, "root": "root", "nodes": map[string]any{
		"root": map[string]any{"inputs": map[string]any{"key": "key"}},
		"key":  map[string]any{"flake": false, "locked": map[string]any{"type": "path", "path": secretDir, "narHash": "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}},
	}})
	os.WriteFile(filepath.Join(dir, "flake.lock"), lock, 0o644)
	res, err = ev.Evaluate(context.Background(), dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, "outside the directories local inputs may come from") {
		t.Errorf("a path input outside the allowed directories: want the flake refused, got %+v", res.Error)
	}
}

// A flake's grouped jobs are split between the walkers below the top
// level (a group of thousands is not one walker's): whatever the number
// of walkers, every job is evaluated once with the same result, a job in a
// group that aborts (killing its walker) fails alone, and so does a
// top-level job that aborts.
func TestFlakeJobsSplitBetweenWalkers(t *testing.T) {
	repo := flakeSample(t, sampleset.FlakeOptions{Bulk: 60})
	index := filepath.Join(repo.Dir, "jobs/default.nix")
	body, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), "\n}\n", "\n  aborts = abort \"top-level job aborts\";\n"+
		"  more = { ok = mk \"more-ok\" \"echo ok > $out\"; dies = abort \"grouped job aborts\"; throws = throw \"grouped job throws\"; };\n}\n", 1))
	if err := os.WriteFile(index, body, 0o644); err != nil {
		t.Fatal(err)
	}
	ev := newEvaluator(t, eval.Options{Workers: 3, FlakeLocalInputs: []string{repo.Inputs}})
	var first map[string]string
	for _, chunks := range []int{1, 2, 3} {
		res, err := ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", chunks)
		if err != nil || res.Error != nil {
			t.Fatalf("%d walkers: %v %v", chunks, err, res.Error)
		}
		got := map[string]string{}
		for name, a := range res.Attrs {
			got[name] = a.DrvPath
			if a.Error != nil {
				got[name] = "error"
			}
		}
		if n := len(got); n != 60+7+4 {
			t.Errorf("%d walkers: %d jobs, want %d", chunks, n, 60+7+4)
		}
		for _, job := range []string{"aborts", "more.dies", "more.throws"} {
			if got[job] != "error" {
				t.Errorf("%d walkers: %s: %q, want an error", chunks, job, got[job])
			}
		}
		if !strings.HasSuffix(got["more.ok"], "-more-ok.drv") || !strings.HasSuffix(got["bulk.job00042"], "-job00042.drv") {
			t.Errorf("%d walkers: more.ok %q, bulk.job00042 %q", chunks, got["more.ok"], got["bulk.job00042"])
		}
		if first == nil {
			first = got
		} else if !maps.Equal(got, first) {
			t.Errorf("%d walkers give other results than 1:\n%v\n%v", chunks, got, first)
		}
	}
}

// A flake in a directory of its repository, with its jobs in an output of
// its own, both named by the repository's .basinix.toml, is evaluated as
// Nix's own flakes evaluate git+file://REPO?dir=DIR: the same
// derivations, the whole repository readable (a job reads a file outside
// the flake's directory), errors at their file in the repository; and a
// bad .basinix.toml is the evaluation's error, at its line.
func TestFlakeInDirectory(t *testing.T) {
	repo := flakeSample(t, sampleset.FlakeOptions{Dir: "ci"})
	ev := newEvaluator(t, eval.Options{Workers: 2, FlakeLocalInputs: []string{repo.Inputs}})
	ctx := context.Background()

	base := evaluate(t, ev, repo.Dir, "x86_64-linux")
	want := []string{"changes", "depfails", "failing", "fixed", "group.nested", "oldjob", "passing"}
	if got := slices.Sorted(maps.Keys(okAttrs(base))); !slices.Equal(got, want) {
		t.Fatalf("master's jobs: %v, want %v", got, want)
	}
	rev := strings.TrimSpace(testenv.Git(t, repo.Dir, "rev-parse", "HEAD"))
	for _, job := range []string{"passing", "group.nested"} {
		ref := "git+file://" + repo.Dir + "?dir=ci&rev=" + rev + "#ciJobs.x86_64-linux." + job + ".drvPath"
		out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "eval", "--raw", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("nix eval %s: %v: %s", ref, err, out)
		}
		if got := base.Attrs[job].DrvPath; got != string(out) {
			t.Errorf("%s: drvPath %s, Nix's flakes give %s", job, got, out)
		}
	}
	drv, err := os.ReadFile(base.Attrs["passing"].DrvPath)
	if err != nil || !strings.Contains(string(drv), "echo 1.0") {
		t.Errorf("passing: the derivation does not use the repository's VERSION (%v): %s", err, drv)
	}

	testenv.Git(t, repo.Dir, "checkout", "--quiet", "pr")
	msgs, err := ev.Explain(ctx, repo.Dir, "x86_64-linux", []eval.Path{{"evalbreaks"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs["evalbreaks"]; m == nil || m.File != "ci/jobs/evalbreaks.nix" || m.Line != 3 {
		t.Errorf("evalbreaks: %+v, want an error at ci/jobs/evalbreaks.nix:3", m)
	}

	for file, wantErr := range map[string]string{
		"[flake]\ndir = \"ci\"\njobs = [\"ciJobs\"\n":                   ".basinix.toml:3",
		"[flake]\ndir = \"../elsewhere\"\n":                             "not a directory inside the repository",
		"[flake]\ndir = \"nowhere\"\n":                                  "names the flake nowhere/flake.nix, which this commit does not have",
		"[flake]\ndir = \"ci\"\nsystem = \"x86_64\"\n":                  "unknown keys flake.system",
		"[flake]\ndir = \"ci\"\njobs = [\"a b\"]\n":                     "\"a b\" is not an output name",
		"[flake]\ndir = \"ci\"\n" + strings.Repeat("# padding\n", 8000): ".basinix.toml is larger than 64 KiB",
	} {
		if err := os.WriteFile(filepath.Join(repo.Dir, ".basinix.toml"), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := ev.Evaluate(ctx, repo.Dir, "x86_64-linux", 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Error == nil || !strings.Contains(res.Error.Message, wantErr) || strings.Contains(wantErr, ".basinix.toml:") && (res.Error.File != ".basinix.toml" || res.Error.Line != 3) {
			t.Errorf(".basinix.toml %q: want the evaluation's error %q, got %+v", file, wantErr, res.Error)
		}
	}
	// A link committed as .basinix.toml is not followed.
	os.Remove(filepath.Join(repo.Dir, ".basinix.toml"))
	if err := os.Symlink("/etc/passwd", filepath.Join(repo.Dir, ".basinix.toml")); err != nil {
		t.Fatal(err)
	}
	res, err := ev.Evaluate(ctx, repo.Dir, "x86_64-linux", 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error == nil || !strings.Contains(res.Error.Message, ".basinix.toml is not a regular file") || strings.Contains(res.Error.Message, "root:") {
		t.Errorf("a link as .basinix.toml: %+v", res.Error)
	}
}
