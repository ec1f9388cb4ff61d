package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/sampleset"
)

func basinix(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, os.LookupEnv)
	return code, out.String(), errb.String()
}

// readReport reads the JSON report basinix wrote into path.
func readReport(t *testing.T, path string) report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// Missing repositories, refs and default.nix are a one-line error and exit 2.
func TestReviewUsageErrors(t *testing.T) {
	testenv.RequireNix(t)
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	data := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no repo", []string{"review", "--no-build", "--base", "a", "--head", "b"}, "--repo, --base and --head are required"},
		{"missing repo", []string{"review", "--no-build", "--data-dir", data, "--repo", "/does/not/exist", "--base", "master", "--head", "master"}, "repository not found"},
		{"missing ref", []string{"review", "--no-build", "--data-dir", data, "--repo", repo.Dir, "--base", "master", "--head", "nope"}, `resolve "nope"`},
		{"ref that is no commit", []string{"review", "--no-build", "--data-dir", data, "--repo", repo.Dir, "--base", "master", "--head", "HEAD~0:lib"}, "unknown ref"},
		{"bad system", []string{"review", "--no-build", "--systems", "x86_64-linux;rm -rf /", "--sample"}, "is not of the form"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := basinix(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			first := strings.SplitN(stderr, "\n", 2)[0]
			if !strings.Contains(first, tc.wantErr) {
				t.Errorf("first stderr line %q does not contain %q", first, tc.wantErr)
			}
		})
	}
}

func TestReviewNoDefaultNix(t *testing.T) {
	testenv.RequireNix(t)
	dir := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(dir, 0o755)
	testenv.Git(t, dir, "init", "--quiet", "--initial-branch=master")
	testenv.Git(t, dir, "commit", "--quiet", "--allow-empty", "-m", "empty")
	code, _, stderr := basinix(t, "review", "--no-build", "--data-dir", t.TempDir(), "--repo", dir, "--base", "master", "--head", "master")
	last := strings.TrimSpace(stderr)[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:]
	if code != 2 || !strings.HasPrefix(last, "basinix: ") || !strings.Contains(last, "no default.nix") {
		t.Errorf("exit %d, stderr %q; want 2 and a line saying there is no default.nix", code, stderr)
	}
}

// The README's first command: a review of the sample set, with the JSON
// report written; the sample PR breaks evaluation, so the exit code is 1.
func TestReviewSample(t *testing.T) {
	testenv.RequireNix(t)
	js := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := basinix(t, "review", "--sample", "--sample-size", "30", "--no-build", "--data-dir", t.TempDir(), "--json", js)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (the sample PR breaks evaluation); stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"x86_64-linux: rebuild label 11-100", "added (1): newpkg", "evalbreaks: undefined variable 'notInScope' (pkgs/by-name/evalbreaks/default.nix:6)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	var rep report.Report
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if e := rep.Systems["x86_64-linux"].Attrs["newpkg"]; e == nil || e.Head != "pending" || e.Verdict != "pending" {
		t.Errorf("newpkg in the JSON report: %+v, want head and verdict pending", e)
	}
}

// The README's first command with builds: the Markdown report on stdout,
// newly failing first; run again, it builds nothing.
func TestReviewSampleBuilds(t *testing.T) {
	testenv.RequireNix(t)
	data := t.TempDir()
	args := []string{"review", "--sample", "--sample-size", "30", "--data-dir", data}
	code, stdout, stderr := basinix(t, args...)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (the sample PR breaks packages); stderr:\n%s", code, stderr)
	}
	newly := strings.Index(stdout, ":x: newly failing (2)")
	still := strings.Index(stdout, ":warning: still failing (1)")
	if newly < 0 || still < newly {
		t.Errorf("want newly failing (2) before still failing (1):\n%s", stdout)
	}
	for _, want := range []string{"- `depfails`: dependency-failed, dependency `willfail-2.0` failed", "willfail: test suite failed", "`withtests.passthru.tests.fails`: failure"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}

	md := filepath.Join(t.TempDir(), "report.md")
	code, stdout, stderr = basinix(t, append(args, "--markdown", md)...)
	if code != 1 {
		t.Fatalf("second run: exit code %d; stderr:\n%s", code, stderr)
	}
	m := regexp.MustCompile(`builds: (\d+)/(\d+) done, 0 building, 4 failed, (\d+) known before`).FindStringSubmatch(stderr)
	if m == nil || m[1] != m[2] || m[2] != m[3] || strings.Contains(stderr, "build batch started") {
		t.Errorf("second run built something:\n%s", stderr)
	}
	if body, err := os.ReadFile(md); err != nil || !strings.Contains(string(body), ":x: newly failing (2)") {
		t.Errorf("--markdown file: %v\n%s", err, body)
	}
	if !strings.Contains(stdout, "x86_64-linux: rebuild label") {
		t.Errorf("with --markdown, stdout should have the summary:\n%s", stdout)
	}
}

