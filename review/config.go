// Package review runs reviews: fetch, merge, checkouts, evaluate base and
// merged head, compare, instantiate and build, as one sequence used by the
// CLI (`basinix review`) and the server alike, without the HTTP server or
// GitHub. Beside it: a branch tip's evaluation, requested builds and
// bisection, which reuse its steps.
package review

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

// Config is what reviews need; app.Config embeds it (config.example.yml
// documents each field).
type Config struct {
	DataDir string        `yaml:"data_dir"`
	Systems []string      `yaml:"systems"`
	Nix     NixConfig     `yaml:"nix"`
	Eval    EvalConfig    `yaml:"eval"`
	Build   BuildConfig   `yaml:"build"`
	Git     GitConfig     `yaml:"git"`
	Outputs OutputsConfig `yaml:"outputs"`
	GC      GCConfig      `yaml:"gc"`
	Cache   CacheConfig   `yaml:"cache"`
	// BranchPriority is the build priority of tracked branches' changes
	// (server.branch_priority: set by the server's configuration).
	BranchPriority int `yaml:"-"`
}

// GitConfig is about the mirrors and checkouts.
type GitConfig struct {
	// Checkouts is how many checkouts each repository keeps on disk for
	// reuse, across runs: moving one to another commit writes only the
	// files that differ.
	Checkouts int `yaml:"checkouts"`
}

// NixConfig says how Nix is run.
type NixConfig struct {
	BinDir  string            `yaml:"bin_dir"`
	Options map[string]string `yaml:"options"`
}

var flakeOutput = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

// EvalConfig bounds and shapes evaluation.
type EvalConfig struct {
	Workers      int           `yaml:"workers"`
	Config       string        `yaml:"config"`
	AttrTimeout  time.Duration `yaml:"attr_timeout"`
	Timeout      time.Duration `yaml:"timeout"`
	MaxMemoryMiB int64         `yaml:"max_memory_mib"`
	// MemoryBudgetMiB bounds the walkers' memory together (0: workers ×
	// max_memory_mib).
	MemoryBudgetMiB int64 `yaml:"memory_budget_mib"`
	MaxExplained    int   `yaml:"max_explained"`
	MaxAttrs        int   `yaml:"max_attrs"`
	MaxDeaths       int   `yaml:"max_deaths"`
	// Flakes: when a checkout is evaluated as a flake: auto (a flake.nix
	// and no default.nix), always or never.
	Flakes string `yaml:"flakes"`
	// FlakeJobs: the outputs a flake's jobs are looked for in, first found.
	FlakeJobs []string `yaml:"flake_jobs"`
	// FlakeLocalInputs: directories path: and git+file: inputs may come from.
	FlakeLocalInputs []string `yaml:"flake_local_inputs"`
}

// BuildConfig sizes and bounds the builder pool.
type BuildConfig struct {
	MaxJobs       int           `yaml:"max_jobs"`
	Cores         int           `yaml:"cores"`
	BuildTimeout  time.Duration `yaml:"build_timeout"`
	MaxSilentTime time.Duration `yaml:"max_silent_time"`
	BatchSize     int           `yaml:"batch_size"`
	LogMaxKiB     int           `yaml:"log_max_kib"`
	// LocalSystems and LocalFeatures describe the local machine; unset,
	// Nix's system, extra-platforms and system-features are used.
	LocalSystems  []string  `yaml:"local_systems"`
	LocalFeatures *[]string `yaml:"local_features"`
	// Machines are remote builders, one /etc/nix/machines line each;
	// MachinesFile is read as well.
	Machines     []string `yaml:"machines"`
	MachinesFile string   `yaml:"machines_file"`
	SSHOptions   string   `yaml:"ssh_options"`
	// Cgroups limits the local builds' memory and CPU.
	Cgroups CgroupsConfig `yaml:"cgroups"`
	// MinFreeMemoryMiB and MinFreeDiskMiB: below that much free memory
	// (MemAvailable) or free disk where the store is, no local build
	// starts until there is again (0: not checked).
	MinFreeMemoryMiB int `yaml:"min_free_memory_mib"`
	MinFreeDiskMiB   int `yaml:"min_free_disk_mib"`
	// MaxMemoryPressure: above this PSI "some avg10" (percent), no local
	// build starts (0: not checked).
	MaxMemoryPressure float64 `yaml:"max_memory_pressure"`
	// MachineSizes are the remote machines' cores and memory, by URI as
	// in machines; LocalSize the local machine's (default: what it has).
	MachineSizes map[string]MachineSize `yaml:"machine_sizes"`
	LocalSize    MachineSize            `yaml:"local_size"`
}

