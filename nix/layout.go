package nix

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// RepoConfigFile is a repository's own word on how basinix evaluates it,
// read from each commit's root (so a PR that moves its flake says so in
// the same PR):
//
//	[flake]
//	dir = "nix"                 # the flake's directory (default: the root)
//	jobs = ["ciJobs", "checks"] # the outputs its jobs are looked for in
//
// A [flake] table makes the commit a flake even with a default.nix beside
// it; eval.flakes: never still wins.
const RepoConfigFile = ".basinix.toml"

// MaxRepoConfig is the most of RepoConfigFile read: a larger one is the
// repository's error, not memory the server spends.
const MaxRepoConfig = 64 << 10

// Layout is how a commit is evaluated.
type Layout struct {
	// Flake is true for a flake, false for a package set (default.nix).
	Flake bool
	// Dir is the flake's directory relative to the repository's root,
	// "" for the root. Nix's own flakes call it ?dir=.
	Dir string
	// Jobs is the order of outputs the repository asks for, nil for the
	// server's.
	Jobs []string
}

// FlakeFile is the path of the flake's flake.nix in the repository.
func (l Layout) FlakeFile() string { return path.Join(l.Dir, "flake.nix") }

// Entry is the file the evaluation starts from: the flake's flake.nix or
// the package set's default.nix.
func (l Layout) Entry() string {
	if l.Flake {
		return l.FlakeFile()
	}
	return "default.nix"
}

// FlakeOutput matches the names of a flake's outputs that may hold jobs.
var FlakeOutput = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

type repoConfig struct {
	Flake *struct {
		Dir  string   `toml:"dir"`
		Jobs []string `toml:"jobs"`
	} `toml:"flake"`
}

// Files are a commit's files, named by their path from its root.
type Files interface {
	// Has says whether the commit has a file (or a link) at name.
	Has(name string) bool
	// Read returns a regular file's content, an error wrapping
	// os.ErrNotExist when there is none, and one wrapping ErrFlake for a
	// link, a directory or a file larger than MaxRepoConfig there.
	Read(name string) ([]byte, error)
}

// FileError is an error at a line of a repository's file (Line 0: the
// file as a whole), for an annotation.
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Locate says how a commit is evaluated under the server's eval.flakes
// mode ("auto", "always", "never"). A bad RepoConfigFile is an ErrFlake
// error (the repository's fault) with the layout it asked for as far as
// it could be read.
func Locate(mode string, files Files) (Layout, error) {
	if mode == "never" {
		return Layout{}, nil
	}
	has := files.Has
	// Without a [flake] table: a flake.nix and no default.nix (a
	// repository with both, as nixpkgs, is a package set).
	auto := Layout{Flake: mode == "always" || has("flake.nix") && !has("default.nix")}
	b, err := files.Read(RepoConfigFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return auto, nil
	case err != nil:
		return Layout{Flake: true}, fmt.Errorf("read %s: %w", RepoConfigFile, err)
	}
	var rc repoConfig
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&rc)
	if err != nil {
		ferr := &FileError{File: RepoConfigFile, Err: fmt.Errorf("%w: %s: %v", ErrFlake, RepoConfigFile, err)}
		var perr toml.ParseError
		if errors.As(err, &perr) {
			ferr.Line = perr.Position.Line
			ferr.Err = fmt.Errorf("%w: %s:%d: %s", ErrFlake, RepoConfigFile, perr.Position.Line, perr.Message)
		}
		return Layout{Flake: true}, ferr
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return Layout{Flake: true}, fmt.Errorf("%w: %s: unknown keys %s", ErrFlake, RepoConfigFile, strings.Join(keys, ", "))
	}
	if rc.Flake == nil {
		return auto, nil
	}
	l := Layout{Flake: true, Jobs: rc.Flake.Jobs}
	if d := rc.Flake.Dir; d != "" && d != "." {
		clean := path.Clean(d)
		if path.IsAbs(d) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(d, "\\") ||
			strings.HasPrefix(clean, ".git/") || clean == ".git" {
			return l, fmt.Errorf("%w: %s: flake.dir %q is not a directory inside the repository", ErrFlake, RepoConfigFile, d)
		}
		l.Dir = clean
	}
	for _, j := range l.Jobs {
		if !FlakeOutput.MatchString(j) {
			return l, fmt.Errorf("%w: %s: flake.jobs: %q is not an output name", ErrFlake, RepoConfigFile, j)
		}
	}
	if !has(l.FlakeFile()) {
		return l, fmt.Errorf("%w: %s names the flake %s, which this commit does not have", ErrFlake, RepoConfigFile, l.FlakeFile())
	}
	return l, nil
}

// Dir is Files of a checkout.
type Dir string

// Has implements Files.
func (d Dir) Has(name string) bool {
	_, err := os.Lstat(filepath.Join(string(d), filepath.FromSlash(name)))
	return err == nil
}

// Read implements Files. Only a regular file is read: a symbolic link
// committed as .basinix.toml must not show the server's files in an
// error message.
func (d Dir) Read(name string) ([]byte, error) {
	p := filepath.Join(string(d), filepath.FromSlash(name))
	info, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, NotRepoFile(name, "not a regular file")
	case info.Size() > MaxRepoConfig:
		return nil, NotRepoFile(name, "larger than 64 KiB")
	}
	return os.ReadFile(p)
}

// NotRepoFile is Files.Read's error for a file it does not read.
func NotRepoFile(name, why string) error {
	return fmt.Errorf("%w: %s is %s", ErrFlake, name, why)
}
