package eval_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/eval"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/sampleset"
)

// What a pull request's code can reach from evaluation: nothing outside its
// checkout. Each package tries one way out and throws what it read; the
// secret must be in no message, and flakes' fetchers must be off even when
// the host's Nix has flakes on (as .ci/install-nix sets it up).
func TestPackageCodeCannotReadOutsideTheCheckout(t *testing.T) {
	secretDir := t.TempDir()
	const secret = "-----BEGIN RSA PRIVATE KEY-----MIIEsecretkeymaterial"
	keyFile := filepath.Join(secretDir, "app.pem")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =")
	t.Setenv("NIX_PATH", "secret="+secretDir)
	t.Setenv("BASINIX_GITHUB_APP_PRIVATE_KEY", secret)

	steal := func(expr string) string {
		return "{ stdenv }:\n\nthrow (" + expr + ")\n"
	}
	pkgs := map[string]string{
		"fetchtree": steal(`builtins.readFile (builtins.fetchTree { type = "path"; path = "` + keyFile + `"; }).outPath`),
		"getflake":  steal(`builtins.readFile ((builtins.getFlake "path:` + secretDir + `").outPath + "/app.pem")`),
		"path":      steal(`builtins.readFile (builtins.path { path = "` + keyFile + `"; })`),
		"fetchurl":  steal(`builtins.readFile (builtins.fetchurl "file://` + keyFile + `")`),
		"nixpath":   steal(`builtins.toJSON builtins.nixPath`),
		"findfile":  steal(`builtins.readFile (builtins.findFile builtins.nixPath "secret/app.pem")`),
		"getenv":    steal(`"key: " + builtins.getEnv "BASINIX_GITHUB_APP_PRIVATE_KEY"`),
	}
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: pkgs})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	var paths []eval.Path
	for name := range pkgs {
		paths = append(paths, eval.Path{name})
	}
	msgs, err := ev.Explain(context.Background(), repo.Dir, "x86_64-linux", paths)
	if err != nil {
		t.Fatal(err)
	}
	for name := range pkgs {
		a := res.Attrs[name]
		if a == nil || a.Error == nil {
			t.Errorf("%s: want an error, got %+v", name, a)
			continue
		}
		msg := msgs[name]
		if msg == nil {
			t.Errorf("%s: no message explained", name)
			continue
		}
		for _, leak := range []string{secret, "secretkeymaterial"} {
			if strings.Contains(msg.Message, leak) {
				t.Errorf("%s: the message shows %q: %s", name, leak, msg.Message)
			}
		}
		t.Logf("%s: %s", name, msg.Message)
	}
	if m := msgs["fetchtree"]; m != nil && !strings.Contains(m.Message, "experimental Nix feature 'flakes' is disabled") {
		t.Errorf("fetchtree: want flakes disabled, got %s", m.Message)
	}
	if m := msgs["getflake"]; m != nil && !strings.Contains(m.Message, "getFlake") {
		t.Errorf("getflake: want getFlake unknown, got %s", m.Message)
	}
	if m := msgs["nixpath"]; m != nil && (strings.Contains(m.Message, "secret") || strings.Contains(m.Message, `"/`)) {
		t.Errorf("nixpath: the host's NIX_PATH or the server's paths are visible: %s", m.Message)
	}
	if h := res.Attrs["hello"]; h == nil || !h.OK() {
		t.Errorf("hello: %+v", h)
	}
}

