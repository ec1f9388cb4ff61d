package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/mattn/go-isatty"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/checkout"
	"github.com/basinix/basinix/internal/childenv"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/review"
)

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// prFlags are basinix pr's flags, nixpkgs-review's where it has them.
type prFlags struct {
	repo, remote, api, systems, run, json *string
	packages, skip, regexes, skipRegexes  listFlag
	post, print, noShell, noBuild         *bool
}

// knownSystems are the systems --systems takes by name: nixpkgs'
// platforms that people build for (lib.systems.flakeExposed).
var knownSystems = []string{
	"x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin",
	"i686-linux", "armv6l-linux", "armv7l-linux", "riscv64-linux", "powerpc64le-linux", "x86_64-freebsd",
}

// prCmd is `basinix pr N [N…]`: nixpkgs-review's habits on basinix's
// review. Each PR's head and base come from the GitHub API (anonymous, or
// with GITHUB_TOKEN), its code from the repository GitHub names (seeded
// from the local checkout --repo), and after the review the built
// packages are put on the PATH of a shell (--run CMD, or none with
// --no-shell).
func prCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("basinix pr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := prFlags{
		repo:    fs.String("repo", ".", "the local checkout of the repository (its objects seed basinix's mirror; its GitHub remote is the default --remote)"),
		remote:  fs.String("remote", "", "the GitHub repository: OWNER/REPO or https://github.com/OWNER/REPO (default: --repo's GitHub remote)"),
		api:     fs.String("api-url", "https://api.github.com/", "GitHub's REST API"),
		systems: fs.String("systems", "current", "current, all, linux, darwin or a comma-separated list of systems"),
		run:     fs.String("run", "", "run this command (with bash) in the shell with the built packages, instead of an interactive shell"),
		json:    fs.String("json", "", "write the JSON report to this file (one PR only)"),
		post:    fs.Bool("post-result", false, "post the report as a comment on the PR (needs GITHUB_TOKEN)"),
		print:   fs.Bool("print-result", false, "print the Markdown report (the PR comment) instead of the summary"),
		noShell: fs.Bool("no-shell", false, "do not start a shell with the built packages"),
		noBuild: fs.Bool("no-build", false, "evaluate and diff only"),
	}
	for _, name := range []string{"p", "package"} {
		fs.Var(&f.packages, name, "review only this attribute (repeatable)")
	}
	for _, name := range []string{"P", "skip-package"} {
		fs.Var(&f.skip, name, "leave this attribute out (repeatable)")
	}
	fs.Var(&f.regexes, "package-regex", "review only the attributes this regular expression matches (repeatable)")
	fs.Var(&f.skipRegexes, "skip-package-regex", "leave out the attributes this regular expression matches (repeatable)")
	local := addLocalFlags(fs)
	logFlags := addLogFlags(fs)
	// Flags may follow the numbers, as in nixpkgs-review pr 123 -p hello.
	var positional []string
	for rest := args; ; rest = fs.Args()[1:] {
		if err := fs.Parse(rest); err != nil {
			return &exitError{code: 2}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
	}
	usage := func(format string, a ...any) error { return &exitError{code: 2, err: fmt.Errorf("pr: "+format, a...)} }
	if len(positional) == 0 {
		return usage("which pull requests? basinix pr NUMBER [NUMBER…]")
	}
	var numbers []int
	for _, a := range positional {
		n, err := strconv.Atoi(strings.TrimPrefix(a, "#"))
		if err != nil || n <= 0 {
			return usage("%q is not a pull request number", a)
		}
		numbers = append(numbers, n)
	}
	if *f.json != "" && len(numbers) > 1 {
		return usage("--json takes one pull request")
	}
	if *f.noBuild && (*f.print || *f.post || *f.run != "") {
		return usage("--print-result, --post-result and --run need builds: drop --no-build")
	}
	sel, selection, err := f.selection()
	if err != nil {
		return usage("%v", err)
	}
	owner, name, err := f.gitHubRepo(ctx)
	if err != nil {
		return usage("%v", err)
	}
	token, _ := env("GITHUB_TOKEN")
	if *f.post && token == "" {
		return usage("--post-result needs a GitHub token in GITHUB_TOKEN")
	}
	gh, err := gitHubClient(*f.api, token)
	if err != nil {
		return usage("%v", err)
	}
	systems, err := parsePRSystems(*f.systems)
	if err != nil {
		return usage("%v", err)
	}
	cfg, err := local.load()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logs := &logWriter{w: stderr}
	log, err := logFlags.logger(logs, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rv, stop, err := startReviewer(ctx, cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer stop()
	if slices.Contains(systems, "current") {
		systems = slices.DeleteFunc(systems, func(s string) bool { return s == "current" })
		if h := rv.Host(); h != nil && len(h.Systems) > 0 && !slices.Contains(systems, h.Systems[0]) {
			systems = append(systems, h.Systems[0])
		}
	}
	if len(systems) == 0 {
		return usage("no systems to review")
	}

	command := "basinix pr " + shellJoin(args)
	broke := false
	for _, n := range numbers {
		pr, _, err := gh.PullRequests.Get(ctx, owner, name, n)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("pr: pull request %s/%s#%d: %w", owner, name, n, githubError(err))}
		}
		cloneURL, base, head := pr.GetBase().GetRepo().GetCloneURL(), pr.GetBase().GetRef(), pr.GetHead().GetSHA()
		if cloneURL == "" || base == "" || head == "" {
			return &exitError{code: 2, err: fmt.Errorf("pr: pull request %s/%s#%d: GitHub gave no clone URL, base or head", owner, name, n)}
		}
		if pr.GetState() != "open" {
			log.Warn().Int("pr", n).Str("state", pr.GetState()).Msg("the pull request is not open: reviewing its last head anyway")
		}
		f.seed(ctx, rv.Workspace(), cloneURL)
		// The PR's head and its base branch only, as nixpkgs-review fetches:
		// not nixpkgs' hundreds of thousands of pull refs.
		refs := []string{fmt.Sprintf("+refs/heads/%s:refs/heads/%s", base, base), fmt.Sprintf("+refs/pull/%d/head:refs/pull/%d/head", n, n)}
		req := review.Request{Repo: cloneURL, Base: base, Head: head, Systems: systems, Build: !*f.noBuild, Select: sel, Selection: selection, Refs: refs}
		rep, err := reviewShowingProgress(ctx, rv, req, stderr, logs)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("pr: #%d: %w", n, err)}
		}
		rep.Head.Ref = fmt.Sprintf("%s/%s#%d", owner, name, n)
		rep.Command, rep.Version = command, version
		for _, p := range f.packages {
			if !reported(rep, p) {
				log.Warn().Int("pr", n).Str("attr", p).Msg("-p names an attribute the pull request does not change")
			}
		}
		if err := f.output(ctx, rep, stdout, gh, owner, name, n); err != nil {
			return &exitError{code: 2, err: err}
		}
		if rep.EvalBroken() || rep.Breaks() {
			broke = true
		}
		if !*f.noBuild && !*f.noShell {
			if err := f.shell(ctx, cfg.Nix.BinDir, rep, n, stdout, stderr); err != nil {
				return err
			}
		}
	}
	if broke {
		return &exitError{code: 1}
	}
	return nil
}

