package review

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
)

// DiffoscopeConfig bounds diffoscope, run on request on an attribute's
// base and head outputs.
type DiffoscopeConfig struct {
	// Program is the diffoscope to run (Debian: diffoscope-minimal).
	Program string        `yaml:"program"`
	Timeout time.Duration `yaml:"timeout"`
	// MaxReportKiB bounds the HTML report (diffoscope --max-report-size).
	MaxReportKiB int `yaml:"max_report_kib"`
}

// DiffoscopeDir is where the reports are, under the data directory; the
// web page serves them by name.
func DiffoscopeDir(dataDir string) string { return filepath.Join(dataDir, "diffoscope") }

// DiffoscopeName accepts the names of report files, and nothing else.
func DiffoscopeName(name string) bool {
	if len(name) != 32+len(".html") || filepath.Ext(name) != ".html" {
		return false
	}
	_, err := hex.DecodeString(name[:32])
	return err == nil
}

// Diffoscope runs diffoscope on each output an attribute has on both
// sides of its review entry (built on both), within the configured time
// and report size, and returns the reports: kept under DiffoscopeDir by
// a name made of the two paths, so asking twice runs it once.
func (r *Reviewer) Diffoscope(ctx context.Context, e *report.AttrEntry) ([]build.DiffoscopeRun, error) {
	if e == nil {
		return nil, errors.New("the change does not touch this attribute")
	}
	if e.Head != build.Success || e.Base != build.Success || e.BaseDrvPath == "" {
		return nil, fmt.Errorf("diffoscope needs the attribute built on both sides (head %s, base %s)", e.Head, cmp.Or(string(e.Base), "none"))
	}
	head, err := outputsOf(e.DrvPath)
	if err != nil {
		return nil, err
	}
	base, err := outputsOf(e.BaseDrvPath)
	if err != nil {
		return nil, err
	}
	var paths []string
	for name, p := range head {
		if b, ok := base[name]; ok {
			paths = append(paths, b, p)
		}
	}
	gone, err := r.gone(ctx, paths)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 {
		return nil, fmt.Errorf("%s is no longer in the store", slices.Sorted(maps.Keys(gone))[0])
	}
	dir := DiffoscopeDir(r.cfg.DataDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("diffoscope: %w", err)
	}
	var runs []build.DiffoscopeRun
	for _, name := range slices.Sorted(maps.Keys(head)) {
		b, ok := base[name]
		if !ok {
			continue
		}
		run, err := r.diffoscope(ctx, dir, name, b, head[name])
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

func (r *Reviewer) diffoscope(ctx context.Context, dir, output, base, head string) (build.DiffoscopeRun, error) {
	c := r.cfg.Outputs.Diffoscope
	sum := sha256.Sum256([]byte(base + "\n" + head))
	run := build.DiffoscopeRun{Output: output, File: hex.EncodeToString(sum[:16]) + ".html"}
	file := filepath.Join(dir, run.File)
	if info, err := os.Stat(file); err == nil {
		run.Size, run.Differs = info.Size(), info.Size() > 0
		return run, nil
	}
	tmp := file + ".tmp"
	defer os.Remove(tmp)
	maxBytes := int64(c.MaxReportKiB) << 10
	differs, err := nix.Diffoscope(ctx, c.Program, base, head, tmp, maxBytes, c.Timeout)
	if err != nil {
		return run, err
	}
	if !differs {
		return run, os.WriteFile(file, nil, 0o644)
	}
	info, err := os.Stat(tmp)
	if err != nil {
		return run, fmt.Errorf("diffoscope: no report: %w", err)
	}
	run.Differs, run.Size = true, info.Size()
	// diffoscope keeps to its bound but for its page's frame: a report far
	// past it is cut.
	if info.Size() > maxBytes+64<<10 {
		if err := os.Truncate(tmp, maxBytes); err != nil {
			return run, err
		}
		run.Size, run.Truncated = maxBytes, true
	}
	if err := os.Rename(tmp, file); err != nil {
		return run, fmt.Errorf("diffoscope: %w", err)
	}
	return run, nil
}
