// Package childenv builds the environment of basinix's child processes
// (Nix, git) from an allow-list of the host's. It stands alone because both
// adapters need the same list: a child never inherits basinix's whole
// environment, so no secret basinix was started with (the App's key, a
// webhook secret, a token) reaches Nix, git or a builder that reads
// /proc/*/environ.
package childenv

import (
	"os"
	"strings"
)

// allowed are the variables a child may inherit: where programs, the
// home directory and temporary files are, locale and time zone,
// certificates and proxies, the SSH agent, and the settings of Nix and of
// git's SSH transport that an administrator may set.
var allowed = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "TMPDIR": true, "TZ": true,
	"LANG": true, "LANGUAGE": true, "LOCALE_ARCHIVE": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "NIX_SSL_CERT_FILE": true, "CURL_CA_BUNDLE": true, "GIT_SSL_CAINFO": true,
	"http_proxy": true, "https_proxy": true, "no_proxy": true, "all_proxy": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true, "ALL_PROXY": true,
	"SSH_AUTH_SOCK": true, "GIT_SSH": true, "GIT_SSH_COMMAND": true,
	"XDG_CACHE_HOME": true, "XDG_CONFIG_HOME": true, "XDG_CONFIG_DIRS": true, "XDG_DATA_HOME": true, "XDG_RUNTIME_DIR": true,
	"NIX_CONFIG": true, "NIX_CONF_DIR": true, "NIX_USER_CONF_FILES": true, "NIX_REMOTE": true,
	"NIX_STORE_DIR": true, "NIX_STATE_DIR": true, "NIX_LOG_DIR": true, "NIX_DATA_DIR": true,
	"NIX_DAEMON_SOCKET_PATH": true, "NIX_SSHOPTS": true,
}

// Allowed reports whether a child may inherit the variable name.
func Allowed(name string) bool {
	return allowed[name] || strings.HasPrefix(name, "LC_")
}

// From returns the entries ("NAME=value") of environ a child may inherit,
// followed by extra, which wins over them.
func From(environ []string, extra ...string) []string {
	out := make([]string, 0, len(allowed)+len(extra))
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && Allowed(name) {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// Environ is From(os.Environ(), extra...).
func Environ(extra ...string) []string { return From(os.Environ(), extra...) }
