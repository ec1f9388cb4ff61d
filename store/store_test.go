package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEvaluationRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "basinix.db")
	s := open(t, path)
	key := EvalKey{Repo: "/r", Commit: "abc", System: "x86_64-linux", ConfigHash: "c1", Evaluator: "walker-1/nix-2.8.0"}
	if _, err := s.Evaluation(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before: want ErrNotFound, got %v", err)
	}
	rec := &EvalRecord{Key: key, AttrCount: 2, Attrs: []byte(`{"a":{"drvPath":"/nix/store/a.drv"},"b":{}}`), Duration: 1500 * time.Millisecond, Processes: 3}
	if err := s.PutEvaluation(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// A second Open migrates nothing again and sees the same data.
	s2 := open(t, path)
	got, err := s2.Evaluation(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("(-put +got):\n%s", diff)
	}
	for _, other := range []EvalKey{
		{Repo: "/r", Commit: "abc", System: "aarch64-linux", ConfigHash: "c1", Evaluator: key.Evaluator},
		{Repo: "/r", Commit: "abc", System: "x86_64-linux", ConfigHash: "c2", Evaluator: key.Evaluator},
		{Repo: "/r", Commit: "abc", System: "x86_64-linux", ConfigHash: "c1", Evaluator: "walker-2/nix-2.8.0"},
	} {
		if _, err := s2.Evaluation(ctx, other); !errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: want ErrNotFound (a different key), got %v", other, err)
		}
	}
}

