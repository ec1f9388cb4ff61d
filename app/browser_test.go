package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/basinix/basinix/internal/testenv"
)

// chromium is Debian's browser (.ci/install-nix installs it): the tests
// that claim a page works in a browser use a real one, and do not skip.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium not found: apt-get install chromium (as .ci/install-nix does)")
	return ""
}

// artefacts is where the browser tests keep their screenshots:
// $BASINIX_ARTIFACTS, or a directory under the system's temporary one.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BASINIX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "basinix-screenshots")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// In a real browser: log in through GitHub's OAuth pages, open the PR,
// read its tabs, merge it with a comment from its page; the fake GitHub
// has the PR merged and the comment posted. Every page is photographed.
func TestBrowserLoginAndMerge(t *testing.T) {
	exe := chromium(t)
	f, head := mergeableApp(t, nil)
	f.gh.SetPermission("maint", "maintain")
	f.gh.SignIn("maint")
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	shots := artefacts(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 1600))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // the browser starts, without a timeout
		t.Fatal(err)
	}
	bctx := ctx
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(90)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	text := func(sel string, into *string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			*into, err = chromedp.Text(chromedp.CSS(sel))(ctx, tg)
			return err
		})
	}
	attr := func(sel, name string, into *string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			v, err := chromedp.AttributeValue(chromedp.CSS(sel), name)(ctx, tg)
			*into = v.Value
			return err
		})
	}
	shown := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	pr := f.web + "/pr/octo/pkgs/1"
	var user, tab, flash string
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.web+"/"), shown(`#prs`), shot("index"),
		chromedp.Navigate(pr), shown(`#pushes`), shot("pr-logged-out"),
		click(`#login`), shown(`#authorize`), shot("github-authorize"),
		click(`#authorize`), shown(`#user`), text(`#user`, &user),
		shown(`#action-merge`), shot("pr"),
		// The tabs work without a script: a label shows its panel.
		click(`label[for="tab-x86_64-linux-still-succeeding"]`),
		shown(`#panel-x86_64-linux-still-succeeding`), text(`#panel-x86_64-linux-still-succeeding`, &tab), shot("pr-tab"),
		chromedp.SendKeys(chromedp.CSS(`input[name="message"]`), "Merged from the browser"),
		click(`#action-merge`), shown(`.flash`), text(`.flash`, &flash), shot("pr-merged"),
		chromedp.Navigate(f.web+"/repo/octo/pkgs"), shown(`h1`), shot("repo"),
	)
	if err != nil {
		// What the browser shows, to see why.
		sctx, scancel := context.WithTimeout(bctx, 20*time.Second)
		defer scancel()
		loc, _ := chromedp.Run(sctx, chromedp.Location())
		chromedp.Do(sctx, shot("failure"))
		t.Fatalf("%v (at %s; see failure.png)", err, loc)
	}
	if user != "@maint" || !strings.Contains(tab, "webpkg") || !strings.Contains(flash, "merge: asked") {
		t.Errorf("logged in as %q; the tab says %q; the flash %q", user, tab, flash)
	}
	testenv.Eventually(t, time.Minute, func() bool { return f.gh.Merged("octo/pkgs", 1) == "merge" },
		func() string { return fmt.Sprintf("not merged; comments %q", f.gh.Comments("octo/pkgs", 1)) })
	if c := f.gh.Comments("octo/pkgs", 1); len(c) == 0 || visible(c[len(c)-1]) != "Merged from the browser" {
		t.Errorf("comments: %q", c)
	}
	// The build and history pages, photographed too.
	var buildURL, historyURL string
	err = chromedp.Do(ctx, chromedp.Navigate(pr), shown(`#pushes`),
		click(`label[for="tab-x86_64-linux-still-succeeding"]`),
		attr(`#panel-x86_64-linux-still-succeeding td a[href^="/build/"]`, "href", &buildURL),
		attr(`#panel-x86_64-linux-still-succeeding td a[href^="/attr/"]`, "href", &historyURL))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(f.web+buildURL), shown(`#build`), shot("build"),
		chromedp.Navigate(f.web+historyURL), shown(`#history`), shot("history"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"index", "pr-logged-out", "github-authorize", "pr", "pr-tab", "pr-merged", "repo", "build", "history"} {
		if info, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || info.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
