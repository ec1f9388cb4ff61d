package sampleset

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// FlakeOptions shape a generated flake repository.
type FlakeOptions struct {
	// Bulk adds that many passing jobs (bulk.jobNNNNN), each in a file of
	// its own, for benchmarks.
	Bulk int
	// Unlocked makes the PR's last push declare an input flake.lock does
	// not lock.
	Unlocked bool
	// Dir puts the flake in that directory of the repository, its jobs in
	// the output ciJobs, both named by the repository's .basinix.toml,
	// beside a root default.nix that is not a package set. Its passing
	// job reads the repository's VERSION, outside the flake's directory.
	Dir string
}

// FlakeRepo is a generated flake repository and the flake it takes as an
// input.
type FlakeRepo struct {
	Repo
	// Inputs is the directory holding the flake's local inputs (a git
	// repository "dep"): it must be one of eval.flake_local_inputs.
	Inputs string
}

// The jobs of the sample flake, as they change from master to the PR: the
// kinds of change a flake CI must tell apart. The jobs live in jobs/NAME.nix
// and are built by the input's lib.mkJob.
var flakeBase = map[string]string{
	"passing":  `mk "passing" "echo ok > $out"`,
	"failing":  `mk "failing" "echo 'failing: this job always fails' >&2; exit 1"`,
	"changes":  `mk "changes" "echo 1.0 > $out"`,
	"fixed":    `mk "fixed" "echo 'fixed: broken in 1.0' >&2; exit 1"`,
	"depfails": `mk "depfails" "echo 1.0 > $out"`,
	"oldjob":   `mk "oldjob" "echo old > $out"`,
	"group":    "{\n  nested = mk \"nested\" \"echo nested > $out\";\n}",
}

var flakePR = map[string]string{
	"changes":    `mk "changes" "echo 'changes: 2.0 fails its tests' >&2; exit 1"`,
	"fixed":      `mk "fixed" "echo 1.1 > $out"`,
	"depfails":   "mkWith \"depfails\" [ (mk \"brokendep\" \"echo 'brokendep: cannot build' >&2; exit 1\") ] \"echo 2.0 > $out\"",
	"newjob":     `mk "newjob" "echo new > $out"`,
	"evalbreaks": "mk \"evalbreaks\" (toString notInScope)",
	"oldjob":     "",
}

// FlakeJobs are the sample flake's jobs on the PR's head, by what the PR
// does to them (the job names, as basinix names them).
var FlakeJobs = map[string][]string{
	"still succeeding": {"group.nested", "passing"},
	"still failing":    {"failing"},
	"newly failing":    {"changes"},
	"newly succeeding": {"fixed"},
	"dependency fails": {"depfails"},
	"added":            {"newjob"},
	"removed":          {"oldjob"},
	"eval error":       {"evalbreaks"},
}

