package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/sampleset"
)

// hostileApp is a server with short bounds for the attacks below: a
// second to send a request, 20 connections, 60 MiB of webhook bodies.
func hostileApp(t *testing.T) (*appFixture, string) {
	f := newAppConfig(t, sampleset.Options{Bulk: 1, NoPR: true}, func(c *Config) {
		c.Server.ReadTimeout = time.Second
		c.Server.MaxConnections = 20
		c.Server.WebhookMemoryMiB = 60
	})
	u, err := url.Parse(f.web)
	if err != nil {
		t.Fatal(err)
	}
	return f, u.Host
}

// send opens a connection and writes a webhook's head (and the first part
// of its body): the rest never comes.
func send(t *testing.T, addr string, length int, signed bool, first string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST /api/github/hook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", length)
	if signed { // well-formed, but not made with the secret
		head += "X-Hub-Signature-256: sha256=" + strings.Repeat("ab", 32) + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"+first); err != nil {
		t.Fatal(err)
	}
	return c
}

// status reads the status code of the answer on c, 0 when the server
// closed the connection without one; within a deadline.
func status(t *testing.T, c net.Conn, within time.Duration) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no answer and not closed within %s", within)
		}
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func healthy(t *testing.T, f *appFixture) bool {
	t.Helper()
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(f.web + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A webhook without a signature is refused before its body is read: 80
// such requests announcing 24 MiB each once took the server to 2.3 GB.
func TestUnsignedWebhookRefusedBeforeItsBody(t *testing.T) {
	f, addr := hostileApp(t)
	for range 10 {
		c := send(t, addr, 24<<20, false, "{")
		if code := status(t, c, 500*time.Millisecond); code != http.StatusUnauthorized {
			t.Fatalf("unsigned webhook: %d, want 401 before the body came", code)
		}
	}
	if !healthy(t, f) {
		t.Error("/healthz does not answer")
	}
}

// Webhook bodies held at once stay within server.webhook_memory_mib: past
// it a webhook is answered 503 at once (GitHub delivers it again).
func TestWebhookBodiesAreBounded(t *testing.T) {
	_, addr := hostileApp(t)
	// Two bodies of 25 MiB fit in 60 MiB, the third does not.
	send(t, addr, 25<<20, true, "{")
	send(t, addr, 25<<20, true, "{")
	time.Sleep(100 * time.Millisecond) // let both be admitted; neither is answered
	c := send(t, addr, 25<<20, true, "{")
	if code := status(t, c, 500*time.Millisecond); code != http.StatusServiceUnavailable {
		t.Fatalf("third 25 MiB body: %d, want 503", code)
	}
}

// A client that sends a byte at a time is cut off after read_timeout, and
// connections past max_connections are closed at once: the server keeps
// answering /healthz once the slow ones are gone, where 20,000 slow
// connections once exhausted its file descriptors.
func TestSlowClientsAreCutOff(t *testing.T) {
	f, addr := hostileApp(t)
	var slow []net.Conn
	for range 20 {
		slow = append(slow, send(t, addr, 1000, true, "{"))
	}
	time.Sleep(100 * time.Millisecond)
	// Past the cap: closed at once, before any timeout.
	start := time.Now()
	over := 0
	for range 20 {
		if status(t, send(t, addr, 1000, true, ""), 300*time.Millisecond) == 0 {
			over++
		}
	}
	if over != 20 || time.Since(start) > 3*time.Second {
		t.Errorf("%d of 20 connections past the cap closed, in %s", over, time.Since(start))
	}
	// The slow ones: cut off after the read timeout of a second.
	for i, c := range slow {
		if code := status(t, c, 3*time.Second); code != 0 && code != http.StatusBadRequest && code != http.StatusRequestTimeout {
			t.Errorf("slow connection %d: %d", i, code)
		}
	}
	testenv.Eventually(t, 3*time.Second, func() bool { return healthy(t, f) },
		func() string { return "/healthz does not answer after the slow clients were cut off" })
}

// Every answer tells the browser not to sniff: a log served as text/plain
// stays text, whatever HTML a build printed.
func TestSecurityHeaders(t *testing.T) {
	f, _ := hostileApp(t)
	for _, path := range []string{"/healthz", "/", "/log/00000000000000000000000000000000-x.drv"} {
		resp, err := http.Get(f.web + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
	}
}

// A log kept compressed (by an older basinix) is served at most 16 MiB:
// 177 bytes of bzip2 unpack to 200 MiB, and an anonymous GET once got
// all of a 903 MB one.
func TestCompressedLogIsServedBounded(t *testing.T) {
	f, _ := hostileApp(t)
	bomb, err := os.ReadFile("testdata/bomb.log.bz2")
	if err != nil {
		t.Fatal(err)
	}
	name := "0123456789abcdfghijklmnpqrsvwxyz-bomb"
	if err := os.MkdirAll(filepath.Join(f.cfg.DataDir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.cfg.DataDir, "logs", name+".log.bz2"), bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(f.web + "/log/" + name + ".drv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || n == 0 || n > 16<<20 {
		t.Errorf("served %d bytes (status %d) of a log that unpacks to 200 MiB", n, resp.StatusCode)
	}
}
