package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTenant(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"acme", true},
		{"default", true},
		{"a", true},
		{"team-7_b", true},
		{"0day", true},
		{strings.Repeat("a", MaxTenantLen), true},
		{strings.Repeat("a", MaxTenantLen+1), false},
		{"", false},
		{"acme:evil", false},
		{"acme*", false},
		{"Acme", false},
		{"-acme", false},
		{"_acme", false},
		{"ac me", false},
		{"acme\x00", false},
		{"acmé", false},
		{"a[b]", false},
		{"a?b", false},
		{"a\\b", false},
	} {
		err := CheckTenant(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckTenant(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadTenant) {
			t.Errorf("CheckTenant(%q): %v does not wrap ErrBadTenant", tc.name, err)
		}
	}
}

func FuzzCheckTenant(f *testing.F) {
	for _, s := range []string{"acme", "acme:evil", "", "a*", strings.Repeat("z", 70), "x-y_z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckTenant(name) != nil {
			return
		}
		// An accepted name can never widen a key or channel pattern.
		if strings.ContainsAny(name, ":*?[]\\ \t\n") || len(name) > MaxTenantLen || name == "" {
			t.Fatalf("accepted %q", name)
		}
	})
}

func TestCheckRunID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"0190c2b1a3f4e5d6a7b8c9d0", true},
		{"My_run-1", true},
		{strings.Repeat("a", MaxRunIDLen), true},
		{strings.Repeat("a", MaxRunIDLen+1), false},
		{"", false},
		{"x:step:0", false},
		{"*", false},
		{"a b", false},
		{"a/b", false},
	} {
		err := CheckRunID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckRunID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRunID) {
			t.Errorf("CheckRunID(%q): %v does not wrap ErrBadRunID", tc.id, err)
		}
	}
}

func FuzzCheckRunID(f *testing.F) {
	for _, s := range []string{"0190c2b1a3f4e5d6a7b8c9d0", "x:step:0", "", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckRunID(id) == nil && (strings.ContainsAny(id, ":*?[]\\ ") || id == "" || len(id) > MaxRunIDLen) {
			t.Fatalf("accepted %q", id)
		}
	})
}