// A set that contains itself (and one that contains itself twice, which
// would double at every level) is walked once, as nix-env walks it: the
// evaluation ends with the derivations in it and nothing below the cycle.
func TestSelfReferencingSetIsWalkedOnce(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2, AttrTimeout: 10 * time.Second, MaxMemory: 2 << 30})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"loop": `{ stdenv }:

let
  s = {
    recurseForDerivations = true;
    me = s;
    twice = { recurseForDerivations = true; a = s; b = s; };
    d = stdenv.mkDerivation { pname = "loopd"; version = "1"; };
  };
in s
`,
	}})
	start := time.Now()
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	t.Logf("evaluated in %s", time.Since(start))
	if a := res.Attrs["loop.d"]; a == nil || !a.OK() {
		t.Errorf("loop.d: %+v", a)
	}
	for k := range res.Attrs {
		if strings.HasPrefix(k, "loop.me.") || strings.HasPrefix(k, "loop.twice.a.") || strings.HasPrefix(k, "loop.twice.b.") {
			t.Errorf("%s: walked below a cycle", k)
		}
	}
}

// Sets nested deeper than the walker goes fail with a message that says
// so, and a set that grows without end (new names at every level, two
// children each) fails as a whole at eval.max_attrs instead of growing
// basinix's memory.
func TestUnboundedSetsAreBounded(t *testing.T) {
	deep := `{ stdenv }:

let
  mk = n: { recurseForDerivations = true; "l${toString n}" = mk (n + 1); d = stdenv.mkDerivation { pname = "d${toString n}"; version = "1"; }; };
in mk 0
`
	t.Run("deep", func(t *testing.T) {
		ev := newEvaluator(t, eval.Options{Workers: 2})
		repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{"deep": deep}})
		res := evaluate(t, ev, repo.Dir, "x86_64-linux")
		var failed []eval.Path
		for _, a := range res.Attrs {
			if a.Error != nil && strings.HasPrefix(a.Path.String(), "deep.") {
				failed = append(failed, a.Path)
			}
		}
		if len(failed) != 1 || len(failed[0]) != 16 {
			t.Fatalf("want one failed set 16 levels deep, got %v", failed)
		}
		if a := res.Attrs["deep.l0.l1.d"]; a == nil || !a.OK() {
			t.Errorf("deep.l0.l1.d: %+v", a)
		}
		msgs, err := ev.Explain(context.Background(), repo.Dir, "x86_64-linux", failed)
		if err != nil {
			t.Fatal(err)
		}
		if m := msgs[failed[0].String()]; m == nil || !strings.Contains(m.Message, "nested more than 16 levels deep") {
			t.Errorf("%s: want the depth named, got %+v", failed[0], m)
		}
	})
	t.Run("exponential", func(t *testing.T) {
		ev := newEvaluator(t, eval.Options{Workers: 2, MaxAttrs: 2000})
		repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{"bushy": `{ stdenv }:

let
  mk = n: { recurseForDerivations = true; "a${toString n}" = mk (n + 1); "b${toString n}" = mk (n + 1); };
in mk 0
`}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := ev.Evaluate(ctx, repo.Dir, "x86_64-linux", 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Error == nil || !strings.Contains(res.Error.Message, "eval.max_attrs") {
			t.Fatalf("want the set refused at max_attrs, got %+v", res.Error)
		}
	})
}

// An attribute that traces a line again and again makes no progress: it
// is killed after attr_timeout like one that loops silently, and named.
func TestTracingLoopIsKilled(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2, AttrTimeout: 3 * time.Second})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"chatty": `{ stdenv }:

builtins.foldl' (acc: i: builtins.trace "still working ${toString i}" (acc + builtins.length (builtins.genList (x: x) 300000))) 0 (builtins.genList (x: x) 1000000)
`,
	}})
	start := time.Now()
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	a := res.Attrs["chatty"]
	if a == nil || a.Error == nil || !strings.Contains(a.Error.Message, "without progress") {
		t.Fatalf("chatty: want killed for making no progress, got %+v", a)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("took %s", took)
	}
	if h := res.Attrs["hello"]; h == nil || !h.OK() {
		t.Errorf("hello: %+v", h)
	}
}

