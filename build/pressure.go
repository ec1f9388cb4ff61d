package build

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Pressure is how short this machine may run before local builds wait:
// free memory (MemAvailable) and free disk where the store is. A limit of
// 0 is not checked.
type Pressure struct {
	MinMemoryMiB, MinDiskMiB int
	// StoreDir is where the store's disk is measured (/nix/store).
	StoreDir string
	// MaxMemoryPressure is the share of the last 10 s (percent) some task
	// may have waited for memory (PSI, "some avg10"), read from PSIFile
	// (default /proc/pressure/memory); 0 is not checked.
	MaxMemoryPressure float64
	PSIFile           string
}

// Short says what is short now ("" when nothing is): the pool starts no
// local build then, and starts again once it is not.
func (p Pressure) Short() string {
	if p.MinMemoryMiB > 0 {
		if free, err := MemAvailableMiB(); err == nil && free < p.MinMemoryMiB {
			return fmt.Sprintf("free memory %d MiB is below build.min_free_memory_mib %d", free, p.MinMemoryMiB)
		}
	}
	if p.MaxMemoryPressure > 0 {
		if some, err := psiSome(cmp.Or(p.PSIFile, "/proc/pressure/memory")); err == nil && some > p.MaxMemoryPressure {
			return fmt.Sprintf("memory pressure %.1f%% (tasks waiting for memory, last 10 s) is above build.max_memory_pressure %.1f", some, p.MaxMemoryPressure)
		}
	}
	if p.MinDiskMiB > 0 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(p.StoreDir, &st); err == nil {
			if free := int(st.Bavail * uint64(st.Bsize) >> 20); free < p.MinDiskMiB {
				return fmt.Sprintf("free disk %d MiB at %s is below build.min_free_disk_mib %d", free, p.StoreDir, p.MinDiskMiB)
			}
		}
	}
	return ""
}

// MemTotalMiB is this machine's memory (0 when /proc/meminfo does not
// say).
func MemTotalMiB() int {
	n, _ := meminfo("MemTotal:")
	return n
}

// MemAvailableMiB is the memory this machine can give without swapping
// (MemAvailable), in MiB.
func MemAvailableMiB() (int, error) { return meminfo("MemAvailable:") }

// meminfo reads one field of /proc/meminfo, in MiB.
func meminfo(field string) (int, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, err
			}
			return kb >> 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", field)
}

// psiSome reads "some avg10" of a PSI file (Linux 4.20+).
func psiSome(file string) (float64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "some "); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "avg10="); ok {
					return strconv.ParseFloat(v, 64)
				}
			}
		}
	}
	return 0, fmt.Errorf("%s: no some avg10", file)
}
