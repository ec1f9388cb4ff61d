// Package layering checks the import rules DESIGN.md gives the top-level
// folders (Tailscale's deptest idea): a change that makes a domain package
// speak SQL or HTTP, or a low layer reach up, fails here, not in review.
package layering

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/basinix/basinix"

// rule says what a package may import of basinix (direct imports) and what
// it must never depend on, even through others.
type rule struct {
	may   []string // basinix packages, relative to the module
	never []string // import paths, or prefixes ending in "/"
}

// wire are the packages that speak GitHub, HTTP or SQL.
var wire = []string{"net/http", "database/sql", "modernc.org/sqlite", "github.com/google/go-github/", "github.com/palantir/go-githubapp/",
	"github.com/bradleyfalzon/ghinstallation/"}

var rules = map[string]rule{
	"store":     {never: []string{"net/http", "github.com/google/go-github/"}},
	"nix":       {may: []string{"internal/childenv"}, never: wire},
	"eval":      {may: []string{"nix", "internal/childenv"}, never: wire},
	"build":     {may: []string{"nix"}, never: wire},
	"checkout":  {may: []string{"internal/childenv"}, never: wire},
	"report":    {may: []string{"eval", "build"}, never: wire},
	"handlers":  {may: []string{"store", "report", "eval", "build"}, never: []string{"database/sql", "modernc.org/sqlite"}}, // go-github brings net/http
	"review":    {may: []string{"nix", "eval", "build", "checkout", "report", "store"}, never: []string{"net/http", "github.com/google/go-github/", "github.com/palantir/go-githubapp/", "github.com/bradleyfalzon/ghinstallation/"}},
	"sampleset": {never: wire},
	// Under app: GitHub publishing speaks GitHub only (no database, no
	// review); the command worker and the web pages reach the database
	// through interfaces they declare over store's types, and neither
	// knows the other or the server.
	"app/publish":       {may: []string{"report", "internal/redact"}, never: []string{"database/sql", "modernc.org/sqlite", module + "/store", module + "/review"}},
	"app/commands":      {may: []string{"app/publish", "build", "handlers", "report", "review", "store"}},
	"app/web":           {may: []string{"app/publish", "build", "handlers", "internal/redact", "nix", "report", "review", "store"}},
	"internal/childenv": {},
	"internal/redact":   {never: wire},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := map[string]bool{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		seen[rel] = true
		for _, imp := range p.Imports {
			in, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			switch {
			case (in == "app" || strings.HasPrefix(in, "cmd/")) && rel != "cmd/basinix":
				t.Errorf("%s imports %s: only cmd/basinix may (app is the composition root)", rel, in)
			case in == "internal/fakegithub" || in == "internal/testenv":
				t.Errorf("%s imports %s outside its tests", rel, in)
			}
			if r, ok := rules[rel]; ok && !slices.Contains(r.may, in) {
				t.Errorf("%s imports %s: DESIGN.md lets it import only %v", rel, in, r.may)
			}
		}
		if r, ok := rules[rel]; ok {
			for _, dep := range p.Deps {
				for _, bad := range r.never {
					if dep == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad) {
						t.Errorf("%s depends on %s, which it must never", rel, dep)
					}
				}
			}
		}
	}
	for rel := range rules {
		if !seen[rel] {
			t.Errorf("no package %s: the rules name a package that moved", rel)
		}
	}
}
