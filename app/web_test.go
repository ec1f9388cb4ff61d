package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/fakegithub"
	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/review"
	"github.com/basinix/basinix/sampleset"
)

// browser is a user's HTTP client: cookies kept, redirects followed.
type browser struct {
	t      *testing.T
	c      *http.Client
	f      *appFixture
	last   string // the last page's body
	status int
}

func (f *appFixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, Timeout: time.Minute}}
}

func (b *browser) do(req *http.Request) string {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last, b.status = string(body), resp.StatusCode
	return b.last
}

func (b *browser) get(path string) string {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.f.web+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) string {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.f.web+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the last page's forms.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfRe.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no form token on the page:\n%s", b.last)
	}
	return m[1]
}

// login signs user in on the fake GitHub and logs in through its OAuth
// pages, from page, which the login returns to.
func (b *browser) login(user, page string) {
	b.t.Helper()
	b.f.gh.SignIn(user)
	body := b.get("/login?next=" + url.QueryEscape(page))
	if !strings.Contains(body, `Signed in as <b id="login">`+user+`</b>`) {
		b.t.Fatalf("GitHub's authorization page: %d\n%s", b.status, body)
	}
	form := url.Values{}
	for _, name := range []string{"client_id", "redirect_uri", "state"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			b.t.Fatalf("no %s on the authorization page", name)
		}
		v, _ := url.QueryUnescape(strings.ReplaceAll(m[1], "&amp;", "&"))
		form.Set(name, v)
	}
	req, _ := http.NewRequest("POST", b.f.gh.URL+"login/oauth/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.do(req); !strings.Contains(b.last, `<span id="user">@`+user+`</span>`) {
		b.t.Fatalf("after the login: %d\n%s", b.status, b.last)
	}
}

// mergeableApp is a server on a repository whose PR builds, and is
// mergeable: a package's version bump.
func mergeableApp(t *testing.T, tweak func(*Config)) (*appFixture, string) {
	t.Helper()
	pkg := func(version string) string {
		return fmt.Sprintf("{ stdenv }:\n\nstdenv.mkDerivation {\n  pname = \"webpkg\";\n  version = %q;\n}\n", version)
	}
	repo := testenv.Sample(t, sampleset.Options{NoPR: true, Extra: map[string]string{"webpkg": pkg("1.0")}})
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "-b", "pr")
	os.WriteFile(filepath.Join(repo.Dir, "pkgs/by-name/webpkg/default.nix"), []byte(pkg("2.0")), 0o644)
	testenv.Git(t, repo.Dir, "commit", "--quiet", "-am", "webpkg: 1.0 -> 2.0")
	testenv.Git(t, repo.Dir, "checkout", "--quiet", "master")
	f := newAppRepo(t, repo, func(c *Config) {
		c.Server.PublicURL = "" // the test server's own: cookies over http
		if tweak != nil {
			tweak(c)
		}
	})
	head := f.sha(t, "pr")
	mergeable := true
	f.gh.SetPull(fakegithub.Pull{Repo: "octo/pkgs", Number: 1, HeadSHA: head, BaseRef: "master", CloneURL: "file://" + repo.Dir, Mergeable: &mergeable,
		Files: []string{"pkgs/by-name/webpkg/default.nix"}, Patches: map[string]string{"pkgs/by-name/webpkg/default.nix": "@@ -3,3 +3,3 @@\n   pname = \"webpkg\";\n-  version = \"1.0\";\n+  version = \"2.0\";\n }"}})
	return f, head
}

