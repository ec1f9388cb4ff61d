package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/sampleset"
)

func reviewCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("basinix review", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		repo       = fs.String("repo", "", "repository: a local path, file:// or https:// URL")
		base       = fs.String("base", "", "the ref or commit the change targets (default with --sample: master)")
		head       = fs.String("head", "", "the ref or commit of the change (default with --sample: pr)")
		systems    = fs.String("systems", "", "comma-separated systems to evaluate (default from the config: x86_64-linux)")
		noBuild    = fs.Bool("no-build", false, "evaluate and diff only; build fields stay pending")
		rebuild    = fs.Bool("rebuild-failed", false, "build again the head's derivations whose failure is remembered")
		jsonOut    = fs.String("json", "", "write the JSON report to this file")
		mdOut      = fs.String("markdown", "", "write the Markdown report to this file instead of stdout")
		sample     = fs.Bool("sample", false, "review a generated sample package set (master <- pr)")
		sampleSize = fs.Int("sample-size", 200, "with --sample: number of generated packages besides the hand-written ones")
		workers    = fs.Int("workers", 0, "evaluation processes at once (default from the config: the core count)")
	)
	var diffoscope []string
	fs.Func("diffoscope", "run diffoscope on this attribute's base and head outputs (repeatable; needs builds)", func(attr string) error {
		if _, err := eval.ParsePath(attr); err != nil {
			return err
		}
		diffoscope = append(diffoscope, attr)
		return nil
	})
	local := addLocalFlags(fs)
	logFlags := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("review: unexpected argument %q", fs.Arg(0))}
	}
	if *noBuild && len(diffoscope) > 0 {
		return &exitError{code: 2, err: errors.New("review: --diffoscope needs builds: drop --no-build")}
	}
	cfg, err := local.load()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *systems != "" {
		list, err := review.ParseSystems(*systems)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		cfg.Systems = list
	}
	if *workers > 0 {
		cfg.Eval.Workers = *workers
	}
	if *noBuild && (*rebuild || *mdOut != "") {
		return &exitError{code: 2, err: errors.New("review: --rebuild-failed and --markdown need builds: drop --no-build")}
	}
	logs := &logWriter{w: stderr}
	log, err := logFlags.logger(logs, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	if *sample {
		dir := filepath.Join(cfg.DataDir, "sample", fmt.Sprintf("set-%d", *sampleSize))
		if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
			os.RemoveAll(dir)
			log.Info().Str("dir", dir).Int("packages", *sampleSize).Msg("generating the sample package set")
			if _, err := sampleset.Generate(dir, sampleset.Options{Bulk: *sampleSize}); err != nil {
				return &exitError{code: 2, err: err}
			}
		}
		*repo = dir
		if *base == "" {
			*base = "master"
		}
		if *head == "" {
			*head = "pr"
		}
	}
	if *repo == "" || *base == "" || *head == "" {
		return &exitError{code: 2, err: errors.New("review: --repo, --base and --head are required (or --sample)")}
	}

	rv, stop, err := startReviewer(ctx, cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer stop()

	req := review.Request{Repo: *repo, Base: *base, Head: *head, Systems: cfg.Systems, Build: !*noBuild, RebuildFailed: *rebuild}
	rep, err := reviewShowingProgress(ctx, rv, req, stderr, logs)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := runDiffoscope(ctx, rv, rep, diffoscope, cfg.DataDir, stderr); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("write report: %w", err)}
		}
	}
	if err := writeReport(rep, *noBuild, *mdOut, stdout); err != nil {
		return &exitError{code: 2, err: err}
	}
	if rep.EvalBroken() || rep.Breaks() {
		return &exitError{code: 1}
	}
	return nil
}

// runDiffoscope runs diffoscope on each attribute's outputs, on every
// system where the review built it on both sides, and says where the
// reports are; the report JSON lists them.
func runDiffoscope(ctx context.Context, rv *review.Reviewer, rep *report.Report, attrs []string, dataDir string, stderr io.Writer) error {
	for _, attr := range attrs {
		found := false
		for _, system := range slices.Sorted(maps.Keys(rep.Systems)) {
			e := rep.Systems[system].Attrs[attr]
			if e == nil {
				continue
			}
			found = true
			runs, err := rv.Diffoscope(ctx, e)
			if err != nil {
				fmt.Fprintf(stderr, "diffoscope of %s (%s): %v\n", attr, system, err)
				continue
			}
			if e.Outputs == nil {
				e.Outputs = &build.OutputDiff{}
			}
			e.Outputs.Diffoscope = runs
			for _, r := range runs {
				what := "no differences"
				if r.Differs {
					what = filepath.Join(review.DiffoscopeDir(dataDir), r.File)
				}
				fmt.Fprintf(stderr, "diffoscope of %s (%s, %s): %s\n", attr, system, r.Output, what)
			}
		}
		if !found {
			return fmt.Errorf("review: --diffoscope %s: the change does not touch it", attr)
		}
	}
	return nil
}

// reviewShowingProgress runs the review with the builds' progress bar on
// stderr (on a terminal), the log written above it.
func reviewShowingProgress(ctx context.Context, rv *review.Reviewer, req review.Request, stderr io.Writer, logs *logWriter) (*report.Report, error) {
	prog := newProgress(stderr, logs)
	req.Progress = prog.update
	defer prog.finish()
	return rv.Review(ctx, req)
}

// writeReport writes the Markdown report (to file, or stdout), or with
// --no-build the plain summary; with a Markdown file, stdout gets the
// summary.
func writeReport(rep *report.Report, noBuild bool, mdFile string, stdout io.Writer) error {
	if noBuild {
		return report.WriteSummary(stdout, rep)
	}
	if mdFile == "" {
		return report.WriteMarkdown(stdout, rep, report.MarkdownOptions{})
	}
	f, err := os.Create(mdFile)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := report.WriteMarkdown(f, rep, report.MarkdownOptions{}); err != nil {
		f.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return report.WriteSummary(stdout, rep)
}
