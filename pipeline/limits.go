package pipeline

import (
	"fmt"
	"time"
)

// Limits on input. Every value a flow, a worker config or a command line
// gives is checked against them before anything runs (docs/flows.md,
// "Limits on input").
const (
	// MaxDuration is the longest duration anywhere: a timeout, a lease, a
	// time to keep a result. Far longer would overflow a deadline (now +
	// the duration) and end a call at once.
	MaxDuration = 365 * 24 * time.Hour

	// MaxParallelCalls is the largest max_parallel of a step or task.
	MaxParallelCalls = 1 << 16

	// MaxRetries is the most retries of a step or task.
	MaxRetries = 100

	// MaxDepth is the deepest nesting of a value: arrays and objects in a
	// JSON input, arrays and inline tables (and the dotted parts of a key)
	// in flow.toml and worker.toml. Real inputs nest a few levels; a
	// decoder that recurses per level is crashed by millions.
	MaxDepth = 64
)

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
