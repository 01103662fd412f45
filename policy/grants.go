package policy

import "strings"

// Grants are what a flow's tasks may reach beyond the sandbox. The zero
// value grants nothing: no files, no environment, no network, a fake
// clock and fixed randomness.
type Grants struct {
	// Files maps guest paths ("/data") to host directories, read-only.
	Files map[string]string `json:"files,omitempty" toml:"files"`
	// Env are environment variables the tasks see.
	Env map[string]string `json:"env,omitempty" toml:"env"`
	// HTTP are the hosts the tasks may request ("api.example.com", "*.example.com").
	HTTP []string `json:"http,omitempty" toml:"http"`
	// Private allows HTTP to loopback and private addresses.
	Private bool `json:"private,omitempty" toml:"private"`
	// Clock and Random give the real clock and real randomness.
	Clock  bool `json:"clock,omitempty" toml:"clock"`
	Random bool `json:"random,omitempty" toml:"random"`
}

// Empty reports whether g grants nothing.
func (g Grants) Empty() bool {
	return len(g.Files) == 0 && len(g.Env) == 0 && len(g.HTTP) == 0 && !g.Private && !g.Clock && !g.Random
}

// ValidHostPattern reports whether h is a host name or a pattern like
// "*.example.com", as an HTTP grant must be.
func ValidHostPattern(h string) bool {
	return h != "" && !strings.ContainsAny(h, "/: ") && strings.Count(h, "*") <= 1 &&
		(!strings.Contains(h, "*") || strings.HasPrefix(h, "*."))
}

// MatchHost reports whether host matches pattern: the same name, or, for
// "*.example.com", any name below example.com (not example.com itself).
// Names compare without case and without a trailing dot. It is the one
// rule both for a task's request (is it granted?) and for a flow's grant
// (may its tenant be granted it?).
func MatchHost(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == host {
		return true
	}
	return strings.HasPrefix(pattern, "*.") && strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
}
