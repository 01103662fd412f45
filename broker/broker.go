// Package broker defines how the runner hands work to whatever executes
// it: the embedded in-process pool (broker/inproc) or a fleet of workers
// behind a shared queue. The runner decides what runs and when; a broker
// only carries jobs to executors and results back.
package broker

import (
	"context"
	"time"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
)

// Job is one task called on a batch of inputs, in order. Batching lets a
// map of many small elements pay the hand-off once per batch.
type Job struct {
	// Ctx is the run's context: canceling it interrupts the job's calls
	// and skips those not yet started.
	Ctx    context.Context
	RunID  string
	Tenant string
	// Attempt is 0 for a first try, n for the n-th retry.
	Attempt int
	// Priority is the run's, 1 to 5 (0: the default): a broker takes a
	// tenant's jobs of higher priority first, never another tenant's
	// jobs later for it.
	Priority int
	// Step labels the job in logs and errors.
	Step string
	// Task is the task to call.
	Task   *host.Task
	Inputs [][]byte
	Limits host.Limits
	// Index is the position of Inputs[0] in the step's elements.
	Index int
	// Cache is the calls' lookups in the result cache (cache.Batch.Sub
	// of the step's), which stores their new results; nil: none.
	Cache *cache.Batch
}

// Result is the outcome of every input of a job, by position.
type Result struct {
	Outputs [][]byte
	Errs    []error
	// Cached counts the outputs that came from the cache.
	Cached int
	// Fuel is what the job's calls burned; PeakMemory the most guest
	// memory one ended with.
	Fuel, PeakMemory uint64
	// Started is when an executor took the job.
	Started time.Time
}

// Broker carries jobs to executors. Implementations are safe for
// concurrent use.
type Broker interface {
	// Submit queues job; done is called once, from any goroutine, with its
	// result. Submit does not block on the job's execution.
	Submit(job *Job, done func(*Job, *Result)) error
	// Workers is how many calls the broker runs at once.
	Workers() int
	// Close stops accepting jobs and waits for the running ones.
	Close() error
}
