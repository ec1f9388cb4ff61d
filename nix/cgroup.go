package nix

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Cgroups makes the control groups local builds run in, with a memory
// limit and a CPU quota: cgroup v2 (the unified hierarchy, with the memory
// and cpu controllers delegated to basinix's own group) or v1 (the memory
// and cpu hierarchies), whichever this machine lets basinix write.
type Cgroups struct {
	// Version is 1 or 2.
	Version int
	// v1: the memory and cpu hierarchies' directories for basinix's
	// groups; v2: the directory of basinix's groups.
	memory, cpu, unified string
}

// DetectCgroups finds the cgroups basinix can use below root (normally
// /sys/fs/cgroup), v2 first, and makes the directory its groups go in
// (named name). When none is usable it returns nil and why, for the one
// line basinix logs.
func DetectCgroups(root, name string) (*Cgroups, string) {
	c, err := detectV2(root, name)
	if err == nil {
		return c, ""
	}
	why := []string{"v2: " + err.Error()}
	mem, cpu := filepath.Join(root, "memory", name), filepath.Join(root, "cpu", name)
	errV1 := errors.Join(probeDir(mem, "memory.limit_in_bytes"), probeDir(cpu, "cpu.cfs_quota_us"))
	if errV1 == nil {
		return &Cgroups{Version: 1, memory: mem, cpu: cpu}, ""
	}
	why = append(why, "v1: "+strings.ReplaceAll(errV1.Error(), "\n", "; "))
	return nil, strings.Join(why, "; ")
}

// detectV2 uses the unified hierarchy when basinix's own group has the
// memory and cpu controllers to give its children: a group name beside
// basinix's own process would break v2's rule that a group with children
// holds no process, so the groups go below a sibling "name" of it.
func detectV2(root, name string) (*Cgroups, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var own string
	for _, line := range strings.Split(string(self), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			own = rest
		}
	}
	if own == "" {
		return nil, errors.New("no unified hierarchy")
	}
	parent := filepath.Join(root, filepath.Dir(own))
	ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		return nil, err
	}
	if f := strings.Fields(string(ctl)); !slices.Contains(f, "memory") || !slices.Contains(f, "cpu") {
		return nil, fmt.Errorf("%s does not give its children the memory and cpu controllers", parent)
	}
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +cpu"), 0o644); err != nil {
		return nil, fmt.Errorf("delegate memory and cpu to %s: %w", dir, err)
	}
	return &Cgroups{Version: 2, unified: dir}, nil
}

// probeDir makes dir and checks it has the control file a group needs.
func probeDir(dir, file string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(dir, file))
	return err
}

// Cgroup is one group: the processes that join it (Cmd.Cgroup) share its
// limits.
type Cgroup struct {
	// Procs are the cgroup.procs files a process writes itself into.
	Procs []string
	// MemoryMiB is its memory limit (0: none).
	MemoryMiB int
	dirs      []string
	events    string // v1 memory.oom_control, v2 memory.events
}

// Group makes the group name with a memory limit (MiB, 0 for none) and
// a CPU quota (in cores, 0 for none).
func (c *Cgroups) Group(name string, memoryMiB int, cpus float64) (*Cgroup, error) {
	g := &Cgroup{MemoryMiB: memoryMiB}
	write := func(dir, file, value string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
			return fmt.Errorf("cgroup %s: %s: %w", name, file, err)
		}
		return nil
	}
	mem := strconv.FormatInt(int64(memoryMiB)<<20, 10)
	period := 100000
	quota := strconv.Itoa(int(cpus * float64(period)))
	switch c.Version {
	case 2:
		dir := filepath.Join(c.unified, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		g.dirs, g.Procs, g.events = []string{dir}, []string{filepath.Join(dir, "cgroup.procs")}, filepath.Join(dir, "memory.events")
		if memoryMiB > 0 {
			if err := errors.Join(write(dir, "memory.max", mem), write(dir, "memory.swap.max", "0")); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
		if cpus > 0 {
			if err := write(dir, "cpu.max", quota+" "+strconv.Itoa(period)); err != nil {
				return nil, err
			}
		}
	default:
		m, p := filepath.Join(c.memory, name), filepath.Join(c.cpu, name)
		for _, d := range []string{m, p} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		g.dirs = []string{m, p}
		g.Procs = []string{filepath.Join(m, "cgroup.procs"), filepath.Join(p, "cgroup.procs")}
		g.events = filepath.Join(m, "memory.oom_control")
		if memoryMiB > 0 {
			if err := write(m, "memory.limit_in_bytes", mem); err != nil {
				return nil, err
			}
			// With swap accounting, swap counts too: the limit is the limit.
			if _, err := os.Stat(filepath.Join(m, "memory.memsw.limit_in_bytes")); err == nil {
				_ = write(m, "memory.memsw.limit_in_bytes", mem)
			}
		}
		q := "-1"
		if cpus > 0 {
			q = quota
		}
		if err := errors.Join(write(p, "cpu.cfs_period_us", strconv.Itoa(period)), write(p, "cpu.cfs_quota_us", q)); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// OOMKills is how many processes of the group the kernel killed for its
// memory limit so far.
func (g *Cgroup) OOMKills() int {
	b, err := os.ReadFile(g.events)
	if err != nil {
		return 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// Remove removes the group once its processes are gone.
func (g *Cgroup) Remove() error {
	var errs []error
	for _, d := range g.dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
