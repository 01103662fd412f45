package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/server"
)

// FuzzAPI: any request (method, path, query, token, body) gets an answer
// with a status the API documents, JSON under /api/, and never a panic or
// a 500 when Redis is up.
func FuzzAPI(f *testing.F) {
	srv := redistest.Start(f)
	c, err := redis.Dial(context.Background(), srv.URL())
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	tokens := f.TempDir() + "/tokens.toml"
	writeFile(f, tokens, "[tokens]\n\"acme-0123456789abcdef\" = \"acme\"\n\"ops-0123456789abcdef\" = \"*\"\n")
	tk, err := server.LoadTokens(tokens)
	if err != nil {
		f.Fatal(err)
	}
	open := server.New(server.Config{Source: c})
	guarded := server.New(server.Config{Source: c, Tokens: tk})
	for _, s := range []string{"/api/v1/runs?limit=5&status=failed", "/api/v1/runs/1a2b3c/events?tenant=acme", "/api/v1/runs/%00/cancel",
		"/api/v1/runs?before=99999999999999999999", "/api/v1/runs/../../x", "/api/v1/tenants", "/api/v1/session", "/", "/app.js"} {
		f.Add(uint8(0), s, "acme-0123456789abcdef", `{"token":"x"}`)
	}
	methods := []string{"GET", "POST", "DELETE", "PUT", "HEAD"}
	f.Fuzz(func(t *testing.T, m uint8, target, token, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n") {
			return
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://127.0.0.1:8080"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Flowhost", "1")
		for _, h := range []http.Handler{open, guarded} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // no run exists: no stream follows one
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.WithContext(ctx))
			cancel()
			switch rec.Code {
			case 200, 400, 401, 403, 404, 405:
			case 301, 307: // the mux's redirect to the cleaned path
				continue
			default:
				t.Fatalf("%s %s: %d %s", req.Method, target, rec.Code, rec.Body)
			}
			if strings.HasPrefix(req.URL.Path, "/api/") && rec.Code != 200 && !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %s: %d, not JSON: %s", req.Method, target, rec.Code, rec.Body)
			}
		}
	})
}

func writeFile(tb testing.TB, path, s string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		tb.Fatal(err)
	}
}
