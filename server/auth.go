package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/BurntSushi/toml"

	"github.com/flowhost/flowhost/policy"
)

// AllTenants is the tenant of an operator's token: it sees and acts on
// every tenant's runs.
const AllTenants = "*"

// Tokens are the bearer tokens the server accepts, each bound to a tenant
// (or to AllTenants). Tokens are compared by their sha256, in constant
// time.
type Tokens struct {
	byHash map[[sha256.Size]byte]string
}

// tokensFile is tokens.toml:
//
//	[tokens]
//	"a-long-random-secret" = "acme"
//	"another-secret"       = "*"     # an operator
type tokensFile struct {
	Tokens map[string]string `toml:"tokens"`
}

// minTokenLen keeps guessable tokens out.
const minTokenLen = 16

// LoadTokens reads a tokens file. Every tenant is checked as a tenant
// name is everywhere (policy.CheckTenant), and every token is at least
// 16 bytes long.
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f tokensFile
	md, err := toml.Decode(string(b), &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %q (the file has one table, [tokens], of \"TOKEN\" = \"TENANT\")", path, und[0].String())
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("%s: no [tokens]", path)
	}
	t := &Tokens{byHash: map[[sha256.Size]byte]string{}}
	names := make([]string, 0, len(f.Tokens))
	for tok := range f.Tokens {
		names = append(names, tok)
	}
	sort.Strings(names)
	for i, tok := range names {
		tenant := f.Tokens[tok]
		if len(tok) < minTokenLen {
			return nil, fmt.Errorf("%s: token %d (of tenant %s) is shorter than %d bytes", path, i+1, tenant, minTokenLen)
		}
		if tenant != AllTenants {
			if err := policy.CheckTenant(tenant); err != nil {
				return nil, fmt.Errorf("%s: token %d: %w", path, i+1, err)
			}
		}
		t.byHash[sha256.Sum256([]byte(tok))] = tenant
	}
	return t, nil
}

// errNoToken and errBadToken are refusals of a request's credentials.
var (
	errNoToken  = errors.New("a token is needed: send Authorization: Bearer TOKEN (or sign in on the dashboard)")
	errBadToken = errors.New("the token is not valid")
)

// Tenant is the tenant token is bound to.
func (t *Tokens) Tenant(token string) (string, error) {
	if token == "" {
		return "", errNoToken
	}
	h := sha256.Sum256([]byte(token))
	var found string
	for k, tenant := range t.byHash {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			found = tenant
		}
	}
	if found == "" {
		return "", errBadToken
	}
	return found, nil
}
