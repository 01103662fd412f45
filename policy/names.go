// Package policy holds the rules every layer of flowhost shares about
// who may run what, with what: tenant names and run ids, a call's limits
// and how they are resolved (Scope.Resolve), grants and host patterns,
// and a tenant's policy (maxima, what it may be granted). It imports
// nothing of flowhost's, so every package may use it, and no two
// packages need their own copy of a rule.
package policy

import (
	"errors"
	"fmt"
)

// DefaultTenant is the tenant of a flow that names none, and the policy that
// serves tenants a worker's configuration does not list.
const DefaultTenant = "default"

// MaxTenantLen is the longest tenant name.
const MaxTenantLen = 64

// ErrBadTenant is wrapped by the error of a name CheckName refuses.
var ErrBadTenant = errors.New("invalid tenant name")

// CheckTenant reports whether name can be a tenant: 1 to MaxTenantLen
// characters, lower-case ASCII letters, digits, '-' and '_', starting
// with a letter or a digit. A tenant's Redis keys are fenced by the
// pattern fh:t:<name>:*, so a name may hold neither the key separator
// ':' nor a glob character: "acme:evil" would fall under acme's pattern.
func CheckTenant(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadTenant)
	}
	if len(name) > MaxTenantLen {
		return fmt.Errorf("%w: %.20q… is %d bytes, more than %d", ErrBadTenant, name, len(name), MaxTenantLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return fmt.Errorf("%w: %q: byte %d is %q; a tenant name is lower-case letters, digits, '-' and '_', starting with a letter or digit",
				ErrBadTenant, name, i+1, c)
		}
	}
	return nil
}

// MaxRunIDLen is the longest run id.
const MaxRunIDLen = 64

// ErrBadRunID is wrapped by the error of a run id CheckRunID refuses.
var ErrBadRunID = errors.New("invalid run id")

// CheckRunID reports whether id can be a run id: 1 to MaxRunIDLen ASCII
// letters, digits, '-' and '_'. A run id is part of its Redis keys
// (fh:t:<tenant>:run:<id>), so it may not hold ':' or a glob character.
func CheckRunID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrBadRunID)
	}
	if len(id) > MaxRunIDLen {
		return fmt.Errorf("%w: %.20q… is %d bytes, more than %d", ErrBadRunID, id, len(id), MaxRunIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q: byte %d is %q; a run id is ASCII letters, digits, '-' and '_'", ErrBadRunID, id, i+1, c)
		}
	}
	return nil
}