// MachineSize is a machine's cores and memory (0: not known).
type MachineSize struct {
	Cores     int `yaml:"cores"`
	MemoryMiB int `yaml:"memory_mib"`
}

// CgroupsConfig: each local Nix process runs in a cgroup of its own,
// with MemoryMiB and CPUs for every build it runs at once (0: no limit
// of that kind; both 0: no cgroups). Root is where the cgroup
// hierarchies are mounted.
type CgroupsConfig struct {
	MemoryMiB   int     `yaml:"memory_mib"`
	CPUs        float64 `yaml:"cpus"`
	RememberOOM bool    `yaml:"remember_oom"`
	Root        string  `yaml:"root"`
	// Features give the builds that require a system feature more
	// (big-parallel: {memory_mib: 16384, cpus: 16}).
	Features map[string]JobLimitsConfig `yaml:"features"`
}

// JobLimitsConfig is one build's share of a cgroup.
type JobLimitsConfig struct {
	MemoryMiB int     `yaml:"memory_mib"`
	CPUs      float64 `yaml:"cpus"`
}

// DefaultBranchPriority puts branch builds after every PR's: PRs are
// built at about 10 minus their rebuild count.
const DefaultBranchPriority = -1_000_000

// DefaultConfig returns the configuration used when no file is given.
func DefaultConfig() Config {
	return Config{
		DataDir: defaultDataDir(),
		Systems: []string{"x86_64-linux"},
		Eval: EvalConfig{
			Workers:      runtime.NumCPU(),
			Config:       eval.DefaultConfig,
			AttrTimeout:  2 * time.Minute,
			Timeout:      time.Hour,
			MaxMemoryMiB: 8192,
			MaxExplained: 200,
			MaxAttrs:     1_000_000,
			MaxDeaths:    200,
			Flakes:       "auto",
			FlakeJobs:    eval.DefaultFlakeJobs,
		},
		Git: GitConfig{Checkouts: 4},
		Outputs: OutputsConfig{Diffs: 100, MaxFiles: 200_000, MaxEntries: 50,
			Diffoscope: DiffoscopeConfig{Program: "diffoscope", Timeout: 10 * time.Minute, MaxReportKiB: 10 << 10}},
		Cache: CacheConfig{BranchKeep: 14 * 24 * time.Hour, PRKeep: 72 * time.Hour, RetryMin: time.Minute, Batch: 64},
		GC:    GCConfig{Branches: map[string]string{"*": GCFixedOutput}, Evaluations: 3, PRKeep: 72 * time.Hour, RefreshEvery: time.Hour},
		Build: BuildConfig{
			MaxJobs:       runtime.NumCPU(),
			BuildTimeout:  3 * time.Hour,
			MaxSilentTime: time.Hour,
			BatchSize:     256,
			LogMaxKiB:     4096,
			Cgroups:       CgroupsConfig{Root: "/sys/fs/cgroup"},
		},
		BranchPriority: DefaultBranchPriority,
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "basinix")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "basinix")
	}
	return filepath.Join(os.TempDir(), "basinix")
}

