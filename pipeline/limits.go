package pipeline

import (
	"time"

	"github.com/flowhost/flowhost/policy"
)

// Limits on input. Every value a flow, a worker config or a command line
// gives is checked against them before anything runs (docs/flows.md,
// "Limits on input").
const (
	// MaxDuration is the longest duration anywhere (policy.MaxDuration).
	MaxDuration = policy.MaxDuration

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
const MaxDurationText = policy.MaxDurationText

// CheckDuration refuses a negative duration and one longer than
// MaxDuration; zero means "not set" and passes.
func CheckDuration(d time.Duration) error { return policy.CheckDuration(d) }
