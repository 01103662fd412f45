package host_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

func TestGrantsFilesAndEnv(t *testing.T) {
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/wasi_read.wat", "testdata/wasi_read.json"))
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("granted"), 0o644)
	lim := testLimits
	lim.Grants = &host.Grants{Files: map[string]string{"/data": dir}, Env: map[string]string{"A": "1", "B": "2"}}
	if err := host.CheckGrants(lim.Grants); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		task   string
		grants *host.Grants
		want   string
	}{
		{"read", lim.Grants, "0"}, // opened through the granted directory
		{"env", lim.Grants, "2"},
		{"read", nil, "4"}, // ENOENT: "/" is an empty directory
		{"env", nil, "0"},
	}
	for _, c := range cases {
		l := testLimits
		l.Grants = c.grants
		out, err := task(t, m, c.task).Call(context.Background(), []byte(`{}`), l)
		if err != nil || string(out) != c.want {
			t.Errorf("%s with grants %v: %s %v; want %s", c.task, c.grants != nil, out, err, c.want)
		}
	}
	for _, bad := range []*host.Grants{
		{Files: map[string]string{"data": dir}},
		{Files: map[string]string{"/data": filepath.Join(dir, "nope")}},
		{HTTP: []string{"http://example.com"}},
		{HTTP: []string{"a.*.com"}},
	} {
		if err := host.CheckGrants(bad); err == nil {
			t.Errorf("grants %+v passed Check", bad)
		}
	}
}

func TestGrantsHTTP(t *testing.T) {
	_, m := hostile(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, strings.Replace(r.Host, "127.0.0.1", "http://localhost", 1)+"/data", http.StatusFound)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	fetch := task(t, m, "fetch")
	cases := []struct {
		name   string
		url    string
		grants *host.Grants
		kind   host.Kind
		msg    string
	}{
		{"granted", srv.URL + "/data", &host.Grants{HTTP: []string{"127.0.0.1"}, Private: true}, 0, ""},
		{"nothing granted", srv.URL, nil, host.KindDenied, "granted no HTTP hosts"},
		{"other host", srv.URL, &host.Grants{HTTP: []string{"example.com"}}, host.KindDenied, `host "127.0.0.1" is not granted (granted: example.com)`},
		{"loopback not granted", srv.URL, &host.Grants{HTTP: []string{"127.0.0.1"}}, host.KindDenied, "loopback, private or link-local"},
		{"redirect to another host", srv.URL + "/redirect", &host.Grants{HTTP: []string{"127.0.0.1"}, Private: true}, host.KindDenied, `redirect to http://localhost`},
		{"not a URL", "ftp://x", &host.Grants{HTTP: []string{"x"}}, host.KindTrap, "is not an http or https URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lim := testLimits
			lim.Grants = c.grants
			out, err := fetch.Call(context.Background(), []byte(`{"url":"`+c.url+`"}`), lim)
			if c.kind == 0 {
				if err != nil || string(out) != `{"ok":true}` {
					t.Fatalf("%s %v", out, err)
				}
				return
			}
			if host.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %v; want %v %q", err, c.kind, c.msg)
			}
		})
	}
}