// selection turns -p, -P and the regular expressions into the review's
// Select and its description.
func (f *prFlags) selection() (func(string) bool, string, error) {
	compile := func(list []string) ([]*regexp.Regexp, error) {
		var out []*regexp.Regexp
		for _, s := range list {
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("regular expression %q: %v", s, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	only, err := compile(f.regexes)
	if err != nil {
		return nil, "", err
	}
	skip, err := compile(f.skipRegexes)
	if err != nil {
		return nil, "", err
	}
	if len(f.packages)+len(f.skip)+len(only)+len(skip) == 0 {
		return nil, "", nil
	}
	matches := func(res []*regexp.Regexp, attr string) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(attr) })
	}
	sel := func(attr string) bool {
		if (len(f.packages) > 0 || len(only) > 0) && !slices.Contains(f.packages, attr) && !matches(only, attr) {
			return false
		}
		return !slices.Contains(f.skip, attr) && !matches(skip, attr)
	}
	var desc []string
	for _, l := range []struct {
		flag string
		list []string
	}{{"-p", f.packages}, {"-P", f.skip}, {"--package-regex", f.regexes}, {"--skip-package-regex", f.skipRegexes}} {
		for _, v := range l.list {
			desc = append(desc, l.flag+" "+shellQuote(v))
		}
	}
	return sel, strings.Join(desc, " "), nil
}