// eval.timeout bounds an evaluation as a whole, whatever its attributes
// do: the evaluation fails with ErrTimeLimit, which is not a result.
func TestEvaluationTimeLimit(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2, AttrTimeout: time.Hour, Timeout: 3 * time.Second})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"slow": "{ stdenv }:\n\nbuiltins.foldl' (a: i: builtins.length (builtins.genList (x: x) 100000) + a) 0 (builtins.genList (x: x) 1000000)\n",
	}})
	start := time.Now()
	_, err := ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", 0)
	if !errors.Is(err, eval.ErrTimeLimit) {
		t.Fatalf("want ErrTimeLimit, got %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the limit of 3s ended the evaluation after %s", took)
	}
}

// Each attribute that aborts costs a process and an import of the set; past
// eval.max_deaths the evaluation gives up on what is left, saying so,
// instead of spending minutes on thousands of them.
func TestMaxDeathsBoundsProcesses(t *testing.T) {
	extra := map[string]string{}
	for _, n := range []string{"ab01", "ab02", "ab03", "ab04", "ab05", "ab06", "ab07", "ab08", "ab09", "ab10", "ab11", "ab12"} {
		extra[n] = "{ stdenv }:\n\nabort \"" + n + " aborts\"\n"
	}
	ev := newEvaluator(t, eval.Options{Workers: 2, MaxDeaths: 3})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: extra})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	given, own := 0, 0
	for n := range extra {
		a := res.Attrs[n]
		switch {
		case a == nil || a.Error == nil:
			t.Errorf("%s: want an error, got %+v", n, a)
		case strings.Contains(a.Error.Message, "more than 3 attributes"):
			given++
		case strings.Contains(a.Error.Message, n+" aborts"):
			own++
		default:
			t.Errorf("%s: %s", n, a.Error.Message)
		}
	}
	if given == 0 || own == 0 {
		t.Errorf("%d attributes with their own abort, %d given up: want both", own, given)
	}
	if res.Processes > 3+2+2 {
		t.Errorf("%d processes for max_deaths 3 and 2 workers", res.Processes)
	}
}

// A fault of the machine (the store read-only, a kill basinix did not
// send) is an infrastructure error, never the package set's result: the
// first evaluation fails with ErrInfrastructure, the next one is right.
func TestMachineFaultIsNotAResult(t *testing.T) {
	repo := testenv.Sample(t, sampleset.Options{NoPR: true})
	for _, tt := range []struct {
		name  string
		fault testenv.Fault
		want  string
	}{
		{"read-only store", testenv.Fault{Program: "nix-instantiate", Count: 1,
			Stderr: "error: opening lock file '/nix/var/nix/db/big-lock': Read-only file system"}, "read-only"},
		{"busy store database", testenv.Fault{Program: "nix-instantiate", Count: 1,
			Stderr: "error: SQLite database '/nix/var/nix/db/db.sqlite' is busy"}, "busy"},
		{"killed by a signal basinix did not send", testenv.Fault{Program: "nix-instantiate", Count: 1, Signal: 9}, "signal 9"},
		{"no space left", testenv.Fault{Program: "nix-instantiate", Count: 1,
			Stderr: "error: writing to file: No space left on device"}, "no space left"},
		{"daemon unreachable", testenv.Fault{Program: "nix-instantiate", Count: 1,
			Stderr: "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused"}, "daemon cannot be reached"},
		{"store not writable", testenv.Fault{Program: "nix-instantiate", Count: 1,
			Stderr: "error: opening lock file '/nix/var/nix/db/big-lock': Permission denied"}, "may not write to the Nix store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := testenv.FaultyNix(t, tt.fault)
			log := testenv.Logger(t)
			ev, err := eval.New(nix.New(bin, nil, log), eval.Options{Workers: 1, TempDir: t.TempDir()}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			res, err := ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", 0)
			if !errors.Is(err, eval.ErrInfrastructure) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an infrastructure error naming %q, got %v (result %+v)", tt.want, err, res)
			}
			res, err = ev.Evaluate(context.Background(), repo.Dir, "x86_64-linux", 0)
			if err != nil || res.Error != nil {
				t.Fatalf("after the fault: %v, %+v", err, res)
			}
			if h := res.Attrs["hello"]; h == nil || !h.OK() {
				t.Errorf("hello: %+v", h)
			}
		})
	}
}

