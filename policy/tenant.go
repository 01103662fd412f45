package policy

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Tenant is what one tenant may use: the maxima of its calls' limits, how
// many of its calls may run at once, and what its flows may be granted.
// Both drivers apply it alike: a worker, to each tenant its worker.toml
// lists, and an in-process run, to the tenant it runs as.
type Tenant struct {
	// MaxConcurrent bounds the tenant's calls running at once on a worker
	// or in a process (0: no bound beyond the pool's own).
	MaxConcurrent int
	// Maxima of every call's limits; a zero field sets no maximum.
	Timeout   time.Duration
	Memory    uint64
	MaxOutput uint64
	Fuel      uint64

	// What the tenant's flows may be granted. Nothing, by default.
	AllowFiles   []string // host directories (and what is below them)
	AllowEnv     bool
	AllowHTTP    []string // hosts or "*.example.com"
	AllowPrivate bool
	AllowClock   bool
	AllowRandom  bool
	// AllowModules, when set, lists the module sha256s the tenant may run.
	AllowModules []string

	// Unrestricted is set where no tenant policy is configured: every
	// grant, no maxima.
	Unrestricted bool
}

// Clamp lowers each limit of c to the tenant's maximum.
func (p Tenant) Clamp(c Call) Call {
	if p.Timeout > 0 && (c.Timeout == 0 || c.Timeout > p.Timeout) {
		c.Timeout = p.Timeout
	}
	if p.Memory > 0 && (c.Memory == 0 || c.Memory > p.Memory) {
		c.Memory = p.Memory
	}
	if p.MaxOutput > 0 && (c.MaxOutput == 0 || c.MaxOutput > p.MaxOutput) {
		c.MaxOutput = p.MaxOutput
	}
	if p.Fuel > 0 && (c.Fuel == 0 || c.Fuel > p.Fuel) {
		c.Fuel = p.Fuel
	}
	return c
}

// PermitModule checks a module's sha256 against the tenant's allow-list.
func (p Tenant) PermitModule(tenant, alias, sha string) error {
	if p.Unrestricted || len(p.AllowModules) == 0 {
		return nil
	}
	for _, a := range p.AllowModules {
		if strings.EqualFold(a, sha) {
			return nil
		}
	}
	return fmt.Errorf("tenant %q may not run module %s (plugin %s): its sha256 is not in the tenant's allow_modules", tenant, sha, alias)
}

// Permit checks a flow's grants against the policy, naming the first
// grant the tenant may not have.
func (p Tenant) Permit(tenant string, g Grants) error {
	if p.Unrestricted || g.Empty() {
		return nil
	}
	deny := func(format string, args ...any) error {
		return fmt.Errorf("tenant %q may not be granted %s", tenant, fmt.Sprintf(format, args...))
	}
	for guest, dir := range g.Files {
		ok := false
		for _, allowed := range p.AllowFiles {
			if rel, err := filepath.Rel(allowed, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				ok = true
			}
		}
		if !ok {
			return deny("files %s (mounted at %s); allowed: %s", dir, guest, list(p.AllowFiles))
		}
	}
	if len(g.Env) > 0 && !p.AllowEnv {
		return deny("environment variables")
	}
	for _, h := range g.HTTP {
		if !p.allowsHTTP(h) {
			return deny("HTTP host %q; allowed: %s", h, list(p.AllowHTTP))
		}
	}
	switch {
	case g.Private && !p.AllowPrivate:
		return deny("private network addresses")
	case g.Clock && !p.AllowClock:
		return deny("the real clock")
	case g.Random && !p.AllowRandom:
		return deny("real randomness")
	}
	return nil
}

// allowsHTTP reports whether a granted host (or pattern) h is covered by
// an allowed one: a pattern is covered by itself or by a wider pattern
// ("*.b.example.com" by "*.example.com"), never by a single host.
func (p Tenant) allowsHTTP(h string) bool {
	for _, a := range p.AllowHTTP {
		if MatchHost(a, h) {
			return true
		}
	}
	return false
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
