package host

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
)

// Grants are what a task may reach beyond its sandbox. The zero value
// grants nothing: no files, no environment, no network, a fake clock and
// fixed randomness.
type Grants struct {
	// Files maps a guest path to a host directory the guest may read
	// (never write).
	Files map[string]string `json:"files,omitempty"`
	// Env are environment variables the guest sees.
	Env map[string]string `json:"env,omitempty"`
	// HTTP are the hosts the guest may request (http_request), exact or
	// "*.example.com". A host resolving to a loopback, private or
	// link-local address is refused unless Private is set.
	HTTP []string `json:"http,omitempty"`
	// Private allows HTTP requests to loopback and private addresses.
	Private bool `json:"private,omitempty"`
	// Clock gives the guest the real wall clock and monotonic clock.
	Clock bool `json:"clock,omitempty"`
	// Random gives the guest real randomness.
	Random bool `json:"random,omitempty"`
}

// Empty reports whether g grants nothing.
func (g *Grants) Empty() bool {
	return g == nil || (len(g.Files) == 0 && len(g.Env) == 0 && len(g.HTTP) == 0 && !g.Clock && !g.Random)
}

// key identifies a set of grants: instances are pooled per key, so an
// instance never serves a call with other grants than it was made with.
func (g *Grants) key() string {
	if g.Empty() {
		return ""
	}
	b, _ := json.Marshal(g) // maps marshal in key order
	return string(b)
}

// Check validates the grants: directories exist, guest paths are
// absolute, host patterns are well-formed.
func (g *Grants) Check() error {
	if g == nil {
		return nil
	}
	for guest, dir := range g.Files {
		if !path.IsAbs(guest) {
			return fmt.Errorf("grant files: guest path %q must be absolute (like \"/data\")", guest)
		}
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("grant files: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("grant files: %s is not a directory", dir)
		}
	}
	for _, h := range g.HTTP {
		if h == "" || strings.ContainsAny(h, "/: ") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
			return fmt.Errorf("grant http: %q is not a host name or a pattern like \"*.example.com\"", h)
		}
	}
	return nil
}

// moduleConfig applies the grants to an instance's configuration.
func (g *Grants) moduleConfig(cfg wazero.ModuleConfig) wazero.ModuleConfig {
	if g == nil {
		return cfg
	}
	if len(g.Files) > 0 {
		fs := wazero.NewFSConfig()
		guests := make([]string, 0, len(g.Files))
		for guest := range g.Files {
			guests = append(guests, guest)
		}
		sort.Strings(guests)
		for _, guest := range guests {
			fs = fs.WithReadOnlyDirMount(g.Files[guest], guest)
		}
		cfg = cfg.WithFSConfig(fs)
	}
	names := make([]string, 0, len(g.Env))
	for k := range g.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		cfg = cfg.WithEnv(k, g.Env[k])
	}
	if g.Clock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if g.Random {
		cfg = cfg.WithRandSource(crand.Reader)
	}
	return cfg
}

// allowsHost reports whether the grants allow an HTTP request to host.
func (g *Grants) allowsHost(host string) bool {
	if g == nil {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range g.HTTP {
		p = strings.ToLower(p)
		if p == host || (strings.HasPrefix(p, "*.") && strings.HasSuffix(host, p[1:])) {
			return true
		}
	}
	return false
}
