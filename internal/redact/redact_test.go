package redact

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
)

func testKey(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func TestString(t *testing.T) {
	key := testKey(t)
	lines := strings.Split(strings.TrimSpace(key), "\n")
	bodyLine := lines[3]
	const secret = `web<hook>&"secret"`
	r := New(key, secret, "short")
	jsonOf := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tests := []struct {
		name, in string
		gone     []string
		kept     []string
	}{
		{"the whole key", "log: " + key + " end", []string{bodyLine, "PRIVATE KEY"}, []string{"log: ", " end"}},
		{"one line of the key's body", "cat key | head -4\n" + bodyLine + "\n", []string{bodyLine}, []string{"cat key"}},
		{"the key's body on one line", "x" + strings.Join(lines[1:len(lines)-1], "") + "y", []string{bodyLine[:40]}, nil},
		{"the key JSON-escaped", `{"summary":` + jsonOf(key) + `}`, []string{bodyLine}, []string{`{"summary":`}},
		{"the webhook secret", "secret is " + secret, []string{secret}, []string{"secret is "}},
		{"the webhook secret JSON-escaped", jsonOf("x " + secret), []string{`web\u003chook`, `web<hook>`}, nil},
		{"an installation token", "Authorization: token ghs_16C7e42F292c6912E7710c838347Ae178B4a", []string{"ghs_16C7"}, []string{"Authorization: token "}},
		{"a personal token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", []string{"ghp_"}, nil},
		{"a JWT", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MiJ9.c2lnbmF0dXJlc2lnbmF0dXJl", []string{"eyJ"}, []string{"Bearer "}},
		{"another private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----", []string{"b3BlbnNz"}, nil},
		{"a short secret is not replaced in ordinary text", "a short story", nil, []string{"a short story"}},
		{"nothing secret", "builder for '/nix/store/abc-foo.drv' failed", nil, []string{"builder for '/nix/store/abc-foo.drv' failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.String(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q still in %q", g, got)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
			if len(tt.gone) > 0 && !strings.Contains(got, Replacement) {
				t.Errorf("no %s in %q", Replacement, got)
			}
		})
	}
}

// A secret split over writes is still cut out of a stream.
func TestWriterAcrossWrites(t *testing.T) {
	const secret = "s3cr3t-webhook-value"
	r := New(secret)
	var out bytes.Buffer
	w := r.Writer(&out)
	for _, part := range []string{"line one\nthe secret is s3cr", "3t-web", "hook-value and more\nlast"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "line one\nthe secret is " + Replacement + " and more\nlast"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestNilRedactorReplacesPatterns(t *testing.T) {
	var r *Redactor
	if got := r.String("token ghs_16C7e42F292c6912E7710c838347Ae178B4a"); strings.Contains(got, "ghs_") {
		t.Errorf("got %q", got)
	}
}
