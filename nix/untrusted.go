package nix

// UntrustedEvalArgs returns the options under which basinix evaluates code
// it does not trust (a pull request's), whatever the host's nix.conf or
// nix.options say, since later options win:
//
//   - no experimental features: with flakes on, builtins.fetchTree
//     { type = "path"; } and builtins.getFlake read any file, even in
//     restricted mode, and copy it into the world-readable store;
//   - restricted evaluation, which may read only below the readable paths
//     (given as -I, the only way Nix 2.8 has), fetches no URI, and has no
//     environment (builtins.getEnv gives "");
//   - no import from derivation and no native code;
//   - an empty search path instead of the host's channels (with
//     UntrustedEvalEnv, which empties NIX_PATH).
func UntrustedEvalArgs(readable ...string) []string {
	args := []string{
		"--option", "experimental-features", "",
		"--option", "restrict-eval", "true",
		"--option", "allowed-uris", "",
		"--option", "allow-import-from-derivation", "false",
		"--option", "allow-unsafe-native-code-during-evaluation", "false",
		"--option", "nix-path", "",
	}
	for _, p := range readable {
		// "-I PREFIX=PATH" splits at the first "=": an empty prefix
		// keeps a path with "=" in it (a data directory) whole.
		args = append(args, "-I", "="+p)
	}
	return args
}

// UntrustedEvalEnv is the environment UntrustedEvalArgs goes with.
func UntrustedEvalEnv() []string { return []string{"NIX_PATH="} }
