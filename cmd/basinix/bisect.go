package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
)

func bisect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("basinix bisect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		repo    = fs.String("repo", "", "repository: a local path, file:// or https:// URL")
		branch  = fs.String("branch", "", "the branch whose first-parent history is searched")
		attr    = fs.String("attr", "", "the attribute that fails, e.g. python3Packages.requests")
		system  = fs.String("system", "x86_64-linux", "the system to build for")
		good    = fs.String("good", "", "a commit where it builds (default: the branch's first commit)")
		bad     = fs.String("bad", "", "a commit where it fails (default: the branch's tip)")
		name    = fs.String("name", "", "the repository's OWNER/NAME in the server's branch history: start from what it knows (with --data-dir of the server)")
		jsonOut = fs.String("json", "", "write the result as JSON to this file")
	)
	local := addLocalFlags(fs)
	logs := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *repo == "" || *branch == "" || *attr == "" {
		return &exitError{code: 2, err: errors.New("bisect: --repo, --branch and --attr are required")}
	}
	cfg, err := local.load()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if _, err := review.ParseSystems(*system); err != nil {
		return &exitError{code: 2, err: err}
	}
	log, err := logs.logger(stderr, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rv, stop, err := startReviewer(ctx, cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer stop()

	res, err := rv.Bisect(ctx, review.BisectRequest{Repo: *repo, Name: *name, Branch: *branch, Attr: *attr, System: *system, Good: *good, Bad: *bad})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("write result: %w", err)}
		}
	}
	fmt.Fprintf(stdout, "%s on %s fails since %s %q\n", res.Attr, res.System, report.Short(res.FirstBad.SHA), res.FirstBad.Title)
	fmt.Fprintf(stdout, "last good: %s %q\n", report.Short(res.LastGood.SHA), res.LastGood.Title)
	if res.Cause != "" {
		fmt.Fprintf(stdout, "cause: %s\n", res.Cause)
	}
	fmt.Fprintf(stdout, "%d commits, %d evaluations, %d builds:\n", res.Commits, res.Evaluations, res.Builds)
	for _, s := range res.Steps {
		what := string(s.Result)
		if s.Error != "" {
			what = "does not evaluate: " + s.Error
		}
		fmt.Fprintf(stdout, "  %s %-40.40q %s (%s)\n", report.Short(s.Commit), s.Title, what, s.How)
	}
	return nil
}
