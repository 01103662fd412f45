package tenant

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
)

func write(t *testing.T, src string) string {
	p := filepath.Join(t.TempDir(), "worker.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAndClamp(t *testing.T) {
	c, err := Load(write(t, "[tenants.acme]\nmax_concurrent = 3\ntimeout = \"2s\"\nmemory = \"64MiB\"\nmax_output = 1024\nfuel = 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy("acme")
	if err != nil || p.MaxConcurrent != 3 {
		t.Fatalf("%+v %v", p, err)
	}
	got := p.Clamp(host.Limits{Timeout: time.Minute, Memory: 1 << 30, MaxOutput: 10, Fuel: 0})
	want := host.Limits{Timeout: 2 * time.Second, Memory: 64 << 20, MaxOutput: 10, Fuel: 1000}
	if got != want {
		t.Fatalf("clamp = %+v, want %+v", got, want)
	}
	if _, err := c.Policy("other"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `"other" is not among this worker's tenants (acme)`) {
		t.Fatalf("unknown tenant: %v", err)
	}
	c, _ = Load(write(t, "[tenants.default]\ntimeout = \"1s\"\n"))
	if p, err := c.Policy("anyone"); err != nil || p.Timeout != time.Second {
		t.Fatalf("default tenant: %+v %v", p, err)
	}
	var none *Config
	if p, err := none.Policy("x"); err != nil || !p.Unrestricted || p.Timeout != 0 {
		t.Fatalf("nil config: %+v %v", p, err)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"[tenants.a]\ntimout = \"1s\"\n", `unknown key "timout" in [tenants.a]; did you mean "timeout"?`},
		{"[tenant.a]\ntimeout = \"1s\"\n", `unknown key "tenant" at the top level; did you mean "tenants"?`},
		{"[tenants.a]\ntimeout = \"1\"\n", `timeout: duration "1" has no unit`},
		{"[tenants.a]\ntimeout = \"2100000h\"\n", `[tenants.a]: timeout: duration "2100000h" is too long: at most 8760h (365 days)`},
		{"[tenants.a]\nmemory = \"lots\"\n", `memory: invalid size "lots"`},
		{"[tenants.a]\nmax_concurrent = -1\n", "must not be negative"},
		{"[tenants.a]\nmax_concurrent = 4611686018427387904\n", "[tenants.a]: max_concurrent must be at most 65536, not 4611686018427387904"},
		{"[tenants.a\n", "worker.toml:2:"},
		{"[tenants.a]\nallow_files = " + strings.Repeat("[", 5_000_000) + "\n", "worker.toml:2:79: arrays and inline tables nested more than 64 deep: at most 64 levels are allowed"},
		{"[tenants" + strings.Repeat(".a", 1_000_000) + "]\n", "worker.toml:1:1: a key or table name of more than 64 dotted parts"},
		{"# nothing\n", "no [tenants.NAME] table"},
		{"[tenants.\"acme:evil\"]\n", `[tenants.acme:evil]: invalid tenant name: "acme:evil": byte 5 is ':'`},
		{"[tenants.Acme]\n", `invalid tenant name: "Acme"`},
	}
	for _, c := range cases {
		if _, err := Load(write(t, c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60q: err %.200v, want %q", c.src, err, c.want)
		}
	}
}

func TestPermit(t *testing.T) {
	p := Policy{AllowFiles: []string{"/srv/acme"}, AllowHTTP: []string{"*.acme.example", "api.x.com"}, AllowEnv: true}
	ok := []pipeline.Grants{
		{},
		{Files: map[string]string{"/data": "/srv/acme/data"}},
		{HTTP: []string{"eu.acme.example", "api.x.com"}, Env: map[string]string{"A": "1"}},
	}
	for _, g := range ok {
		if err := p.Permit("acme", g); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
	bad := []struct {
		g    pipeline.Grants
		want string
	}{
		{pipeline.Grants{Files: map[string]string{"/d": "/srv/other"}}, `tenant "acme" may not be granted files /srv/other (mounted at /d); allowed: /srv/acme`},
		{pipeline.Grants{Files: map[string]string{"/d": "/srv/acme/../other"}}, "may not be granted files"},
		{pipeline.Grants{HTTP: []string{"evil.com"}}, `may not be granted HTTP host "evil.com"`},
		{pipeline.Grants{Clock: true}, "the real clock"},
		{pipeline.Grants{Private: true, HTTP: []string{"api.x.com"}}, "private network addresses"},
	}
	for _, c := range bad {
		if err := p.Permit("acme", c.g); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.g, err, c.want)
		}
	}
	if err := (Policy{}).Permit("t", pipeline.Grants{Env: map[string]string{"A": "1"}}); err == nil {
		t.Error("a policy without allowances granted env")
	}
	if err := (Policy{Unrestricted: true}).Permit("t", pipeline.Grants{Clock: true}); err != nil {
		t.Error(err)
	}
}

func TestPermitModule(t *testing.T) {
	p := Policy{AllowModules: []string{"ABCD"}}
	if err := p.PermitModule("acme", "stats", "abcd"); err != nil {
		t.Fatal(err)
	}
	if err := p.PermitModule("acme", "text", "ffff"); err == nil || !strings.Contains(err.Error(), `tenant "acme" may not run module ffff (plugin text)`) {
		t.Fatal(err)
	}
	if err := (Policy{}).PermitModule("acme", "text", "ffff"); err != nil {
		t.Fatal("an empty allow-list allows every module")
	}
}
