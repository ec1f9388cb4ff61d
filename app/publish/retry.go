package publish

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
)

// Retrying is a client middleware that retries GitHub API requests that
// failed on GitHub's side: 5xx answers, and secondary rate limits (403 or
// 429 with Retry-After, or a rate-limit message), waiting as GitHub says.
// It gives up after maxWait in total and returns the last answer. Only
// requests that may be sent twice are retried (see idempotent): a 502 can
// come after GitHub acted, and a comment or a merge must not be made twice;
// their callers make them idempotent themselves (writes.go).
func Retrying(maxWait time.Duration, onError func()) githubapp.ClientMiddleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			var body []byte
			if req.Body != nil {
				b, err := io.ReadAll(req.Body)
				req.Body.Close()
				if err != nil {
					return nil, err
				}
				body = b
			}
			waited := time.Duration(0)
			backoff := 500 * time.Millisecond
			for {
				if body != nil {
					req.Body = io.NopCloser(bytes.NewReader(body))
				}
				resp, err := next.RoundTrip(req)
				if err != nil || resp.StatusCode >= 400 {
					onError()
				}
				wait, retry := retryAfter(resp, err, backoff)
				// A rate limit refused the request: it was not carried
				// out, and is sent again whatever it is.
				limited := err == nil && resp.StatusCode < 500
				if !retry || waited+wait > maxWait || !limited && !idempotent(req.Method, req.URL.Path, body) {
					return resp, err
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-time.After(wait):
				case <-req.Context().Done():
					return nil, req.Context().Err()
				}
				waited += wait
				backoff = min(2*backoff, 30*time.Second)
			}
		})
	}
}

// retryAfter says whether an answer is worth retrying, and after how long.
func retryAfter(resp *http.Response, err error, backoff time.Duration) (time.Duration, bool) {
	if err != nil || resp == nil {
		return backoff, err != nil
	}
	if resp.StatusCode >= 500 {
		return backoff, true
	}
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Second, true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(n, 0)), time.Second), true
		}
	}
	// A secondary rate limit without a header: wait a minute, as GitHub asks.
	if resp.StatusCode == http.StatusTooManyRequests {
		return time.Minute, true
	}
	return 0, false
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// idempotent reports whether a request has the same effect sent twice as
// once: reads; labels set, added or removed; reactions (GitHub answers with
// the one there); and check-run updates without annotations (GitHub
// appends those). Comments, reviews, check-run creation and merges are not.
func idempotent(method, path string, body []byte) bool {
	switch {
	case method == http.MethodGet || method == http.MethodHead:
		return true
	case strings.Contains(path, "/labels"):
		return true
	case method == http.MethodPost && strings.HasSuffix(path, "/reactions"):
		return true
	case method == http.MethodPatch && strings.Contains(path, "/check-runs/"):
		var upd struct {
			Output *struct {
				Annotations []json.RawMessage `json:"annotations"`
			} `json:"output"`
		}
		return json.Unmarshal(body, &upd) == nil && (upd.Output == nil || len(upd.Output.Annotations) == 0)
	}
	return false
}