// GenerateFlake writes a flake repository into dir/repo, with master and
// the PR branch "pr" (one push), and its input, a flake in dir/inputs/dep
// that provides lib.mkJob. flake.lock is written by Nix itself (nix flake
// lock, offline: the input is a local git repository).
func GenerateFlake(dir string, opt FlakeOptions) (*FlakeRepo, error) {
	inputs := filepath.Join(dir, "inputs")
	dep := &gen{dir: filepath.Join(inputs, "dep")}
	if err := os.MkdirAll(dep.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample flake: %w", err)
	}
	dep.git("init", "--quiet", "--initial-branch=main")
	dep.write(map[string]string{"flake.nix": depFlake})
	dep.commit("dep: mkJob")
	if dep.err != nil {
		return nil, dep.err
	}

	r := &FlakeRepo{Repo: Repo{Dir: filepath.Join(dir, "repo"), Base: "master", Head: "pr"}, Inputs: inputs}
	g := &gen{dir: r.Dir}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample flake: %w", err)
	}
	g.git("init", "--quiet", "--initial-branch=master")
	output := "basinixJobs"
	base := flakeBase
	if opt.Dir != "" {
		output = "ciJobs"
		base = maps.Clone(flakeBase)
		base["passing"] = `mk "passing" "echo ${builtins.readFile ../../VERSION} > $out"`
		g.write(map[string]string{
			".basinix.toml": fmt.Sprintf("# basinix: where this repository's CI is\n[flake]\ndir = %q\njobs = [%q]\n", opt.Dir, output),
			"default.nix":   "throw \"not a package set: the flake is in " + opt.Dir + "\"\n",
			"VERSION":       "1.0\n",
		})
	}
	flake := &gen{dir: filepath.Join(r.Dir, opt.Dir), err: g.err}
	files := map[string]string{"flake.nix": rootFlake("git+file://"+dep.dir, output, false)}
	names := jobFiles(files, base)
	for i := 0; i < opt.Bulk; i++ {
		files[fmt.Sprintf("jobs/bulk/job%05d.nix", i)] = fmt.Sprintf("{ mk }:\n\nmk \"job%05d\" \"echo %d > $out\"\n", i, i)
	}
	files["jobs/default.nix"] = jobsIndex(names, opt.Bulk)
	flake.write(files)
	flake.lock()
	g.err = flake.err
	g.commit("init: sample flake")
	r.ForkPoint, r.BaseCommit = g.rev("HEAD"), g.rev("HEAD")

	g.git("checkout", "--quiet", "-b", "pr")
	files = map[string]string{}
	for name, body := range flakePR {
		if body == "" {
			flake.git("rm", "--quiet", "jobs/"+name+".nix")
			names = slices.DeleteFunc(names, func(n string) bool { return n == name })
			continue
		}
		files["jobs/"+name+".nix"] = jobFile(body)
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	files["jobs/default.nix"] = jobsIndex(names, opt.Bulk)
	if opt.Unlocked {
		files["flake.nix"] = rootFlake("git+file://"+dep.dir, output, true)
	}
	flake.write(files)
	g.err = flake.err
	g.commit("jobs: the PR's changes")
	r.Pushes = append(r.Pushes, g.rev("HEAD"))
	g.git("checkout", "--quiet", "master")
	return r, g.err
}

// lock runs nix flake lock in the repository: the lock is Nix's own.
func (g *gen) lock() {
	g.git("add", "-A") // Nix sees a git repository's tracked files only
	if g.err != nil {
		return
	}
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "flake", "lock")
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		g.err = fmt.Errorf("sample flake: nix flake lock: %v: %s", err, strings.TrimSpace(string(out)))
	}
}

const depFlake = `{
  description = "basinix sample input: how jobs are built";
  outputs = { self }: {
    lib.mkJob = system: name: deps: script: derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" script ];
      deps = deps;
    };
  };
}
`

func rootFlake(depURL, output string, unlocked bool) string {
	extra := ""
	if unlocked {
		extra = "\n  inputs.unlocked.url = \"git+file:///nonexistent/unlocked\";"
	}
	return fmt.Sprintf(`{
  description = "basinix sample flake";
  inputs.dep.url = "%s";%s
  outputs = { self, dep, ... }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
    in
    {
      %s = forAll (system: import ./jobs { mkJob = dep.lib.mkJob system; });
    };
}
`, depURL, extra, output)
}

func jobFile(body string) string {
	return "{ mk, mkWith }:\n\n" + body + "\n"
}

func jobFiles(files, jobs map[string]string) []string {
	var names []string
	for name, body := range jobs {
		files["jobs/"+name+".nix"] = jobFile(body)
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func jobsIndex(names []string, bulk int) string {
	var b strings.Builder
	b.WriteString("{ mkJob }:\n\nlet\n  mk = name: script: mkJob name [ ] script;\n  mkWith = mkJob;\n  job = f: import f { inherit mk mkWith; };\nin\n{\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s = job ./%s.nix;\n", n, n)
	}
	if bulk > 0 {
		b.WriteString("  bulk = builtins.listToAttrs (map (n: { name = builtins.substring 0 8 n; value = import (./bulk + \"/${n}\") { inherit mk; }; })\n    (builtins.attrNames (builtins.readDir ./bulk)));\n")
	}
	b.WriteString("}\n")
	return b.String()
}
