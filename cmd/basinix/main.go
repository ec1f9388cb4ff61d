// Command basinix reviews pull requests to Nix package sets.
//
//	basinix review --repo DIR|URL --base REF --head REF [--systems LIST] [--no-build] [--json FILE]
//	basinix review --sample
//	basinix serve --config FILE
//	basinix bisect --repo DIR|URL --branch B --attr A [--system S] [--good SHA] [--bad SHA] [--json FILE]
//	basinix version
//
// Exit codes of review: 0 nothing is broken, 1 the change breaks something,
// 2 usage or infrastructure error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app"
)

const version = app.Version

const usage = `basinix reviews pull requests to Nix package sets.

Usage:
  basinix review --repo DIR|URL --base REF --head REF [flags]
  basinix review --sample [flags]     review a generated sample package set
  basinix serve --config FILE         run the GitHub App
  basinix bisect --repo R --branch B --attr A   find the commit that broke A
  basinix version

Run 'basinix review -h' for the review flags.
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
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "review":
		err = review(ctx, args[1:], stdout, stderr)
	case "bisect":
		err = bisect(ctx, args[1:], stdout, stderr)
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

func newLogger(w io.Writer, verbose bool) zerolog.Logger {
	level := zerolog.InfoLevel
	if verbose {
		level = zerolog.DebugLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}).Level(level).With().Timestamp().Logger()
}
