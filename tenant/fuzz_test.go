package tenant

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/flowhost/flowhost/pipeline"
)

// FuzzParse: no worker.toml panics Parse; every error names the file; a
// config it accepts keeps every limit in range, and written back as TOML
// (format) it parses to the same config.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"[tenants.default]\nmax_concurrent = 2\ntimeout = \"30s\"\nmemory = \"256MiB\"\n",
		"[tenants.acme]\nmax_concurrent = 4\nmemory = \"1GiB\"\nmax_output = 1024\nfuel = 1000\nallow_files = [\"/srv/acme\"]\nallow_http = [\"*.acme.example\"]\nallow_env = true\n",
		"[tenants.a]\nallow_private = true\nallow_clock = true\nallow_random = true\nallow_modules = [\"" + strings.Repeat("ab", 32) + "\"]\n",
		"[tenants.\"a b\"]\ntimeout = \"1.5s\"\n",
		"[tenants.a]\ntimout = \"1s\"\n",
		"[tenants.a]\ntimeout = \"2100000h\"\n",
		"[tenants.a]\nmax_concurrent = -1\n",
		"[tenants.a]\nmemory = 0\n",
		"[tenants.a]\nmemory = [1]\n",
		"[tenants.a\n",
		"tenants = 1\n",
		"[tenants]\na = 1\n",
		"[tenants.a.b]\nc = 1\n",
		"# nothing\n",
		"[tenants.a]\nallow_files = " + strings.Repeat("[", 70) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("worker.toml", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "worker.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for name, p := range c.Tenants {
			if p.MaxConcurrent < 0 || p.MaxConcurrent > pipeline.MaxParallelCalls || p.Timeout < 0 || p.Timeout > pipeline.MaxDuration ||
				p.Memory > 1<<63-1 || p.MaxOutput > 1<<63-1 || p.Fuel > 1<<63-1 {
				t.Fatalf("tenant %q: %+v out of range", name, p)
			}
		}
		out := format(t, c)
		back, err := Parse("worker.toml", out)
		if err != nil {
			t.Fatalf("written back:\n%s\ndoes not parse: %v", out, err)
		}
		if !reflect.DeepEqual(normal(c), normal(back)) {
			t.Fatalf("written back:\n%s\nparses to %+v, not %+v", out, back, c)
		}
	})
}

// format writes a config as worker.toml.
func format(t *testing.T, c *Config) []byte {
	tenants := map[string]map[string]any{}
	for name, p := range c.Tenants {
		m := map[string]any{}
		set := func(key string, v any, ok bool) {
			if ok {
				m[key] = v
			}
		}
		set("max_concurrent", p.MaxConcurrent, p.MaxConcurrent != 0)
		set("timeout", p.Timeout.String(), p.Timeout != 0)
		set("memory", int64(p.Memory), p.Memory != 0)
		set("max_output", int64(p.MaxOutput), p.MaxOutput != 0)
		set("fuel", int64(p.Fuel), p.Fuel != 0)
		set("allow_files", p.AllowFiles, len(p.AllowFiles) > 0)
		set("allow_env", p.AllowEnv, p.AllowEnv)
		set("allow_http", p.AllowHTTP, len(p.AllowHTTP) > 0)
		set("allow_private", p.AllowPrivate, p.AllowPrivate)
		set("allow_clock", p.AllowClock, p.AllowClock)
		set("allow_random", p.AllowRandom, p.AllowRandom)
		set("allow_modules", p.AllowModules, len(p.AllowModules) > 0)
		tenants[name] = m
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{"tenants": tenants}); err != nil {
		t.Fatalf("encode %+v: %v", c, err)
	}
	return b.Bytes()
}

// normal returns the config's policies with empty lists made nil, so
// that a list written as [] compares equal to one left out.
func normal(c *Config) map[string]Policy {
	out := map[string]Policy{}
	for name, p := range c.Tenants {
		for _, l := range []*[]string{&p.AllowFiles, &p.AllowHTTP, &p.AllowModules} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		out[name] = p
	}
	return out
}