// A change that breaks nothing exits 0.
func TestReviewCleanExitsZero(t *testing.T) {
	testenv.RequireNix(t)
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Bulk: 10})
	parent := strings.TrimSpace(testenv.Git(t, repo.Dir, "rev-list", "--max-parents=0", "master"))
	code, stdout, stderr := basinix(t, "review", "--data-dir", t.TempDir(), "--repo", repo.Dir, "--base", parent, "--head", "master")
	if code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stdout, ":new: new and succeeding (10)") {
		t.Errorf("report:\n%s", stdout)
	}
}

// `basinix bisect` names the commit that broke a package.
func TestBisectCommand(t *testing.T) {
	testenv.RequireNix(t)
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	testenv.Git(t, dir, "init", "--quiet", "--initial-branch=main")
	nonce := filepath.Base(t.TempDir())
	for i := 0; i < 8; i++ {
		script := "echo ok > $out"
		if i >= 5 {
			script = "echo broken >&2; exit 1"
		}
		os.WriteFile(filepath.Join(dir, "default.nix"), []byte(fmt.Sprintf(
			"{ system ? builtins.currentSystem, config ? { } }:\n{ pkg = derivation { name = \"pkg-%d\"; inherit system; nonce = %q; builder = \"/bin/sh\"; args = [ \"-c\" %q ]; }; }\n", i, nonce, script)), 0o644)
		testenv.Git(t, dir, "add", "-A")
		testenv.Git(t, dir, "commit", "--quiet", "-m", fmt.Sprintf("pkg: step %d", i))
	}
	js := filepath.Join(t.TempDir(), "bisect.json")
	code, stdout, stderr := basinix(t, "bisect", "--data-dir", t.TempDir(), "--repo", dir, "--branch", "main", "--attr", "pkg", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `fails since`) || !strings.Contains(stdout, `"pkg: step 5"`) || !strings.Contains(stdout, `last good:`) {
		t.Errorf("output:\n%s", stdout)
	}
	var res struct {
		FirstBad struct{ Title string } `json:"firstBad"`
		Builds   int                    `json:"builds"`
	}
	data, _ := os.ReadFile(js)
	if err := json.Unmarshal(data, &res); err != nil || res.FirstBad.Title != "pkg: step 5" || res.Builds > 4 {
		t.Errorf("JSON: %s (%v)", data, err)
	}
	if code, _, stderr := basinix(t, "bisect", "--repo", dir, "--branch", "main", "--attr", "pkg; rm -rf /"); code != 2 || !strings.Contains(stderr, "pkg; rm -rf /") {
		t.Errorf("a shell attribute: exit %d, %s", code, stderr)
	}
}

// Logs to a file have no colour codes and have dates; --log-format json
// gives one JSON object a line, durations with their unit.
func TestLogFormats(t *testing.T) {
	testenv.RequireNix(t)
	data := t.TempDir()
	_, _, stderr := basinix(t, "review", "--sample", "--sample-size", "10", "--no-build", "--data-dir", data)
	if strings.Contains(stderr, "\x1b[") || !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} `).MatchString(stderr) {
		t.Errorf("console log to a file:\n%s", stderr)
	}
	_, _, stderr = basinix(t, "review", "--sample", "--sample-size", "10", "--no-build", "--data-dir", t.TempDir(), "--log-format", "json")
	tookUnit := false
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the summary's error line, after the log
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if ts, _ := rec["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(ts) {
			t.Errorf("time %q", rec["time"])
		}
		if took, ok := rec["took"].(string); ok && regexp.MustCompile(`^[0-9.]+(ns|µs|ms|s|m)`).MatchString(took) {
			tookUnit = true
		}
	}
	if !tookUnit {
		t.Errorf("no duration with its unit in:\n%s", stderr)
	}
	if code, _, stderr := basinix(t, "review", "--sample", "--log-format", "xml"); code != 2 || !strings.Contains(stderr, "--log-format") {
		t.Errorf("--log-format xml: exit %d, %s", code, stderr)
	}
}
