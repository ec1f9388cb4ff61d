// Command basinix reviews pull requests to Nix package sets.
//
//	basinix review --repo DIR|URL --base REF --head REF [--systems LIST] [--no-build] [--json FILE]
//	basinix review --sample
//	basinix pr N [N…] [-p ATTR] [-P ATTR] [--systems current|all|linux|darwin|LIST] [--post-result] [--run CMD|--no-shell]
//	basinix serve --config FILE
//	basinix setup --org ORG|--user [--name NAME] [--config FILE]
//	basinix bisect --repo DIR|URL --branch B --attr A [--system S] [--good SHA] [--bad SHA] [--json FILE]
//	basinix gc [--dry-run] [--json] [--collect [--max-freed SIZE]] [--config FILE]
//	basinix version
//
// Exit codes of review: 0 nothing is broken, 1 the change breaks something,
// 2 usage or infrastructure error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app"
)

const version = app.Version

const usage = `basinix reviews pull requests to Nix package sets.

Usage:
  basinix review --repo DIR|URL --base REF --head REF [flags]
  basinix review --sample [flags]     review a generated sample package set
  basinix pr NUMBER [NUMBER…] [flags] review GitHub pull requests (nixpkgs-review's flags)
  basinix serve --config FILE         run the GitHub App
  basinix setup --org ORG|--user      register the GitHub App (manifest flow)
  basinix bisect --repo R --branch B --attr A   find the commit that broke A
  basinix gc [--dry-run] [--json] [--collect]   keep outputs by policy, collect the rest
  basinix version

Run 'basinix review -h' or 'basinix pr -h' for their flags.
`

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	secrets, err := takeSecretEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "basinix: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, lookupIn(secrets))
	stop()
	os.Exit(code)
}

// run runs the command args; env looks up environment variables (the
// secrets main took out of the environment first).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	logFormats.Do(func() {
		// Durations read as durations ("took=1.2s"), not bare
		// milliseconds; timestamps in JSON logs to the millisecond.
		zerolog.DurationFieldFormat = zerolog.DurationFormatString
		zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	})
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "review":
		err = reviewCmd(ctx, args[1:], stdout, stderr)
	case "bisect":
		err = bisect(ctx, args[1:], stdout, stderr)
	case "pr":
		err = prCmd(ctx, args[1:], stdout, stderr, env)
	case "setup":
		err = setupCmd(ctx, args[1:], stdout, stderr)
	case "gc":
		err = gcCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		err = serve(ctx, args[1:], stderr, env)
	case "version":
		fmt.Fprintf(stdout, "basinix %s\n", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "basinix: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "basinix: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "basinix: %v\n", err)
	return 2
}

// logFormats sets zerolog's formats once, for every command.
var logFormats sync.Once

// logFlags are the flags every command has for its log.
type logFlags struct {
	verbose *bool
	format  *string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	return &logFlags{
		verbose: fs.Bool("v", false, "log every Nix command"),
		format:  fs.String("log-format", "console", "the log's format: console (readable; coloured on a terminal) or json (one object a line)"),
	}
}

// logger returns the logger the flags ask for, writing to w; term is the
// stream w ends up on, for colour only where a terminal shows it.
func (lf *logFlags) logger(w io.Writer, term io.Writer) (zerolog.Logger, error) {
	level := zerolog.InfoLevel
	if *lf.verbose {
		level = zerolog.DebugLevel
	}
	switch *lf.format {
	case "json":
		return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
	case "console":
		cw := zerolog.ConsoleWriter{Out: w, NoColor: !isTerminal(term), TimeFormat: "2006-01-02 15:04:05.000"}
		return zerolog.New(cw).Level(level).With().Timestamp().Logger(), nil
	}
	return zerolog.Nop(), fmt.Errorf("--log-format %q is not console or json", *lf.format)
}