// The login, the permission rule and the CSRF tokens, on the PR page's
// actions: a logged-out user is sent to the login and back; a reader
// sees the page and its forms but is refused; a forged token is refused
// and does nothing; a maintainer's merge with a comment posts the comment,
// merges, and is recorded as coming from the web; logout ends the session.
func TestWebLoginAndActions(t *testing.T) {
	f, head := mergeableApp(t, nil)
	f.gh.SetPermission("reader", "read")
	f.gh.SetPermission("maint", "maintain")
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	if c := f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")["basinix / build (x86_64-linux)"]; c.Conclusion != "success" {
		t.Fatalf("build: %s", c.Conclusion)
	}

	anon := f.browser(t)
	if page := anon.get("/pr/octo/pkgs/1"); strings.Contains(page, `id="actions"`) || !strings.Contains(page, `id="login" href="/login?next=%2fpr%2focto%2fpkgs%2f1"`) {
		t.Errorf("a logged-out user sees actions, or no login link:\n%s", page)
	}
	// The diff is on the page, from what GitHub said once.
	if page := anon.last; !strings.Contains(page, `<span class="del">-  version = &#34;1.0&#34;;</span><span class="add">&#43;  version = &#34;2.0&#34;;</span>`) {
		t.Errorf("no diff on the PR page:\n%s", page)
	}
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", f.web+"/pr/octo/pkgs/1/action", strings.NewReader("action=merge&csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := anon.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("a logged-out POST: %d to %q, want the login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if f.gh.Merged("octo/pkgs", 1) != "" {
		t.Fatal("a logged-out POST merged")
	}

	reader := f.browser(t)
	reader.login("reader", "/pr/octo/pkgs/1")
	if !strings.Contains(reader.last, `id="action-merge"`) {
		t.Fatalf("no merge button for a logged-in user:\n%s", reader.last)
	}
	tok := reader.csrf()
	reader.post("/pr/octo/pkgs/1/action", url.Values{"action": {"merge"}, "message": {"from a reader"}, "csrf": {tok}})
	if reader.status != http.StatusForbidden || !strings.Contains(reader.last, "you have read") {
		t.Errorf("a reader's merge: %d\n%s", reader.status, reader.last)
	}

	maint := f.browser(t)
	maint.login("maint", "/pr/octo/pkgs/1")
	tok = maint.csrf()
	maint.post("/pr/octo/pkgs/1/action", url.Values{"action": {"merge"}, "message": {"Thanks!"}, "csrf": {"forged" + tok}})
	if maint.status != http.StatusForbidden || !strings.Contains(maint.last, "does not come from this site") {
		t.Errorf("a forged token: %d\n%s", maint.status, maint.last)
	}
	if reader.csrf() == tok {
		t.Error("two sessions share a form token")
	}
	maint.post("/pr/octo/pkgs/1/action", url.Values{"action": {"build"}, "attrs": {"hello; rm -rf /"}, "csrf": {tok}})
	if maint.status != http.StatusBadRequest || !strings.Contains(maint.last, "not an attribute path") {
		t.Errorf("a shell in an attribute: %d\n%s", maint.status, maint.last)
	}
	maint.post("/pr/octo/pkgs/1/action", url.Values{"action": {"merge"}, "message": {"Thanks, <b>merging</b>!"}, "csrf": {tok}})
	if maint.status != http.StatusOK || !strings.Contains(maint.last, "merge: asked") {
		t.Fatalf("merge: %d\n%s", maint.status, maint.last)
	}
	testenv.Eventually(t, time.Minute, func() bool { return f.gh.Merged("octo/pkgs", 1) == "merge" },
		func() string { return fmt.Sprintf("not merged; comments %q", f.gh.Comments("octo/pkgs", 1)) })
	comments := f.gh.Comments("octo/pkgs", 1)
	if len(comments) == 0 || visible(comments[len(comments)-1]) != "Thanks, <b>merging</b>!" {
		t.Errorf("the merge comment: %q", comments)
	}
	// The command's row is written when its job ends, just after the merge.
	var page string
	testenv.Eventually(t, 30*time.Second, func() bool {
		page = maint.get("/pr/octo/pkgs/1")
		return strings.Contains(page, "<td>@maint</td><td>web</td><td><code>merge Thanks, &lt;b&gt;merging&lt;/b&gt;!</code></td>")
	}, func() string { return "the commands history lacks the web merge:\n" + page })
	maint.post("/logout", url.Values{"csrf": {tok}})
	if page := maint.get("/pr/octo/pkgs/1"); strings.Contains(page, `id="user"`) {
		t.Error("still logged in after logging out")
	}
}

