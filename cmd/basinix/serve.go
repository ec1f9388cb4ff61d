package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/basinix/basinix/app"
)

func serve(ctx context.Context, args []string, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("basinix serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (see config.example.yml); required")
	logFlags := addLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}
	if *configPath == "" {
		return &exitError{code: 2, err: errors.New("serve: --config is required (see config.example.yml)")}
	}
	cfg, err := app.LoadConfig(*configPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := cfg.LoadSecrets(env); err != nil {
		return &exitError{code: 2, err: err}
	}
	// Nothing basinix logs shows a secret, whatever Nix or git printed.
	log, err := logFlags.logger(app.NewRedactor(cfg).Each(stderr), stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	srv, err := app.NewServer(ctx, cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer srv.Close()
	if err := srv.Run(ctx); err != nil {
		return &exitError{code: 2, err: err}
	}
	return nil
}
