package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/store"
)

// The runner's verdict on a job's error: the machine's fault is tried
// again until it passes, any other error or a panic fails the job at once,
// and a job the server's stop interrupted is resumed at the next start.
func TestJobRunnerOutcomes(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "basinix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var flaky, stopped atomic.Int32
	started := make(chan struct{})
	runner := func() *jobRunner {
		r := newJobRunner(st, time.Millisecond, testenv.Logger(t))
		r.handle("flaky", 1, func(ctx context.Context, j *store.Job) error {
			if flaky.Add(1) < 3 {
				return fmt.Errorf("build: %w: disk full", review.ErrInfrastructure)
			}
			return nil
		})
		r.handle("wrong", 1, func(ctx context.Context, j *store.Job) error { return errors.New("no such attribute") })
		r.handle("panics", 1, func(ctx context.Context, j *store.Job) error { panic("oops") })
		r.handle("long", 1, func(ctx context.Context, j *store.Job) error {
			if stopped.Add(1) == 1 {
				close(started)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		return r
	}
	r := runner()
	for _, kind := range []string{"flaky", "wrong", "panics", "long"} {
		if err := r.add(ctx, store.NewJob{Kind: kind, Payload: kind}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.add(ctx, store.NewJob{Kind: "nosuchkind"}); err == nil {
		t.Error("a job of an unknown kind was added")
	}
	state := func() map[string]string {
		jobs, err := st.Jobs(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, j := range jobs {
			out[j.Kind] = fmt.Sprintf("%s %d %s", j.State, j.Attempts, j.Error)
		}
		return out
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(rctx) }()
	<-started
	testenv.Eventually(t, 10*time.Second, func() bool {
		s := state()
		return s["flaky"] == "done 3 " && strings.HasPrefix(s["wrong"], "failed") && strings.HasPrefix(s["panics"], "failed")
	}, func() string { return fmt.Sprint(state()) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := state()
	for kind, want := range map[string]string{
		"wrong":  "failed 1 no such attribute",
		"panics": "failed 1 job 3 (panics) panicked: oops",
		"long":   "running 1 ",
	} {
		if got[kind] != want {
			t.Errorf("%s: %q, want %q", kind, got[kind], want)
		}
	}
	// The next start resumes the interrupted job.
	r = runner()
	rctx, cancel = context.WithCancel(ctx)
	defer cancel()
	go r.Run(rctx)
	testenv.Eventually(t, 10*time.Second, func() bool { return state()["long"] == "done 2 " }, func() string { return fmt.Sprint(state()) })
}