// Every page is its JSON too, with .json or Accept: application/json.
func TestWebJSON(t *testing.T) {
	f := newApp(t)
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	getJSON := func(path string, accept bool) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", f.web+path, nil)
		if accept {
			req.Header.Set("Accept", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %v (%s)", path, err, resp.Header.Get("Content-Type"))
		}
		return v
	}
	idx := getJSON("/index.json", false)
	prs, _ := idx["prs"].([]any)
	if len(prs) != 1 || prs[0].(map[string]any)["title"] != "Update the README with new information." || prs[0].(map[string]any)["worst"] != "failure" {
		t.Errorf("index: %v", idx)
	}
	pr := getJSON("/pr/octo/pkgs/1", true)
	systems, _ := pr["systems"].([]any)
	if len(systems) != 1 {
		t.Fatalf("pr: %v", pr)
	}
	tabs := systems[0].(map[string]any)["tabs"].([]any)
	first := tabs[0].(map[string]any)
	if first["id"] != "newly-failing" || first["count"] != 2.0 || systems[0].(map[string]any)["open"] != "newly-failing" {
		t.Errorf("first tab: %v", first)
	}
	attr := first["attrs"].([]any)[0].(map[string]any)
	build, _ := attr["build"].(string)
	if !strings.HasPrefix(build, "/build/") {
		t.Fatalf("attribute without its build: %v", attr)
	}
	b := getJSON(build+".json", false)
	if b["result"] == "" || len(b["waiters"].([]any)) == 0 {
		t.Errorf("build page: %v", b)
	}
	repo := getJSON("/repo/octo/pkgs.json", false)
	if len(repo["open"].([]any)) != 1 {
		t.Errorf("repository page: %v", repo)
	}
	// The same data as the page: the HTML shows the build's result.
	if code, html := f.get(t, build); code != http.StatusOK || !strings.Contains(html, fmt.Sprintf(`title="%s"`, b["result"])) {
		t.Errorf("build page: %d\n%s", code, html)
	}
}

// A private repository's pages are its readers': a logged-out user is
// sent to the login, a user without read access gets a 404, a reader
// sees them. With web.private, every page needs a login.
func TestWebPrivate(t *testing.T) {
	f := newAppConfig(t, sampleset.Options{Bulk: 1}, func(c *Config) { c.Server.PublicURL = "" })
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", fakegithub.PullRequestEvent(t, "opened", fakegithub.PR{Installation: installationID, Repo: "octo/pkgs",
		CloneURL: "file://" + f.repo.Dir, Number: 1, Head: head, Base: "master", Private: true}))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	f.gh.SetPermission("stranger", "none")

	anon := f.browser(t)
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{"/pr/octo/pkgs/1", "/pr/octo/pkgs/1.json", "/repo/octo/pkgs"} {
		if anon.get(p); anon.status != http.StatusFound {
			t.Errorf("%s logged out: %d, want a redirect to the login", p, anon.status)
		}
	}
	if page := anon.get("/"); strings.Contains(page, "octo/pkgs") {
		t.Errorf("the index shows a private repository to a logged-out user:\n%s", page)
	}
	stranger := f.browser(t)
	stranger.login("stranger", "/")
	if stranger.get("/pr/octo/pkgs/1"); stranger.status != http.StatusNotFound {
		t.Errorf("a user without access: %d", stranger.status)
	}
	reader := f.browser(t)
	reader.login("reader", "/pr/octo/pkgs/1")
	if !strings.Contains(reader.last, "octo/pkgs #1") {
		t.Errorf("a reader of the private repository:\n%s", reader.last)
	}

	f.stop()
	f.cfg.Web.Private = true
	f.start(t, f.cfg)
	anon = f.browser(t)
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if anon.get("/"); anon.status != http.StatusFound {
		t.Errorf("web.private: the index logged out: %d", anon.status)
	}
	// A diffoscope report the CLI made (no repository recorded) too.
	name := strings.Repeat("ab", 16) + ".html"
	os.MkdirAll(review.DiffoscopeDir(f.cfg.DataDir), 0o755)
	os.WriteFile(filepath.Join(review.DiffoscopeDir(f.cfg.DataDir), name), []byte("<html>report</html>"), 0o644)
	if anon.get("/diffoscope/" + name); anon.status != http.StatusFound {
		t.Errorf("web.private: a diffoscope report logged out: %d", anon.status)
	}
}

