package checkout

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// indexOf writes the index git makes of a small tree, at version, and
// returns its path.
func indexOf(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"a": "a\n", "d/b": "b\n"}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet")
	for name, body := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	// A name longer than the entry's 12-bit length field, in the index
	// only (no file system takes it).
	git("update-index", "--add", "--cacheinfo", "100644,"+git("hash-object", "a")+","+longName)
	git("update-index", "--index-version", version)
	return filepath.Join(dir, ".git", "index")
}

var longName = "d/e/" + strings.Repeat(strings.Repeat("n", 250)+"/", 17) + "f"

func TestReadIndex(t *testing.T) {
	path := indexOf(t, "2")
	x, err := readIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range x.entries {
		names = append(names, e.name)
		if e.mode != 0o100644 {
			t.Errorf("%s: mode %o", e.name, e.mode)
		}
	}
	if want := []string{"a", "d/b", longName}; !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}

	// Stat data written back are what git reads: ls-files --debug shows
	// each field as recorded, and the checksum is accepted.
	dir := filepath.Dir(filepath.Dir(path))
	want := map[string]string{}
	var st syscall.Stat_t
	for i, e := range x.entries {
		if e.name == longName {
			continue
		}
		if err := syscall.Lstat(filepath.Join(dir, e.name), &st); err != nil {
			t.Fatal(err)
		}
		st.Size += 7 // not git's own value, to tell ours from git's
		x.setStat(i, &st)
		want[e.name] = fmt.Sprintf("%s\n  ctime: %d:%d\n  mtime: %d:%d\n  dev: %d\tino: %d\n  uid: %d\tgid: %d\n  size: %d\tflags: 0",
			e.name, st.Ctim.Sec, st.Ctim.Nsec, st.Mtim.Sec, st.Mtim.Nsec, st.Dev, st.Ino, st.Uid, st.Gid, st.Size)
	}
	if err := x.write(path); err != nil {
		t.Fatal(err)
	}
	for name, want := range want {
		cmd := exec.Command("git", "-C", dir, "ls-files", "--debug", name)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("git ls-files --debug %s: %v\n%s\nwant\n%s", name, err, got, want)
		}
	}

	for _, version := range []string{"3", "4"} {
		path := indexOf(t, version)
		if version == "3" {
			// git writes version 3 only when an entry needs it.
			cmd := exec.Command("git", "-C", filepath.Dir(filepath.Dir(path)), "update-index", "--skip-worktree", "a")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
		if _, err := readIndex(path); !errors.Is(err, errIndexShape) {
			t.Errorf("an index of version %s: %v, want it left to git", version, err)
		}
	}
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := readIndex(path); !errors.Is(err, errIndexShape) {
		t.Errorf("an index with a bad checksum: %v, want it left to git", err)
	}
}
