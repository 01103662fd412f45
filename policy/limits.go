package policy

import (
	"fmt"
	"time"
)

// Limits bound every call of a task. A zero field inherits the value of
// the enclosing scope: a step's from its flow's, a flow's from the
// defaults (DefaultCall), and every one is then lowered to its tenant's
// maxima (Tenant.Clamp).
type Limits struct {
	Timeout   time.Duration
	Memory    uint64 // bytes
	MaxOutput uint64 // bytes
	Fuel      uint64 // units, about one instruction each
	// State is StateAuto, StateReset or StateKeep (see Call.State).
	State string `json:",omitempty"`
	// Cache is CacheAuto, CacheOn or CacheOff (see Call.Cache).
	Cache string `json:",omitempty"`
}

// Merge returns l with its zero fields taken from outer.
func (l Limits) Merge(outer Limits) Limits {
	if l.Timeout == 0 {
		l.Timeout = outer.Timeout
	}
	if l.Memory == 0 {
		l.Memory = outer.Memory
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = outer.MaxOutput
	}
	if l.Fuel == 0 {
		l.Fuel = outer.Fuel
	}
	if l.State == StateAuto || l.State == "auto" {
		l.State = outer.State
	}
	if l.Cache == CacheAuto {
		l.Cache = outer.Cache
	}
	return l
}

// Call is what one task call may use: its resolved limits and its grants.
// A zero field means "no limit"; nil Grants grant nothing. The host
// enforces it (host.Limits is this type).
type Call struct {
	// Timeout is the wall-clock deadline of the call.
	Timeout time.Duration
	// Memory caps the guest's linear memory, and separately the host-side
	// memory (the Extism kernel's blocks) the call may allocate, in bytes.
	Memory uint64
	// MaxOutput caps the output's size in bytes.
	MaxOutput uint64
	// Fuel is a deterministic CPU budget, in units of roughly one
	// instruction. 0 means no budget (the timeout still applies).
	Fuel uint64
	// Grants are what the call may reach beyond the sandbox; nil: nothing.
	Grants *Grants
	// State says whether the call starts from the guest's state after its
	// instance's start-up (StateReset), or sees what earlier calls of the
	// instance left in its memory and globals (StateKeep: faster where a
	// reset costs much, and then not a function of the input, so not
	// cacheable). StateAuto lets the host choose per module.
	State string
	// Cache says whether the call's result may come from, and go to, the
	// result cache: CacheAuto when the call is a function of its input
	// (its state is reset and no grant lets the world in), CacheOn also
	// with grants (the flow's promise that they do not change the result),
	// CacheOff never.
	Cache string
}

// Result cache settings (Call.Cache, Limits.Cache).
const (
	CacheAuto = ""
	CacheOn   = "on"
	CacheOff  = "off"
)

// Per-call guest state (Call.State, Limits.State).
const (
	StateAuto  = ""
	StateReset = "reset"
	StateKeep  = "keep"
)

// CheckState refuses a state setting that is not one of the three.
func CheckState(s string) error {
	switch s {
	case StateAuto, "auto", StateReset, StateKeep:
		return nil
	}
	return fmt.Errorf("state %q: one of \"auto\", \"reset\", \"keep\"", s)
}

// Limits returns the limits of c, without its grants.
func (c Call) Limits() Limits {
	return Limits{Timeout: c.Timeout, Memory: c.Memory, MaxOutput: c.MaxOutput, Fuel: c.Fuel, State: c.State, Cache: c.Cache}
}

// DefaultCall are the limits of a call whose step, flow and tenant ask for
// none.
var DefaultCall = Call{
	Timeout:   30 * time.Second,
	Memory:    256 << 20,
	MaxOutput: 16 << 20,
}

// Scope is everything that shapes the limits of a step's calls, from the
// innermost out.
type Scope struct {
	// Step are the step's (or dataflow task's) own limits.
	Step Limits
	// StepTimeout is the step's timeout option, which beats Step.Timeout.
	StepTimeout time.Duration
	// Flow are the flow's limits.
	Flow Limits
	// Grants are the flow's grants.
	Grants Grants
	// Tenant is the tenant's policy; nil clamps nothing.
	Tenant *Tenant
}

// Resolve is the one place a call's limits are decided, whichever driver
// runs it: the step's, else the flow's, else DefaultCall's, the step's
// timeout option first; a timeout at most MaxDuration (so that now plus
// the timeout cannot overflow a deadline); then each lowered to the
// tenant's maximum. A flow may ask for less than its tenant allows, never
// more.
func (s Scope) Resolve() Call {
	step := s.Step
	if s.StepTimeout != 0 {
		step.Timeout = s.StepTimeout
	}
	l := step.Merge(s.Flow).Merge(DefaultCall.Limits())
	c := Call{Timeout: ClampDuration(l.Timeout), Memory: l.Memory, MaxOutput: l.MaxOutput, Fuel: l.Fuel, State: l.State, Cache: l.Cache}
	if c.State == "auto" {
		c.State = StateAuto
	}
	if s.Tenant != nil {
		c = s.Tenant.Clamp(c)
	}
	if !s.Grants.Empty() {
		g := s.Grants
		c.Grants = &g
	}
	return c
}

// ClampDuration bounds d to MaxDuration; a negative d becomes 0 (not set).
func ClampDuration(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return min(d, MaxDuration)
}

// MaxDuration is the longest duration anywhere: a timeout, a lease, a
// time to keep a result. Far longer would overflow a deadline (now + the
// duration) and end a call at once.
const MaxDuration = 365 * 24 * time.Hour

// MaxDurationText is MaxDuration as the limit's messages and docs write it.
const MaxDurationText = "8760h (365 days)"

// CheckDuration refuses a negative duration and one longer than
// MaxDuration; zero means "not set" and passes.
func CheckDuration(d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("duration %s must be positive", d)
	case d > MaxDuration:
		return fmt.Errorf("duration %s is too long: at most %s", d, MaxDurationText)
	}
	return nil
}
