package publish

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A request GitHub may have carried out before failing is sent once; one a
// rate limit refused, or one that does the same sent twice, is sent again.
func TestRetryingSendsAgainOnlyWhatMayBeSentTwice(t *testing.T) {
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		retryAfter               string
		wantSent                 int32
	}{
		{"comment after a 502", "POST", "/repos/o/r/issues/1/comments", `{"body":"hi"}`, 502, "", 1},
		{"merge after a 502", "PUT", "/repos/o/r/pulls/1/merge", `{}`, 502, "", 1},
		{"check run created after a 502", "POST", "/repos/o/r/check-runs", `{"name":"x"}`, 502, "", 1},
		{"annotations after a 502", "PATCH", "/repos/o/r/check-runs/5", `{"output":{"title":"t","summary":"s","annotations":[{"path":"a"}]}}`, 502, "", 1},
		{"comment refused by a rate limit", "POST", "/repos/o/r/issues/1/comments", `{"body":"hi"}`, 429, "0", 2},
		{"read after a 502", "GET", "/repos/o/r/pulls/1", "", 502, "", 2},
		{"status without annotations after a 502", "PATCH", "/repos/o/r/check-runs/5", `{"status":"completed","output":{"title":"t","summary":"s"}}`, 502, "", 2},
		{"labels after a 502", "POST", "/repos/o/r/issues/1/labels", `{"labels":["a"]}`, 502, "", 2},
		{"refusal", "POST", "/repos/o/r/issues/1/comments", `{"body":"hi"}`, 422, "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sent atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if sent.Add(1) == 1 {
					if c.retryAfter != "" {
						w.Header().Set("Retry-After", c.retryAfter)
					}
					w.WriteHeader(c.status)
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			client := &http.Client{Transport: Retrying(time.Minute, func() {})(http.DefaultTransport)}
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if c.body == "" {
				req.Body = nil
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := sent.Load(); got != c.wantSent {
				t.Errorf("sent %d times, want %d", got, c.wantSent)
			}
		})
	}
}