func TestPutEvaluationReplacesAndDropsExtras(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "basinix.db"))
	key := EvalKey{Repo: "/r", Commit: "abc", System: "x86_64-linux", ConfigHash: "c", Evaluator: "e"}
	if err := s.PutExtras(ctx, key, "details", map[string][]byte{"a": []byte(`{}`)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("extras without an evaluation: want ErrNotFound, got %v", err)
	}
	if err := s.PutEvaluation(ctx, &EvalRecord{Key: key, Attrs: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutExtras(ctx, key, "details", map[string][]byte{"a": []byte(`{"name":"a"}`), "b": []byte(`{"name":"b"}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Extras(ctx, key, "details", []string{"a", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"a": []byte(`{"name":"a"}`)}, got); diff != "" {
		t.Errorf("extras (-want +got):\n%s", diff)
	}
	if got, _ := s.Extras(ctx, key, "explain", []string{"a"}); len(got) != 0 {
		t.Errorf("explain extras: want none, got %v", got)
	}
	if err := s.PutEvaluation(ctx, &EvalRecord{Key: key, AttrCount: 1, Attrs: []byte(`{"x":{}}`)}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Evaluation(ctx, key)
	if err != nil || rec.AttrCount != 1 {
		t.Fatalf("after replace: %+v, %v", rec, err)
	}
	if got, _ := s.Extras(ctx, key, "details", []string{"a"}); len(got) != 0 {
		t.Errorf("extras of the replaced evaluation survived: %v", got)
	}
}

// Writers on several connections wait for each other instead of failing
// with "database is locked" (reviews write per system concurrently).
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "basinix.db"))
	key := func(i int) EvalKey {
		return EvalKey{Repo: "/r", Commit: "abc", System: fmt.Sprintf("sys%d", i), ConfigHash: "c", Evaluator: "e"}
	}
	for i := 0; i < 8; i++ {
		if err := s.PutEvaluation(ctx, &EvalRecord{Key: key(i), Attrs: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var g errgroup.Group
	for i := 0; i < 8; i++ {
		for j := 0; j < 20; j++ {
			g.Go(func() error {
				return s.PutExtras(ctx, key(i), "details", map[string][]byte{fmt.Sprint(j): []byte(`{}`)})
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Extras(ctx, key(3), "details", []string{"0", "19"})
	if err != nil || len(got) != 2 {
		t.Fatalf("extras after concurrent writes: %v, %v", got, err)
	}
}

func TestBuildsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "db"))
	started := time.UnixMilli(1_700_000_000_123)
	recs := []*BuildRecord{
		{DrvPath: "/nix/store/a-x.drv", Result: "failure", Message: "builder failed", Machine: "localhost", Started: started, Duration: 1500 * time.Millisecond, LogPath: "/logs/a.log"},
		{DrvPath: "/nix/store/b-y.drv", Result: "dependency-failed", FailedDep: "/nix/store/a-x.drv"},
	}
	if err := s.PutBuilds(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Builds(ctx, []string{"/nix/store/a-x.drv", "/nix/store/b-y.drv", "/nix/store/c-z.drv"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*BuildRecord{recs[0].DrvPath: recs[0], recs[1].DrvPath: recs[1]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
	// A rebuild replaces the result.
	if err := s.PutBuilds(ctx, []*BuildRecord{{DrvPath: "/nix/store/a-x.drv", Result: "success"}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Builds(ctx, []string{"/nix/store/a-x.drv"})
	if err != nil {
		t.Fatal(err)
	}
	if got["/nix/store/a-x.drv"].Result != "success" {
		t.Errorf("after rebuild: %+v", got["/nix/store/a-x.drv"])
	}
}

// A re-run asked while a revision is worked on starts when it finishes,
// as a new attempt with the options asked; one asked of a finished
// revision starts at once; a stopped one is not run again.
func TestRerunPending(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "db"))
	id, _, _, err := s.AddRevision(ctx, Revision{Repo: "o/r", InstallationID: 1, CloneURL: "file:///x", PR: 1, HeadSHA: "a", BaseRef: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeRevision(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RerunRevision(ctx, id, RerunOptions{RebuildFailed: true}); err != nil || !ok {
		t.Fatalf("rerun while evaluating: %v %v", ok, err)
	}
	if r, _ := s.Revision(ctx, id); r.State != Evaluating || r.Attempt != 0 {
		t.Errorf("while running: %s attempt %d", r.State, r.Attempt)
	}
	if err := s.FinishRevision(ctx, id, Done, []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Revision(ctx, id); r.State != Queued || r.Attempt != 1 || !r.RebuildFailed {
		t.Errorf("after it finished: %s attempt %d rebuild %v", r.State, r.Attempt, r.RebuildFailed)
	}
	s.TakeRevision(ctx)
	s.FinishRevision(ctx, id, Done, nil, "")
	if n, err := s.Rerun(ctx, "o/r", "a", false); err != nil || n != 1 {
		t.Fatalf("rerun of a finished one: %d %v", n, err)
	}
	if r, _ := s.Revision(ctx, id); r.State != Queued || r.Attempt != 2 || r.RebuildFailed {
		t.Errorf("re-run at once: %s attempt %d rebuild %v", r.State, r.Attempt, r.RebuildFailed)
	}
	s.CancelPR(ctx, "o/r", 1)
	if ok, _ := s.RerunRevision(ctx, id, RerunOptions{}); ok {
		t.Error("a cancelled revision was run again")
	}
}

// The scheduler's estimates: a derivation's name without hash and version,
// and the last successful build time of a name (a failure does not count).
func TestBuildTimes(t *testing.T) {
	for path, want := range map[string]string{
		"/nix/store/00000000000000000000000000000000-hello-2.12.drv":                 "hello",
		"/nix/store/00000000000000000000000000000000-python3.10-requests-2.31.0.drv": "python3.10-requests",
		"/nix/store/00000000000000000000000000000000-libmid.drv":                     "libmid",
		"/nix/store/00000000000000000000000000000000-foo-bar-unstable-2024.drv":      "foo-bar-unstable",
	} {
		if got := DrvName(path); got != want {
			t.Errorf("DrvName(%s) = %q, want %q", path, got, want)
		}
	}
	st := open(t, filepath.Join(t.TempDir(), "basinix.db"))
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	recs := []*BuildRecord{
		{DrvPath: "/nix/store/00000000000000000000000000000001-hello-2.12.drv", Result: "success", Duration: 3 * time.Minute, Started: old},
		{DrvPath: "/nix/store/00000000000000000000000000000002-hello-2.13.drv", Result: "failure", Duration: time.Second, Started: old},
		{DrvPath: "/nix/store/00000000000000000000000000000003-big-1.0.drv", Result: "success", Duration: 2 * time.Hour, Started: old},
	}
	if err := st.PutBuilds(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := st.BuildTimes(ctx, []string{"hello", "big", "never"})
	if err != nil {
		t.Fatal(err)
	}
	if got["hello"] != 3*time.Minute || got["big"] != 2*time.Hour || len(got) != 2 {
		t.Errorf("build times %v", got)
	}
	// What a package needs in memory only grows.
	for _, mib := range []int{128, 64} {
		if err := st.PutMemoryNeed(ctx, "hungry", mib); err != nil {
			t.Fatal(err)
		}
	}
	needs, err := st.MemoryNeeds(ctx, []string{"hungry", "hello", "hungry"})
	if err != nil {
		t.Fatal(err)
	}
	if needs["hungry"] != 128 || len(needs) != 1 {
		t.Errorf("memory needs %v, want hungry: 128", needs)
	}
}