// What a PR controls (its title, its attributes' names, its error
// messages) is shown escaped on every page.
func TestWebEscapesWhatAPRWrites(t *testing.T) {
	testenv.RequireNix(t)
	dir := filepath.Join(t.TempDir(), "repo")
	set := func(extra string) map[string]string {
		return map[string]string{"default.nix": `{ system ? builtins.currentSystem, config ? { } }:
{
  good = derivation { name = "good"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; };
` + extra + `}
`}
	}
	testenv.Commit(t, dir, set(""), "base")
	testenv.Git(t, dir, "checkout", "--quiet", "-b", "pr")
	testenv.Commit(t, dir, set(`  "<img src=x onerror=alert(1)>" = derivation { name = "img"; inherit system; builder = "/bin/sh"; args = [ "-c" "exit 1" ]; };
  thrower = throw "<script>alert(2)</script>";
`), "add hostile names")
	testenv.Git(t, dir, "checkout", "--quiet", "main")
	f := newAppRepo(t, &sampleset.Repo{Dir: dir, Base: "main", Head: "pr"}, nil)
	head := f.sha(t, "pr")
	f.deliver(t, "pull_request", fakegithub.PullRequestEvent(t, "opened", fakegithub.PR{Installation: installationID, Repo: "octo/pkgs",
		CloneURL: "file://" + dir, Number: 1, Head: head, Base: "main", Title: `<script>alert(3)</script> title`}))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")
	for _, p := range []string{"/", "/pr/octo/pkgs/1", "/repo/octo/pkgs", "/?q=img"} {
		code, page := f.get(t, p)
		if code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", p, code, page)
		}
		for _, raw := range []string{"<script>alert", "<img src=x"} {
			if strings.Contains(page, raw) {
				t.Errorf("%s shows %q unescaped:\n%s", p, raw, page)
			}
		}
	}
	_, page := f.get(t, "/pr/octo/pkgs/1")
	for _, escaped := range []string{"&lt;script&gt;alert(3)&lt;/script&gt; title", "&#34;&lt;img src=x onerror=alert(1)&gt;&#34;</code>", "&lt;script&gt;alert(2)&lt;/script&gt;"} {
		if !strings.Contains(page, escaped) {
			t.Errorf("the PR page lacks %q:\n%s", escaped, page)
		}
	}
}

// The search finds PRs and attributes; a maintainer's "post the report"
// from the PR page posts the review, and "build again" on a failed
// build's page builds it again; a reader gets no such button's effect.
func TestWebSearchReviewAndRestart(t *testing.T) {
	f := newAppConfig(t, sampleset.Options{Bulk: 1, BuildLog: filepath.Join(t.TempDir(), "builds")}, func(c *Config) { c.Server.PublicURL = "" })
	f.gh.SetPermission("maint", "maintain")
	head := f.sha(t, f.repo.Head)
	f.deliver(t, "pull_request", f.prEvent(t, "opened", head))
	f.waitReviewed(t, head, "basinix / eval", "basinix / build (x86_64-linux)")

	_, page := f.get(t, "/?q=willfail")
	if !strings.Contains(page, "<td><code>willfail</code></td><td>x86_64-linux</td>") || !strings.Contains(page, `href="/pr/octo/pkgs/1"`) {
		t.Errorf("search for an attribute:\n%s", page)
	}
	if _, page = f.get(t, "/?q=README"); !strings.Contains(page, "octo/pkgs #1</a> Update the README") {
		t.Errorf("search for a PR title:\n%s", page)
	}

	maint := f.browser(t)
	maint.login("maint", "/pr/octo/pkgs/1")
	maint.post("/pr/octo/pkgs/1/action", url.Values{"action": {"review"}, "csrf": {maint.csrf()}})
	testenv.Eventually(t, time.Minute, func() bool { return len(f.gh.Reviews("octo/pkgs", 1)) == 1 },
		func() string { return fmt.Sprintf("reviews: %v", f.gh.Reviews("octo/pkgs", 1)) })

	// willfail's build page: failed, who waits, and "build again".
	m := regexp.MustCompile(`href="(/build/[a-z0-9]{32}-willfail-2\.0)"`).FindStringSubmatch(maint.get("/pr/octo/pkgs/1"))
	if m == nil {
		t.Fatalf("no build link for willfail:\n%s", maint.last)
	}
	page = maint.get(m[1])
	if !strings.Contains(page, `title="failure"`) || !strings.Contains(page, `<a href="/pr/octo/pkgs/1">octo/pkgs #1</a>`) || !strings.Contains(page, "willfail: test suite failed") {
		t.Errorf("build page:\n%s", page)
	}
	before, _ := os.ReadFile(f.repo.Options.BuildLog)
	maint.post(m[1]+"/restart", url.Values{"csrf": {maint.csrf()}})
	if !strings.Contains(maint.last, "asked: it builds again") {
		t.Fatalf("restart: %d\n%s", maint.status, maint.last)
	}
	testenv.Eventually(t, time.Minute, func() bool {
		now, _ := os.ReadFile(f.repo.Options.BuildLog)
		return strings.Count(string(now), "willfail-2.0") > strings.Count(string(before), "willfail-2.0")
	}, func() string { return "willfail was not built again" })
}
