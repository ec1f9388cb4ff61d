package app

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/basinix/basinix/internal/fakegithub"
)

// Every story runs against a fake GitHub whose installation has exactly
// the permissions basinix declares: they are enough, and the README lists
// them and the events, so that an administrator sets up the App right.
func TestAppPermissions(t *testing.T) {
	if d := cmp.Diff(AppPermissions, fakegithub.DefaultPermissions); d != "" {
		t.Errorf("the fake's installations do not have the declared permissions (-declared +fake):\n%s", d)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var perms []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range AppPermissions {
			if !yield(k) {
				return
			}
		}
	}) {
		perms = append(perms, strings.ReplaceAll(name, "_", " ")+": "+AppPermissions[name])
	}
	for _, want := range []string{"permissions " + strings.Join(perms, ", "), "events " + strings.Join(AppEvents, ", ")} {
		if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}
