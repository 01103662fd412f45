// Package tenant reads a worker's tenant policies (worker.toml): which
// tenants a worker serves and the most each may use. Every limit a flow
// asks for is clamped to its tenant's maxima.
package tenant

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/flowhost/flowhost/internal/text"
	"github.com/flowhost/flowhost/internal/tomlcheck"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
)

// Policy is what one tenant may use (policy.Tenant): its maxima, its
// concurrency and what it may be granted.
type Policy = policy.Tenant

// Config is a worker's tenants. The tenant named "default", when present,
// serves every tenant not listed; without it, unlisted tenants are refused.
type Config struct {
	Tenants map[string]Policy
}

// ErrUnknown is returned for a tenant a worker does not serve.
var ErrUnknown = errors.New("tenant not configured")

// Policy returns the policy of tenant. A nil Config serves every tenant
// with no maxima.
func (c *Config) Policy(tenant string) (Policy, error) {
	if c == nil {
		return Policy{Unrestricted: true}, nil
	}
	if p, ok := c.Tenants[tenant]; ok {
		return p, nil
	}
	if p, ok := c.Tenants[policy.DefaultTenant]; ok {
		return p, nil
	}
	names := make([]string, 0, len(c.Tenants))
	for n := range c.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	return Policy{}, fmt.Errorf("%w: %q is not among this worker's tenants (%s) and no \"default\" tenant is configured", ErrUnknown, tenant, strings.Join(names, ", "))
}

type rawPolicy struct {
	MaxConcurrent int64    `toml:"max_concurrent"`
	Timeout       string   `toml:"timeout"`
	Memory        any      `toml:"memory"`
	MaxOutput     any      `toml:"max_output"`
	Fuel          int64    `toml:"fuel"`
	AllowFiles    []string `toml:"allow_files"`
	AllowEnv      bool     `toml:"allow_env"`
	AllowHTTP     []string `toml:"allow_http"`
	AllowPrivate  bool     `toml:"allow_private"`
	AllowClock    bool     `toml:"allow_clock"`
	AllowRandom   bool     `toml:"allow_random"`
	AllowModules  []string `toml:"allow_modules"`
}

var policyKeys = []string{"max_concurrent", "timeout", "memory", "max_output", "fuel",
	"allow_files", "allow_env", "allow_http", "allow_private", "allow_clock", "allow_random", "allow_modules"}

// Load reads a worker config file:
//
//	[tenants.default]
//	max_concurrent = 2
//	timeout = "30s"
//	memory = "256MiB"
//
//	[tenants.acme]
//	max_concurrent = 4
//	memory = "1GiB"
//	allow_files = ["/srv/acme"]      # what acme's flows may be granted (nothing by default)
//	allow_http = ["*.acme.example"]
//	allow_env = true
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse parses a worker config read from path (named in its errors).
func Parse(path string, src []byte) (*Config, error) {
	if err := tomlcheck.CheckNesting(src); err != nil {
		var e *tomlcheck.Error
		if errors.As(err, &e) {
			e.File = path
		}
		return nil, err
	}
	var raw struct {
		Tenants map[string]rawPolicy `toml:"tenants"`
	}
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	for _, k := range md.Undecoded() {
		name := k[len(k)-1]
		if k[0] != "tenants" {
			return nil, fmt.Errorf("%s: unknown key %q at the top level%s (a worker config holds [tenants.NAME] tables)", path, k[0], text.Suggest(k[0], []string{"tenants"}))
		}
		if len(k) == 3 {
			return nil, fmt.Errorf("%s: unknown key %q in [tenants.%s]%s (valid: %s)", path, name, k[1], text.Suggest(name, policyKeys), strings.Join(policyKeys, ", "))
		}
	}
	c := &Config{Tenants: map[string]Policy{}}
	for name, rp := range raw.Tenants {
		where := fmt.Sprintf("%s: [tenants.%s]", path, name)
		if err := policy.CheckTenant(name); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		p := Policy{MaxConcurrent: int(rp.MaxConcurrent), Fuel: uint64(max(rp.Fuel, 0)),
			AllowFiles: rp.AllowFiles, AllowEnv: rp.AllowEnv, AllowHTTP: rp.AllowHTTP,
			AllowPrivate: rp.AllowPrivate, AllowClock: rp.AllowClock, AllowRandom: rp.AllowRandom, AllowModules: rp.AllowModules}
		if rp.MaxConcurrent < 0 || rp.Fuel < 0 {
			return nil, fmt.Errorf("%s: max_concurrent and fuel must not be negative", where)
		}
		if rp.MaxConcurrent > pipeline.MaxParallelCalls {
			return nil, fmt.Errorf("%s: max_concurrent must be at most %d, not %d", where, pipeline.MaxParallelCalls, rp.MaxConcurrent)
		}
		if rp.Timeout != "" {
			if p.Timeout, err = text.ParseDuration(rp.Timeout); err != nil {
				return nil, fmt.Errorf("%s: timeout: %w", where, err)
			}
		}
		for _, f := range []struct {
			key string
			v   any
			dst *uint64
		}{{"memory", rp.Memory, &p.Memory}, {"max_output", rp.MaxOutput, &p.MaxOutput}} {
			switch v := f.v.(type) {
			case nil:
			case int64:
				if v <= 0 {
					return nil, fmt.Errorf("%s: %s must be positive", where, f.key)
				}
				*f.dst = uint64(v)
			case string:
				n, err := text.ParseSize(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", where, f.key, err)
				}
				*f.dst = n
			default:
				return nil, fmt.Errorf("%s: %s must be a number of bytes or a size like \"64MiB\"", where, f.key)
			}
		}
		c.Tenants[name] = p
	}
	if len(c.Tenants) == 0 {
		return nil, fmt.Errorf("%s: no [tenants.NAME] table: the worker would serve nobody", path)
	}
	return c, nil
}
