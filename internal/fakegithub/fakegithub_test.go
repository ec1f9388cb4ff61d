package fakegithub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/basinix/basinix/internal/testenv"
)

func client(t *testing.T, s *Server, key string) *github.Client {
	t.Helper()
	cc := githubapp.NewClientCreator(s.URL, s.URL+"graphql", s.AppID, []byte(key))
	c, err := cc.NewInstallationClient(7)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The App's real client (go-githubapp and ghinstallation) gets a token and
// creates and updates check runs; bodies GitHub would refuse are refused
// and recorded.
func TestCheckRunsThroughTheRealClient(t *testing.T) {
	s := New(t)
	s.AddInstallation(7, "octo", "octo/pkgs")
	c := client(t, s, s.PrivateKeyPEM)
	ctx := context.Background()

	run, _, err := c.Checks.CreateCheckRun(ctx, "octo", "pkgs", github.CreateCheckRunOptions{Name: "basinix / eval", HeadSHA: "abc", Status: github.String("in_progress")})
	if err != nil {
		t.Fatal(err)
	}
	var anns []*github.CheckRunAnnotation
	for i := 0; i < 50; i++ {
		anns = append(anns, &github.CheckRunAnnotation{Path: github.String("a.nix"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("failure"), Message: github.String("m")})
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "octo", "pkgs", run.GetID(), github.UpdateCheckRunOptions{Name: "basinix / eval", Conclusion: github.String("failure"),
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: anns}})
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Fatalf("violations: %v", v)
	}
	runs := s.CheckRuns("octo/pkgs")
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "failure" || len(runs[0].Annotations) != 50 {
		t.Errorf("check run %+v", runs)
	}

	for _, tc := range []struct {
		name string
		opts github.UpdateCheckRunOptions
		want string
	}{
		{"51 annotations", github.UpdateCheckRunOptions{Name: "x", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"),
			Annotations: append(anns, anns[0])}}, "51 items, more than 50"},
		{"summary too long", github.UpdateCheckRunOptions{Name: "x", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(strings.Repeat("é", 65536))}}, "65536 characters"},
		{"bad conclusion", github.UpdateCheckRunOptions{Name: "x", Conclusion: github.String("great")}, "is not one of"},
		{"completed without conclusion", github.UpdateCheckRunOptions{Name: "x", Status: github.String("completed")}, "anyOf"},
		// Limits GitHub states only in the fields' descriptions.
		{"annotation title over 255 characters", github.UpdateCheckRunOptions{Name: "x", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"),
			Annotations: []*github.CheckRunAnnotation{{Path: github.String("a.nix"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("failure"),
				Message: github.String("m"), Title: github.String(strings.Repeat("n", 256))}}}}, "256 characters, more than 255"},
		{"annotation message over 64 KB", github.UpdateCheckRunOptions{Name: "x", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"),
			Annotations: []*github.CheckRunAnnotation{{Path: github.String("a.nix"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("failure"),
				Message: github.String(strings.Repeat("m", 64<<10+1))}}}}, "more than 64 KB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Violations())
			_, resp, err := c.Checks.UpdateCheckRun(ctx, "octo", "pkgs", run.GetID(), tc.opts)
			if err == nil || resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("accepted: %v", err)
			}
			v := s.Violations()
			if len(v) != before+1 || !strings.Contains(v[len(v)-1], tc.want) {
				t.Errorf("violations %v, want one with %q", v[before:], tc.want)
			}
		})
	}
}

// A JWT signed with another key gets no token.
func TestTokensOnlyForTheApp(t *testing.T) {
	s := New(t)
	s.AddInstallation(7, "octo", "octo/pkgs")
	other := New(t)
	c := client(t, s, other.PrivateKeyPEM)
	_, _, err := c.Checks.CreateCheckRun(context.Background(), "octo", "pkgs", github.CreateCheckRunOptions{Name: "n", HeadSHA: "abc"})
	if err == nil {
		t.Fatal("a check run was created with a forged App JWT")
	}
	if len(s.CheckRuns("octo/pkgs")) != 0 {
		t.Error("check run stored")
	}
}

// Faults: a 502 and a secondary rate limit with Retry-After.
func TestFaults(t *testing.T) {
	s := New(t)
	s.AddInstallation(7, "octo", "octo/pkgs")
	c := client(t, s, s.PrivateKeyPEM)
	s.Fail(1, http.StatusBadGateway, "")
	s.Fail(1, http.StatusForbidden, "1")
	ctx := context.Background()
	opts := github.CreateCheckRunOptions{Name: "n", HeadSHA: "abc"}
	if _, resp, err := c.Checks.CreateCheckRun(ctx, "octo", "pkgs", opts); err == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("want 502, got %v", err)
	}
	_, resp, err := c.Checks.CreateCheckRun(ctx, "octo", "pkgs", opts)
	var rl *github.AbuseRateLimitError
	if !errorsAs(err, &rl) || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("want a secondary rate limit with Retry-After, got %v", err)
	}
	// go-github itself holds requests back until Retry-After has passed.
	testenv.Eventually(t, 5*time.Second, func() bool {
		_, _, err = c.Checks.CreateCheckRun(ctx, "octo", "pkgs", opts)
		return err == nil
	}, func() string { return fmt.Sprintf("after the faults: %v", err) })
	if n := len(s.CheckRuns("octo/pkgs")); n != 1 {
		t.Errorf("%d check runs, want 1", n)
	}
}

func errorsAs(err error, target **github.AbuseRateLimitError) bool { return errors.As(err, target) }

// Tokens may do what their installation's permissions allow, as GitHub
// checks them: with contents: read, merging is refused (403), as it was
// for an App set up with the permissions basinix's README once listed.
func TestInstallationPermissions(t *testing.T) {
	s := New(t)
	s.AddInstallation(7, "octo", "octo/pkgs")
	s.SetPull(Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: "abc", BaseRef: "master"})
	perms := map[string]string{"checks": "write", "contents": "read", "issues": "write", "metadata": "read", "pull_requests": "write"}
	s.SetInstallationPermissions(7, perms)
	c := client(t, s, s.PrivateKeyPEM)
	_, resp, err := c.PullRequests.Merge(context.Background(), "octo", "pkgs", 1, "", &github.PullRequestOptions{MergeMethod: "merge"})
	if err == nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Fatalf("merge with contents: read: %v", err)
	}
	if v := s.Violations(); len(v) != 1 || !strings.Contains(v[0], "contents: write") {
		t.Errorf("violations %v", v)
	}
	if _, _, err := c.Checks.CreateCheckRun(context.Background(), "octo", "pkgs", github.CreateCheckRunOptions{Name: "n", HeadSHA: "abc"}); err != nil {
		t.Errorf("a check run with checks: write: %v", err)
	}
}