// A package that traces a line of 512 MiB (past the bound the old stderr
// scanner died at, dropping every record after it, so that the walk looked
// silent and was reported as a time limit): the line is cut, and the
// evaluation goes on with the right results.
func TestHugeTraceLine(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1, AttrTimeout: time.Minute, MaxMemory: 6 << 30})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"loud": `{ stdenv }:

let
  double = s: s + s;
  big = builtins.foldl' (s: _: double s) "x" (builtins.genList (x: x) 29);
in
builtins.trace big (stdenv.mkDerivation { pname = "loud"; version = "1"; })
`,
	}})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	for _, n := range []string{"loud", "hello"} {
		if a := res.Attrs[n]; a == nil || !a.OK() {
			t.Errorf("%s: %+v", n, a)
		}
	}
}

// meta.position outside the checkout (a store path, /etc) is no place an
// annotation can point at: it is dropped.
func TestPositionOutsideTheCheckoutIsDropped(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 1})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"elsewhere": "{ stdenv }:\n\n(stdenv.mkDerivation { pname = \"elsewhere\"; version = \"1\"; }) // { meta = { position = \"/etc/passwd:1\"; }; }\n",
	}})
	det, err := ev.Details(context.Background(), repo.Dir, "x86_64-linux", []eval.Path{{"elsewhere"}, {"hello"}}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := det["elsewhere"]; d == nil || d.Position != "" {
		t.Errorf("elsewhere: position %+v, want none", d)
	}
	if d := det["hello"]; d == nil || !strings.HasPrefix(d.Position, "pkgs/") {
		t.Errorf("hello: position %+v, want one in the checkout", d)
	}
}

// An attribute that uses an alias through a callPackage argument dies of
// "called without required argument" with aliases off: it is an alias
// error like one that uses pkgs.oldhello, annotated at the package's own
// file (the function Nix names), with no server path in its message.
func TestAliasErrorThroughACallPackageArgument(t *testing.T) {
	ev := newEvaluator(t, eval.Options{Workers: 2})
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{
		"usesaliasarg": "{ stdenv, oldhello }:\n\nstdenv.mkDerivation {\n  pname = \"usesaliasarg\";\n  version = \"1\";\n  deps = [ oldhello ];\n}\n",
	}})
	res := evaluate(t, ev, repo.Dir, "x86_64-linux")
	a := res.Attrs["usesaliasarg"]
	if a == nil || a.Error == nil || !a.AliasError || a.DrvPath == "" {
		t.Fatalf("usesaliasarg: want an alias error with the aliased derivation, got %+v", a)
	}
	if a.Error.File != "pkgs/by-name/usesaliasarg/default.nix" || a.Error.Line != 1 {
		t.Errorf("usesaliasarg: error at %s:%d, want the package's file, line 1", a.Error.File, a.Error.Line)
	}
	if !strings.Contains(a.Error.Message, "oldhello") || strings.Contains(a.Error.Message, repo.Dir) {
		t.Errorf("usesaliasarg: message %q", a.Error.Message)
	}
}

// The errors an alias can explain are tried with aliases on; an abort of
// the code's own is not (it would only die a second time).
func TestAliasMayExplain(t *testing.T) {
	for msg, want := range map[string]bool{
		"attribute 'oldhello' missing":  true,
		"undefined variable 'oldhello'": true,
		"anonymous function at pkgs/foo/package.nix:1:1 called without required argument 'oldhello'":                    true,
		"evaluation aborted with the following error message: 'Function called without required argument \"oldhello\"'": true,
		"cannot coerce null to a string": true,
		"evaluation aborted with the following error message: 'bad: aborted on purpose'": false,
		"evaluation killed after 2m0s without progress (time limit)":                     false,
		eval.Unexplained: false,
	} {
		if got := eval.AliasMayExplain(msg); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}
