package publish

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/basinix/basinix/internal/redact"
)

// A check run whose log tail holds the start of a private key (a log cut
// in the middle of it) is redacted field by field: the body stays JSON,
// and the fields after it are intact.
func TestRedactJSONKeepsTheBodyValid(t *testing.T) {
	body := `{"output":{"summary":"log:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow","title":"1 newly-failing"},"conclusion":"failure","token":"ghs_16C7e42F292c6912E7710c838347Ae178B4a"}`
	out := redactJSON(redact.New(), []byte(body))
	var v struct {
		Output            struct{ Summary, Title string }
		Conclusion, Token string
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("redacted body is not JSON: %v\n%s", err, out)
	}
	if strings.Contains(v.Output.Summary, "MIIE") || strings.Contains(v.Token, "ghs_") {
		t.Errorf("not redacted: %s", out)
	}
	if v.Output.Title != "1 newly-failing" || v.Conclusion != "failure" || !strings.HasPrefix(v.Output.Summary, "log:") {
		t.Errorf("fields lost: %s", out)
	}
	if plain := `{"a":"nothing secret"}`; string(redactJSON(redact.New(), []byte(plain))) != plain {
		t.Error("a body without secrets was rewritten")
	}
}