// Validate checks the values a decoder cannot.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: data_dir is empty")
	}
	if len(c.Systems) == 0 {
		return fmt.Errorf("config: systems is empty")
	}
	for _, s := range c.Systems {
		if !ValidSystem(s) {
			return fmt.Errorf("config: system %q is not of the form arch-os", s)
		}
	}
	if c.Git.Checkouts < 1 {
		return fmt.Errorf("config: git.checkouts must be at least 1")
	}
	if e := c.Eval; e.Workers < 0 || e.AttrTimeout < 0 || e.Timeout < 0 || e.MaxMemoryMiB < 0 || e.MemoryBudgetMiB < 0 || e.MaxAttrs < 0 || e.MaxDeaths < 0 {
		return fmt.Errorf("config: eval limits must not be negative")
	}
	switch c.Eval.Flakes {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("config: eval.flakes is %q: auto, always or never", c.Eval.Flakes)
	}
	for _, j := range c.Eval.FlakeJobs {
		if !flakeOutput.MatchString(j) {
			return fmt.Errorf("config: eval.flake_jobs: %q is not an output name", j)
		}
	}
	for _, d := range c.Eval.FlakeLocalInputs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("config: eval.flake_local_inputs: %q is not an absolute path", d)
		}
	}
	if err := c.GC.validate(); err != nil {
		return err
	}
	if err := c.Cache.validate(); err != nil {
		return err
	}
	if o := c.Outputs; o.Diffs < 0 || o.MaxFiles < 0 || o.MaxEntries < 0 || o.Diffoscope.Timeout <= 0 || o.Diffoscope.MaxReportKiB <= 0 {
		return fmt.Errorf("config: outputs limits must not be negative, diffoscope's timeout and max_report_kib must be set")
	}
	b := c.Build
	if b.MaxJobs < 0 || b.Cores < 0 || b.BuildTimeout < 0 || b.MaxSilentTime < 0 || b.BatchSize < 0 || b.LogMaxKiB < 0 ||
		b.Cgroups.MemoryMiB < 0 || b.Cgroups.CPUs < 0 || b.MinFreeMemoryMiB < 0 || b.MinFreeDiskMiB < 0 || b.MaxMemoryPressure < 0 {
		return fmt.Errorf("config: build limits must not be negative")
	}
	for _, s := range b.LocalSystems {
		if !ValidSystem(s) {
			return fmt.Errorf("config: build.local_systems: %q is not of the form arch-os", s)
		}
	}
	_, err := c.Machines()
	return err
}

// ValidSystem accepts Nix system doubles such as x86_64-linux.
func ValidSystem(s string) bool {
	arch, os, ok := strings.Cut(s, "-")
	if !ok || arch == "" || os == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ParseSystems reads a comma-separated list of systems.
func ParseSystems(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !ValidSystem(s) {
			return nil, fmt.Errorf("system %q is not of the form arch-os", s)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no systems in %q", list)
	}
	return out, nil
}

// Machines returns the remote builders of build.machines and
// build.machines_file.
func (c Config) Machines() ([]*build.Machine, error) {
	text := strings.Join(c.Build.Machines, "\n")
	if f := c.Build.MachinesFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("config: build.machines_file: %w", err)
		}
		text += "\n" + string(b)
	}
	ms, err := build.ParseMachines(text)
	if err != nil {
		return nil, fmt.Errorf("config: build.machines: %w", err)
	}
	for uri, size := range c.Build.MachineSizes {
		i := slices.IndexFunc(ms, func(m *build.Machine) bool { return m.URI == uri })
		if i < 0 {
			return nil, fmt.Errorf("config: build.machine_sizes: %q is none of build.machines' URIs", uri)
		}
		if size.Cores < 0 || size.MemoryMiB < 0 {
			return nil, fmt.Errorf("config: build.machine_sizes: %q: sizes must not be negative", uri)
		}
		ms[i].Cores, ms[i].MemoryMiB = size.Cores, size.MemoryMiB
	}
	return ms, nil
}
