package main

import (
	"context"
	"flag"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/app"
	"github.com/basinix/basinix/review"
)

// localFlags are the flags of the commands that work on this machine
// (review, bisect): the configuration and the data directory.
type localFlags struct {
	config, dataDir *string
}

func addLocalFlags(fs *flag.FlagSet) localFlags {
	return localFlags{
		dataDir: fs.String("data-dir", "", "where mirrors, the database and logs live (default ~/.cache/basinix)"),
		config:  fs.String("config", "", "configuration file (see config.example.yml)"),
	}
}

// load returns the configuration: the defaults, the file over them, the
// data directory flag over both.
func (f localFlags) load() (app.Config, error) {
	cfg := app.DefaultConfig()
	if *f.config != "" {
		var err error
		if cfg, err = app.LoadConfig(*f.config); err != nil {
			return cfg, err
		}
	}
	if *f.dataDir != "" {
		cfg.DataDir = *f.dataDir
	}
	return cfg, nil
}

// startReviewer opens a reviewer and runs its builder pool; stop ends the
// pool, waits for it and closes the reviewer.
func startReviewer(ctx context.Context, cfg app.Config, log zerolog.Logger) (rv *review.Reviewer, stop func(), err error) {
	rv, err = review.New(ctx, cfg.Review(), log)
	if err != nil {
		return nil, nil, err
	}
	poolCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rv.Run(poolCtx) }()
	return rv, func() {
		cancel()
		<-done
		rv.Close()
	}, nil
}