// gitHubRepo is the repository the PR numbers are of: --remote, or the
// GitHub remote of the checkout --repo (origin first).
func (f *prFlags) gitHubRepo(ctx context.Context) (owner, name string, err error) {
	if *f.remote != "" {
		if owner, name, ok := parseGitHubRepo(*f.remote); ok {
			return owner, name, nil
		}
		return "", "", fmt.Errorf("--remote %q: want OWNER/REPO or https://github.com/OWNER/REPO", *f.remote)
	}
	out, err := exec.CommandContext(ctx, "git", "-C", *f.repo, "remote", "-v").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s is not a git checkout (pass --repo DIR or --remote OWNER/REPO)", *f.repo)
	}
	var urls []string
	for _, line := range strings.Split(string(out), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 {
			if fields[0] == "origin" {
				urls = append([]string{fields[1]}, urls...)
			} else {
				urls = append(urls, fields[1])
			}
		}
	}
	for _, u := range urls {
		if owner, name, ok := parseGitHubRepo(u); ok && strings.Contains(u, "github.com") {
			return owner, name, nil
		}
	}
	return "", "", fmt.Errorf("%s has no GitHub remote (pass --remote OWNER/REPO)", *f.repo)
}

var ghRepoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// parseGitHubRepo reads OWNER/REPO, https://github.com/OWNER/REPO(.git)
// or git@github.com:OWNER/REPO(.git).
func parseGitHubRepo(s string) (owner, name string, ok bool) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	for _, prefix := range []string{"https://github.com/", "http://github.com/", "ssh://git@github.com/", "git@github.com:"} {
		if rest, cut := strings.CutPrefix(s, prefix); cut {
			s = rest
			break
		}
	}
	owner, name, ok = strings.Cut(s, "/")
	if !ok || !ghRepoName.MatchString(owner) || !ghRepoName.MatchString(name) {
		return "", "", false
	}
	return owner, name, true
}

func gitHubClient(api, token string) (*github.Client, error) {
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--api-url %q is not an http(s) URL", api)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := github.NewClient(&http.Client{Timeout: time.Minute})
	if token != "" {
		c = c.WithAuthToken(token)
	}
	c.BaseURL = u
	return c, nil
}

// githubError is GitHub's answer without the request's URL (which names
// the API, not what went wrong).
func githubError(err error) error {
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil {
		if ge.Response.StatusCode == http.StatusNotFound {
			return errors.New("not found (or not visible without GITHUB_TOKEN)")
		}
		return fmt.Errorf("GitHub answered %d: %s", ge.Response.StatusCode, ge.Message)
	}
	return err
}

