package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// processesWith returns the pids whose command line contains s.
func processesWith(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			out = append(out, pid)
		}
	}
	return out
}

// `basinix review` killed with -9 while it evaluates leaves no Nix process
// behind: a walker once went on, finished its walk and waited for ever for
// a request (946 MB on nixpkgs).
func TestKilledReviewLeavesNoWalker(t *testing.T) {
	testenv.RequireNix(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	repo := testenv.Sample(t, sampleset.Options{Bulk: 2, PRExtra: map[string]string{
		"slowish": "{ stdenv }:\n\nlet n = builtins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 2000); in\nstdenv.mkDerivation { pname = \"slowish\"; version = toString n; }\n",
	}})
	data := filepath.Join(dir, "data-for-orphans")
	cmd := exec.Command(bin, "review", "--no-build", "--data-dir", data, "--repo", repo.Dir, "--base", "master", "--head", "pr")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testenv.Eventually(t, time.Minute, func() bool { return len(processesWith(data+"/tmp/")) > 0 },
		func() string { return "no walker started within a minute" })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	var left []int
	t.Cleanup(func() {
		for _, pid := range processesWith(data + "/tmp/") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	testenv.Eventually(t, 15*time.Second, func() bool { left = processesWith(data + "/tmp/"); return len(left) == 0 },
		func() string {
			return fmt.Sprintf("15 s after basinix was killed, its Nix processes %v still run", left)
		})
}
