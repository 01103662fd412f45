package policy

import "fmt"

// Priorities of a run: within one tenant, the work of a run of higher
// priority is taken before a lower one's; across tenants, fairness comes
// first and priorities play no part.
const (
	MinPriority     = 1
	MaxPriority     = 5
	DefaultPriority = 3
)

// CheckPriority refuses a priority out of 1..5; 0 means the default.
func CheckPriority(p int) error {
	if p != 0 && (p < MinPriority || p > MaxPriority) {
		return fmt.Errorf("priority %d: between %d (lowest) and %d (highest); %d is the default", p, MinPriority, MaxPriority, DefaultPriority)
	}
	return nil
}

// Priority is p, or DefaultPriority for 0.
func Priority(p int) int {
	if p == 0 {
		return DefaultPriority
	}
	return p
}
