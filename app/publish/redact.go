package publish

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/palantir/go-githubapp/githubapp"

	"github.com/basinix/basinix/internal/redact"
)

// Redacting is a client middleware that removes secrets from every request
// body basinix sends GitHub (check runs, comments, reviews, merge
// messages): the last line of defence behind restricted evaluation and
// secret-free child environments, for a build log that prints the key.
func Redacting(r *redact.Redactor) githubapp.ClientMiddleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.Body == nil || req.Body == http.NoBody {
				return next.RoundTrip(req)
			}
			body, err := io.ReadAll(req.Body)
			req.Body.Close()
			if err != nil {
				return nil, err
			}
			clean := redactJSON(r, body)
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(clean))
			req.ContentLength = int64(len(clean))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(clean)), nil }
			return next.RoundTrip(req)
		})
	}
}

// redactJSON redacts each string of a JSON body, so that the body stays
// JSON whatever a secret's text spans; a body that is not JSON is redacted
// as text.
func redactJSON(r *redact.Redactor, body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return r.Bytes(body)
	}
	changed := false
	v = redactValue(r, v, &changed)
	if !changed {
		return body
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return r.Bytes(body)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

func redactValue(r *redact.Redactor, v any, changed *bool) any {
	switch v := v.(type) {
	case string:
		if out := r.String(v); out != v {
			*changed = true
			return out
		}
	case []any:
		for i := range v {
			v[i] = redactValue(r, v[i], changed)
		}
	case map[string]any:
		for k := range v {
			v[k] = redactValue(r, v[k], changed)
		}
	}
	return v
}
