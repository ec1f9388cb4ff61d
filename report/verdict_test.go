package report

import (
	"testing"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/eval"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		name   string
		change eval.Change
		head   build.Result
		base   build.Result
		want   Verdict
	}{
		{"fixed by the change", eval.Changed, build.Success, build.Failure, NewlySucceeding},
		{"broken by the change", eval.Changed, build.Failure, build.Success, NewlyFailing},
		{"broken through a dependency", eval.Changed, build.DependencyFailed, build.Success, NewlyFailing},
		{"timing out now", eval.Changed, build.Timeout, build.Success, NewlyFailing},
		{"failing before and after", eval.Changed, build.Failure, build.DependencyFailed, StillFailing},
		{"fine before and after", eval.Changed, build.Success, build.Success, StillSucceeding},
		{"new and building", eval.Added, build.Success, "", NewSucceeding},
		{"new and failing", eval.Added, build.Failure, "", NewFailing},
		{"base never built", eval.Changed, build.Failure, build.Unknown, NewFailing},
		{"evaluates again and builds", eval.EvalFixed, build.Success, "", NewlySucceeding},
		{"evaluates again, still does not build", eval.EvalFixed, build.Failure, "", StillFailing},
		{"not built", eval.Changed, build.Cancelled, build.Success, Pending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdict(tt.change, tt.head, tt.base); got != tt.want {
				t.Errorf("verdict(%s, head %s, base %s) = %s, want %s", tt.change, tt.head, tt.base, got, tt.want)
			}
		})
	}
}

// A dependency failure's log is the failed dependency's; tests get their
// results; the base result is taken unless the base build was cancelled.
func TestApplyBuilds(t *testing.T) {
	s := &System{Attrs: map[string]*AttrEntry{
		"app": {Change: eval.Changed, DrvPath: "/nix/store/h-app.drv", BaseDrvPath: "/nix/store/b-app.drv", Head: build.Pending, Base: build.Unknown, Verdict: Pending,
			Tests: map[string]*TestEntry{"unit": {DrvPath: "/nix/store/t-unit.drv", Head: build.Pending}}},
		"gone": {Change: eval.Removed, Verdict: Removed},
	}}
	s.ApplyBuilds(map[string]build.Outcome{
		"/nix/store/h-app.drv":  {Result: build.DependencyFailed, FailedDep: "/nix/store/d-lib.drv", Log: ""},
		"/nix/store/d-lib.drv":  {Result: build.Failure, Log: "/logs/lib.log"},
		"/nix/store/b-app.drv":  {Result: build.Success},
		"/nix/store/t-unit.drv": {Result: build.Success, Log: "/logs/unit.log"},
	})
	app := s.Attrs["app"]
	if app.Verdict != NewlyFailing || app.Log != "/logs/lib.log" || app.FailedDependency != "/nix/store/d-lib.drv" || app.Base != build.Success {
		t.Errorf("app = %+v", app)
	}
	if u := app.Tests["unit"]; u.Head != build.Success || u.Log != "/logs/unit.log" {
		t.Errorf("test unit = %+v", u)
	}
	if s.Attrs["gone"].Verdict != Removed {
		t.Errorf("removed attribute changed: %+v", s.Attrs["gone"])
	}
}
