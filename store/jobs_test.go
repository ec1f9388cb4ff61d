package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// take takes a job, failing the test on an error other than none left.
func take(t *testing.T, s *Store, busy ...string) *Job {
	t.Helper()
	j, err := s.TakeJob(context.Background(), busy)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A branch's tips run one at a time in push order, other work beside them;
// a kind at its limit is skipped; a job waiting to be retried holds its
// serial's later jobs back.
func TestJobsOrder(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "basinix.db"))
	add := func(kind, serial, payload string) int64 {
		id, err := s.AddJob(ctx, NewJob{Kind: kind, Serial: serial, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tip1 := add("branch-tip", "master", "tip 1")
	tip2 := add("branch-tip", "master", "tip 2")
	other := add("branch-tip", "staging", "tip 1 of staging")
	cmd := add("command", "", "help")

	if j := take(t, s); j == nil || j.ID != tip1 || string(j.Payload) != `"tip 1"` || j.Attempts != 1 {
		t.Fatalf("first: %+v", j)
	}
	// tip 2 waits for tip 1; staging's tip and the command do not.
	if j := take(t, s); j == nil || j.ID != other {
		t.Fatalf("second: %+v, want staging's tip", j)
	}
	if j := take(t, s, "command"); j != nil {
		t.Fatalf("a busy kind was taken: %+v", j)
	}
	if j := take(t, s); j == nil || j.ID != cmd {
		t.Fatalf("third: %+v, want the command", j)
	}
	if j := take(t, s); j != nil {
		t.Fatalf("tip 2 taken while tip 1 runs: %+v", j)
	}
	// tip 1 fails for the machine's fault: tip 2 still waits for it.
	if err := s.RetryJob(ctx, tip1, time.Now().Add(time.Hour), "disk full"); err != nil {
		t.Fatal(err)
	}
	if j := take(t, s); j != nil {
		t.Fatalf("taken while tip 1 waits to be retried: %+v", j)
	}
	if err := s.RetryJob(ctx, tip1, time.Now(), "disk full"); err != nil {
		t.Fatal(err)
	}
	if j := take(t, s); j == nil || j.ID != tip1 || j.Attempts != 2 || j.Error != "disk full" {
		t.Fatalf("tip 1 again: %+v", j)
	}
	if err := s.FinishJob(ctx, tip1, ""); err != nil {
		t.Fatal(err)
	}
	if j := take(t, s); j == nil || j.ID != tip2 {
		t.Fatalf("after tip 1: %+v, want tip 2", j)
	}
}

// A restart queues the running jobs again, with the steps they had done;
// a step recorded with a write is there only when the write is.
func TestJobsResume(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "basinix.db")
	s := open(t, path)
	id, err := s.AddJob(ctx, NewJob{Kind: "command", Payload: map[string]int{"comment": 1}})
	if err != nil {
		t.Fatal(err)
	}
	take(t, s)
	if err := s.PutCommand(ctx, CommandRecord{Repo: "o/r", PR: 1, User: "u", Command: "help", Outcome: "done", Received: time.Now()}, StepDone{Job: id, Step: 2}); err != nil {
		t.Fatal(err)
	}
	child, err := s.AddJob(ctx, NewJob{Kind: "requested", Payload: "x"}, StepDone{Job: id, Step: 3})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	if n, err := s.RequeueJobs(ctx); err != nil || n != 1 {
		t.Fatalf("requeued %d, %v", n, err)
	}
	if n, err := s.UnfinishedJobs(ctx, "command", "requested"); err != nil || n != 2 {
		t.Fatalf("unfinished %d, %v", n, err)
	}
	j := take(t, s)
	if j == nil || j.ID != id || j.Step != 3 || j.Attempts != 2 {
		t.Fatalf("resumed: %+v", j)
	}
	if j := take(t, s); j == nil || j.ID != child {
		t.Fatalf("the job added with the step: %+v", j)
	}
	jobs, err := s.Jobs(ctx, "command", 10)
	if err != nil || len(jobs) != 1 || jobs[0].State != JobRunning {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
}
