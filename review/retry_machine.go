package review

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/basinix/basinix/eval"
)

// ErrInfrastructure marks a review that failed for the machine's fault (the
// Nix store, the disk, a signal basinix did not send, builds killed or out
// of space): nothing of it is a result. The CLI exits 2; the server tries
// the revision again later.
var ErrInfrastructure = eval.ErrInfrastructure

// machineRetries are the waits before each new attempt of work that failed
// for the machine's fault: short, since a fault that lasts is reported.
var machineRetries = []time.Duration{time.Second, 3 * time.Second}

// retryMachineFaults runs fn, and again after each of machineRetries while
// it fails with ErrInfrastructure; it returns fn's last error.
func retryMachineFaults(ctx context.Context, log zerolog.Logger, what string, fn func() error) error {
	err := fn()
	for _, wait := range machineRetries {
		if !errors.Is(err, ErrInfrastructure) {
			return err
		}
		log.Warn().Err(err).Str("op", what).Dur("in", wait).Msg("the machine's fault: trying again")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		err = fn()
	}
	return err
}
