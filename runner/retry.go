package runner

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
)

// This file holds the rules of a call's failure and of batching, shared
// by both drivers: whether a failed call is retried, skipped or fails its
// step (OnFailure), how long a retry waits (RetryDelay), and how a
// step's calls are cut into batches (Batches).

// Outcome is what becomes of a failed call.
type Outcome int

// Outcomes of a failed call.
const (
	// Fail: the call fails its step, and its run.
	Fail Outcome = iota
	// Retry: the call is tried again after RetryDelay, holding no worker
	// while it waits.
	Retry
	// Skip: the element is dropped from the map's or filter's result
	// (skip_errors).
	Skip
)

// OnFailure decides what becomes of a call of a step of kind that failed
// with err on its attempt-th retry (0: the first try): it is retried
// while retries are left, the failure may pass (Retryable) and the run
// goes on; else an element of a map or filter with skip_errors is
// skipped, unless it was canceled; else it fails the step.
func OnFailure(ctx context.Context, err error, attempt int, kind pipeline.Kind, opts pipeline.Options) Outcome {
	if attempt < opts.Retries && Retryable(err) && ctx.Err() == nil {
		return Retry
	}
	if opts.SkipErrors && (kind == pipeline.Map || kind == pipeline.Filter) && host.KindOf(err) != host.KindCanceled {
		return Skip
	}
	return Fail
}

// Retryable reports whether a failure may go away on another try. A bad
// input is refused by the host before the task runs, and a canceled call
// was stopped on purpose.
func Retryable(err error) bool {
	switch host.KindOf(err) {
	case host.KindBadInput, host.KindCanceled:
		return false
	}
	return true
}

// backoff is base·2^(attempt-1), capped at max, with ±50 % jitter. It
// doubles step by step, never past max, so no attempt number overflows;
// base and max are positive and at most pipeline.MaxDuration.
// DefaultRetryBase and DefaultRetryMax shape the retry backoff unless a
// Config says otherwise.
const (
	DefaultRetryBase = 100 * time.Millisecond
	DefaultRetryMax  = 10 * time.Second
)

// RetryDelay is how long to wait before retry number attempt (from 1)
// with the default backoff: doubling from DefaultRetryBase up to
// DefaultRetryMax, with jitter. Every driver waits this long.
func RetryDelay(attempt int) time.Duration {
	return backoff(DefaultRetryBase, DefaultRetryMax, attempt)
}

func backoff(base, max time.Duration, attempt int) time.Duration {
	d := min(base, max)
	for i := 1; i < attempt && d < max; i++ {
		d = min(2*d, max)
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// Batches splits calls into batches of consecutive calls of one task,
// small enough that each of slots gets several, and at most maxBatch
// long. It returns the batches' call indexes.
func Batches(calls []Call, slots, maxBatch int) [][]int {
	n := len(calls)
	// More slots than calls would stay idle; bounding them keeps the
	// product from overflowing.
	size := n / (max(1, min(slots, n)) * 4)
	size = max(1, min(size, maxBatch))
	var out [][]int
	for i := 0; i < n; {
		j := i + 1
		for j < n && j-i < size && calls[j].Task == calls[i].Task {
			j++
		}
		b := make([]int, j-i)
		for k := range b {
			b[k] = i + k
		}
		out = append(out, b)
		i = j
	}
	return out
}

// Guest log lines a run may write: a burst, then a steady rate.
const (
	logBurst     = 500
	logPerSecond = 100
)

// NewLogBudget is the budget of guest log lines of one run, on whichever
// driver runs it.
func NewLogBudget() *host.LogBudget { return host.NewLogBudget(logPerSecond, logBurst) }
