package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
)

// gcCmd roots what the policies keep (gc: in the configuration), says
// what would become collectable and, with --collect, runs Nix's collector.
func gcCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("basinix gc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dryRun   = fs.Bool("dry-run", false, "change nothing: show what each policy keeps and what is not kept")
		asJSON   = fs.Bool("json", false, "print the result as JSON")
		collect  = fs.Bool("collect", false, "after updating the roots, run Nix's garbage collector")
		maxFreed = fs.String("max-freed", "", "with --collect, free at most this much (bytes, or with K, M, G, T)")
	)
	local := addLocalFlags(fs)
	logs := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("gc: unexpected argument %q", fs.Arg(0))}
	}
	limit, err := parseSize(*maxFreed)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("gc: --max-freed: %w", err)}
	}
	if *dryRun && *collect {
		return &exitError{code: 2, err: errors.New("gc: --dry-run and --collect exclude each other")}
	}
	cfg, err := local.load()
	if err != nil {
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
	rep, err := rv.GC(ctx, review.GCOptions{DryRun: *dryRun, Collect: *collect, MaxFreed: limit})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *asJSON {
		data, _ := json.MarshalIndent(rep, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", data)
		return err
	}
	writeGC(stdout, rep)
	return nil
}

func writeGC(w io.Writer, rep *review.GCReport) {
	verb := "keeps"
	if rep.DryRun {
		verb = "would keep"
	}
	for _, r := range rep.Roots {
		until := ""
		if r.Until != nil {
			until = ", closed: until " + r.Until.UTC().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(w, "%s (%s%s) %s %d paths, %s\n", r.Name, r.Policy, until, verb, r.Paths, report.HumanBytes(r.NarSize))
	}
	fmt.Fprintf(w, "not kept by any policy: %d outputs basinix built, %s (collectable unless rooted elsewhere)\n", rep.Unkept, report.HumanBytes(rep.UnkeptNarSize))
	for _, p := range rep.UnkeptSample {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if n := len(rep.Dropped); n > 0 {
		fmt.Fprintf(w, "roots nothing keeps any more: %d (%s)\n", n, map[bool]string{true: "would be dropped", false: "dropped"}[rep.DryRun])
	}
	if c := rep.Cache; c != nil {
		fmt.Fprintf(w, "cache %s: %d paths live, %d queued for upload, %d expired but needed by live ones\n", c.URL, c.Live, c.Queued, c.Needed)
		switch {
		case len(c.Expired) == 0:
		case c.Removed:
			fmt.Fprintf(w, "  removed %d expired paths\n", len(c.Expired))
		case rep.DryRun:
			fmt.Fprintf(w, "  %d expired paths would be removed\n", len(c.Expired))
		default:
			fmt.Fprintf(w, "  %d expired paths to remove (only a file:// cache is cleaned by basinix):\n", len(c.Expired))
			for _, p := range c.Expired {
				fmt.Fprintf(w, "  %s\n", p)
			}
		}
	}
	if c := rep.Collected; c != nil {
		fmt.Fprintf(w, "collected: %d store paths, %s freed\n", c.Paths, c.Freed)
	}
}

// parseSize reads "1024", "500M", "10G" as bytes ("" is 0).
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	if i := strings.IndexAny(s, "KMGTkmgt"); i == len(s)-1 {
		mult = 1 << (10 * (strings.IndexByte("KMGT", strings.ToUpper(s[i:])[0]) + 1))
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
