package policy

import (
	"math"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	d := DefaultCall
	cases := []struct {
		name       string
		flow, step Limits
		want       time.Duration
	}{
		{"default", Limits{}, Limits{}, d.Timeout},
		{"flow", Limits{Timeout: time.Second}, Limits{}, time.Second},
		{"step beats flow", Limits{Timeout: time.Second}, Limits{Timeout: time.Millisecond}, time.Millisecond},
		{"the longest", Limits{Timeout: MaxDuration}, Limits{}, MaxDuration},
		// now + 2100000h overflows a deadline in nanoseconds: the call
		// would time out at once.
		{"too long", Limits{Timeout: 2100000 * time.Hour}, Limits{}, MaxDuration},
		{"longest of all", Limits{}, Limits{Timeout: math.MaxInt64}, MaxDuration},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := (Scope{Flow: c.flow, Step: c.step}).Resolve().Timeout; got != c.want {
				t.Fatalf("timeout %v, want %v", got, c.want)
			}
		})
	}
}

func TestResolveScopes(t *testing.T) {
	acme := &Tenant{Timeout: time.Second, Memory: 1 << 20, Fuel: 1000}
	cases := []struct {
		name  string
		scope Scope
		want  Call
	}{
		{"defaults", Scope{}, DefaultCall},
		{"step over flow", Scope{Step: Limits{Memory: 1 << 10}, Flow: Limits{Memory: 1 << 11, Fuel: 7}},
			Call{Timeout: DefaultCall.Timeout, Memory: 1 << 10, MaxOutput: DefaultCall.MaxOutput, Fuel: 7}},
		{"timeout option beats the step's limit", Scope{Step: Limits{Timeout: time.Hour}, StepTimeout: time.Minute},
			Call{Timeout: time.Minute, Memory: DefaultCall.Memory, MaxOutput: DefaultCall.MaxOutput}},
		{"tenant clamps", Scope{Flow: Limits{Timeout: time.Hour, Memory: 1 << 30}, Tenant: acme},
			Call{Timeout: time.Second, Memory: 1 << 20, MaxOutput: DefaultCall.MaxOutput, Fuel: 1000}},
		{"tenant leaves less alone", Scope{Flow: Limits{Timeout: time.Millisecond, Fuel: 10}, Tenant: acme},
			Call{Timeout: time.Millisecond, Memory: 1 << 20, MaxOutput: DefaultCall.MaxOutput, Fuel: 10}},
		{"too long a step timeout", Scope{StepTimeout: math.MaxInt64}, Call{Timeout: MaxDuration, Memory: DefaultCall.Memory, MaxOutput: DefaultCall.MaxOutput}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.scope.Resolve(); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	g := Scope{Grants: Grants{Clock: true}}.Resolve()
	if g.Grants == nil || !g.Grants.Clock {
		t.Fatalf("grants lost: %+v", g)
	}
}

func TestMatchHost(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.Example.com.", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "evilexample.com", false},
		{"*.example.com", "*.b.example.com", true},
		{"api.example.com", "*.example.com", false},
	}
	for _, c := range cases {
		if got := MatchHost(c.pattern, c.host); got != c.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}