// parsePRSystems reads --systems: current (this machine's), all, linux,
// darwin, or a list of known systems; "current" stays for the caller.
func parsePRSystems(s string) ([]string, error) {
	var out []string
	add := func(list ...string) {
		for _, x := range list {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	for _, part := range strings.Split(s, ",") {
		switch part = strings.TrimSpace(part); part {
		case "current":
			add("current")
		case "all":
			add(knownSystems[:4]...)
		case "linux":
			add("x86_64-linux", "aarch64-linux")
		case "darwin":
			add("x86_64-darwin", "aarch64-darwin")
		case "":
		default:
			if !slices.Contains(knownSystems, part) {
				return nil, fmt.Errorf("--systems: unknown system %q (current, all, linux, darwin or one of %s)", part, strings.Join(knownSystems, ", "))
			}
			add(part)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--systems %q names no system", s)
	}
	return out, nil
}

// seed lets basinix's mirror of cloneURL start from the checkout --repo's
// objects, when it is a git checkout: a nixpkgs mirror then fetches only
// what the checkout lacks.
func (f *prFlags) seed(ctx context.Context, ws *checkout.Workspace, cloneURL string) {
	dir, err := filepath.Abs(*f.repo)
	if err != nil {
		return
	}
	if err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--git-dir").Run(); err != nil {
		return
	}
	norm, err := checkout.NormalizeURL(cloneURL)
	if err != nil {
		return
	}
	if ws.Seeds == nil {
		ws.Seeds = map[string]string{}
	}
	ws.Seeds[norm] = dir
}

// output writes the report: the JSON file, the summary or (--print-result)
// the Markdown on stdout, and with --post-result the Markdown as a PR
// comment.
func (f *prFlags) output(ctx context.Context, rep *report.Report, stdout io.Writer, gh *github.Client, owner, name string, n int) error {
	if *f.json != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*f.json, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	var md strings.Builder
	if !*f.noBuild {
		if err := report.WriteMarkdown(&md, rep, report.MarkdownOptions{}); err != nil {
			return err
		}
	}
	if *f.print {
		if _, err := io.WriteString(stdout, md.String()); err != nil {
			return err
		}
	} else if err := report.WriteSummary(stdout, rep); err != nil {
		return err
	}
	if *f.post {
		body := commentBody(md.String())
		if _, _, err := gh.Issues.CreateComment(ctx, owner, name, n, &github.IssueComment{Body: &body}); err != nil {
			return fmt.Errorf("pr: post the report on #%d: %w", n, githubError(err))
		}
		fmt.Fprintf(stdout, "basinix: the report is posted on %s/%s#%d\n", owner, name, n)
	}
	return nil
}

// maxComment is what GitHub takes in a comment's body.
const maxComment = 65536

// commentBody cuts a report GitHub would refuse, saying so.
func commentBody(md string) string {
	const note = "\n\n… the report is cut here: GitHub takes 65,536 characters. `basinix pr --json FILE` writes it whole.\n"
	r := []rune(md)
	if len(r) <= maxComment {
		return md
	}
	return string(r[:maxComment-len([]rune(note))]) + note
}

// reported says whether attr has an entry on some system of rep.
func reported(rep *report.Report, attr string) bool {
	for _, s := range rep.Systems {
		if s.Attrs[attr] != nil {
			return true
		}
	}
	return false
}

// shell runs, with the outputs of the PR's packages that built on the
// PATH (their bin directories) and in BASINIX_OUTPUTS, the --run command
// or an interactive shell when stdin is a terminal. A command that fails
// is basinix's exit code.
func (f *prFlags) shell(ctx context.Context, binDir string, rep *report.Report, n int, stdout, stderr io.Writer) error {
	var attrs, drvs []string
	for _, s := range rep.Systems {
		for attr, e := range s.Attrs {
			if e.Head == build.Success && e.DrvPath != "" && !slices.Contains(drvs, e.DrvPath) {
				attrs, drvs = append(attrs, attr), append(drvs, e.DrvPath)
			}
		}
	}
	slices.Sort(attrs)
	var outs []string
	if len(drvs) > 0 {
		q := exec.CommandContext(ctx, filepath.Join(binDir, "nix-store"), append([]string{"--query", "--outputs", "--"}, drvs...)...)
		q.Env = childenv.Environ()
		out, err := q.Output()
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("pr: the built packages' outputs: %w", err)}
		}
		outs = strings.Fields(string(out))
	}
	path := os.Getenv("PATH")
	for i := len(outs) - 1; i >= 0; i-- {
		if info, err := os.Stat(filepath.Join(outs[i], "bin")); err == nil && info.IsDir() {
			path = filepath.Join(outs[i], "bin") + string(os.PathListSeparator) + path
		}
	}
	var cmd *exec.Cmd
	switch {
	case *f.run != "":
		// The user's own command, as nix-shell --run takes it.
		cmd = exec.CommandContext(ctx, "bash", "-c", *f.run)
	case isatty.IsTerminal(os.Stdin.Fd()):
		sh := cmp.Or(os.Getenv("SHELL"), "bash")
		fmt.Fprintf(stderr, "basinix: a shell with the packages PR #%d built (%s); exit to leave\n", n, strings.Join(attrs, " "))
		cmd = exec.CommandContext(ctx, sh)
	default:
		fmt.Fprintln(stderr, "basinix: stdin is not a terminal: no shell (--run CMD runs a command with the built packages, --no-shell says none)")
		return nil
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "PATH="+path, "BASINIX_PR="+strconv.Itoa(n),
		"BASINIX_PACKAGES="+strings.Join(attrs, " "), "BASINIX_OUTPUTS="+strings.Join(outs, " "))
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &exitError{code: ee.ExitCode(), err: fmt.Errorf("pr: the shell's command exited %d", ee.ExitCode())}
		}
		return &exitError{code: 2, err: fmt.Errorf("pr: the shell: %w", err)}
	}
	return nil
}

// shellJoin quotes args as a shell would need them, for the report's
// Command line.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
