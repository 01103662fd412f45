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

	"github.com/flowhost/flowhost/pipeline"
)

// Grants are what a call may reach beyond the sandbox (the flow's
// [grants]); nil grants nothing: no files, no environment, no network, a
// fake clock and fixed randomness.
type Grants = pipeline.Grants

func grantsEmpty(g *Grants) bool { return g == nil || g.Empty() }

// grantsKey identifies a set of grants: instances are pooled per key, so an
// instance never serves a call with other grants than it was made with.
func grantsKey(g *Grants) string {
	if grantsEmpty(g) {
		return ""
	}
	b, _ := json.Marshal(g) // maps marshal in key order
	return string(b)
}

// CheckGrants validates grants: directories exist, guest paths are
// absolute, host patterns are well-formed.
func CheckGrants(g *Grants) error {
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
		if !pipeline.ValidHostPattern(h) {
			return fmt.Errorf("grant http: %q is not a host name or a pattern like \"*.example.com\"", h)
		}
	}
	return nil
}

// grantsConfig applies the grants to an instance's configuration.
func grantsConfig(g *Grants, cfg wazero.ModuleConfig) wazero.ModuleConfig {
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

// allowsHost reports whether g allows an HTTP request to host.
func allowsHost(g *Grants, host string) bool {
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
