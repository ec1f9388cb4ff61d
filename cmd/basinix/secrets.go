package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/basinix/basinix/app"
)

// secretsFDVar names, in the environment of a basinix that re-executed
// itself, the file descriptor its secrets come on.
const secretsFDVar = "BASINIX_SECRETS_FD"

// takeSecretEnv takes the App's secrets (app.SecretEnv) out of basinix's
// environment and returns them. os.Unsetenv is not enough: what
// /proc/PID/environ shows, to any process of the same user (a builder
// without a sandbox), is the environment the process was started with. So
// on Linux, when one is there, basinix starts itself again without them,
// handing them over through a pipe; the new process reads them and returns
// them. It returns an error only when that fails, and never returns when
// it re-executes.
func takeSecretEnv() (map[string]string, error) {
	if fd := os.Getenv(secretsFDVar); fd != "" {
		os.Unsetenv(secretsFDVar)
		n, err := strconv.Atoi(fd)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: not a file descriptor", secretsFDVar, fd)
		}
		f := os.NewFile(uintptr(n), "secrets")
		defer f.Close()
		var secrets map[string]string
		if err := json.NewDecoder(f).Decode(&secrets); err != nil {
			return nil, fmt.Errorf("reading the secrets handed over: %w", err)
		}
		return secrets, nil
	}
	secrets := map[string]string{}
	for _, name := range app.SecretEnv {
		if v, ok := os.LookupEnv(name); ok {
			secrets[name] = v
			os.Unsetenv(name)
		}
	}
	if len(secrets) == 0 || runtime.GOOS != "linux" {
		return secrets, nil
	}
	data, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	if len(data) > 60<<10 { // what a pipe takes without a reader
		return nil, fmt.Errorf("the secrets in the environment are larger than 60 KiB: put them in files (server.private_key_file)")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("handing the secrets over: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("handing the secrets over: %w", err)
	}
	w.Close()
	// The read end survives the exec (no close-on-exec); nothing else does.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, r.Fd(), syscall.F_SETFD, 0); errno != 0 {
		return nil, fmt.Errorf("handing the secrets over: %w", errno)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(app.SecretEnv, name) || name == secretsFDVar
	})
	env = append(env, secretsFDVar+"="+strconv.Itoa(int(r.Fd())))
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	return nil, fmt.Errorf("starting basinix again without its secrets in the environment: %w", err)
}

// lookupIn returns a lookup that finds names in secrets first, then in the
// environment.
func lookupIn(secrets map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := secrets[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
}
