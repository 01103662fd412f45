package host

import (
	"strings"
	"testing"
)

// FuzzHTTPRequest: whatever request a guest writes, the check neither
// panics nor lets through a host the grants do not allow, a scheme other
// than http and https, or an invalid method or header.
func FuzzHTTPRequest(f *testing.F) {
	g := &Grants{HTTP: []string{"api.example.com", "*.example.org"}}
	for _, s := range []string{
		`{"url":"https://api.example.com/x","method":"POST","headers":{"A":"b"}}`,
		`{"url":"http://a.example.org"}`, `{"url":"https://evil.com"}`, `{"url":"file:///etc/passwd"}`,
		`{"url":"https://api.example.com@evil.com/"}`, `{"url":"https://api.example.com","method":"GET\r\nX: y"}`,
		`{"url":"https://api.example.com","headers":{"X":"a\r\nB: c"}}`, `[]`, `{"url":"http://[::1]:80"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, u, _, err := checkHTTPRequest(raw, g, "m", "t")
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("scheme %q let through", u.Scheme)
		}
		h := strings.ToLower(u.Hostname()) // host names are case-insensitive
		if h != "api.example.com" && !strings.HasSuffix(h, ".example.org") {
			t.Fatalf("host %q let through", h)
		}
		if strings.ContainsAny(req.Method, "\r\n :") {
			t.Fatalf("method %q let through", req.Method)
		}
		for k, v := range req.Headers {
			if strings.ContainsAny(k+v, "\r\n") {
				t.Fatalf("header %q: %q let through", k, v)
			}
		}
	})
}
