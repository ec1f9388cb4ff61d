package eval_test

import (
	"context"
	"testing"
	"time"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
)

func newEvaluator(t *testing.T, opt eval.Options) *eval.Evaluator {
	t.Helper()
	testenv.RequireNix(t)
	log := testenv.Logger(t)
	opt.TempDir = t.TempDir()
	ev, err := eval.New(nix.New("", nil, log), opt, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

func evaluate(t *testing.T, ev *eval.Evaluator, src, system string) *eval.Evaluation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := ev.Evaluate(ctx, src, system, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatalf("package set does not evaluate: %v", res.Error)
	}
	return res
}

// okAttrs returns the attributes that evaluated, with their drvPaths.
func okAttrs(ev *eval.Evaluation) map[string]string {
	out := map[string]string{}
	for k, a := range ev.Attrs {
		if a.OK() {
			out[k] = a.DrvPath
		}
	}
	return out
}
