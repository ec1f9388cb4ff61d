package nix

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/basinix/basinix/internal/childenv"
)

// Diffoscope compares two store paths with diffoscope (program), writing
// its HTML report to html, bounded to maxBytes by diffoscope and in time
// by timeout (its process group is killed then). It reports whether they
// differ; no report is written when they do not. It lives here, beside
// Nix, because it is the other program basinix runs on the store's
// outputs, with the same environment rules.
func Diffoscope(ctx context.Context, program, base, head, html string, maxBytes int64, timeout time.Duration) (bool, error) {
	for _, p := range []string{base, head} {
		if err := CheckStorePath(p); err != nil {
			return false, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(program, "--html", html, "--max-report-size", fmt.Sprint(maxBytes),
		"--exclude-directory-metadata", "yes", "--no-progress", "--", base, head)
	cmd.Env = childenv.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &cappedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("diffoscope: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	stop()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return false, fmt.Errorf("diffoscope of %s and %s: stopped after %s", base, head, timeout)
	case err == nil:
		return false, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return true, nil
	}
	return false, fmt.Errorf("diffoscope: %v: %s", err, cmp.Or(strings.TrimSpace(lastLines(out.Bytes(), 1)), "no output"))
}
