package runner

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/host"
)

// Call is one task call of a step.
type Call struct {
	Task  *host.Task
	Input []byte
}

// fanSpec describes a set of calls run as one unit: a step's elements, a
// group's tasks, or one dataflow node.
type fanSpec struct {
	runID       string
	label       string
	calls       []Call
	limits      host.Limits
	retries     int
	maxParallel int
	skipErrors  bool
	// onProgress is called, under no lock, after each batch.
	onProgress func(done, failed int)
	// onRetry is called when a call is scheduled again.
	onRetry func(index, attempt int, err error)
	// logs rate-limits the guest logs of the run's calls.
	logs *host.LogBudget
}

// fanResult is the outcome of a fan-out: every call's output, or, when
// skipErrors, its final error. err is the first error that failed the
// fan-out (without skipErrors), with the index of its call.
type fanResult struct {
	outputs [][]byte
	errs    []error
	err     error
	index   int
}

// fanout runs every call of spec on the broker, at most maxParallel batches
// at once, retrying failed calls with exponential backoff and jitter, and
// calls done once with the result. A retry that waits holds no worker. On
// a final failure without skipErrors, done gets it at once; the caller
// records it as the run's failure, then cancels the run's other work.
type fanout struct {
	r    *Runner
	ctx  context.Context
	spec fanSpec
	done func(*fanResult)

	mu       sync.Mutex
	res      fanResult
	attempts []int
	pending  [][]int // batches of call indexes waiting for a slot
	inflight int
	left     int // calls not yet settled
	finished bool
	nDone    int
	nFailed  int
}

// maxBatch bounds the calls of one job, so progress and cancellation stay
// responsive.
const maxBatch = 64

func (r *Runner) startFanout(ctx context.Context, spec fanSpec, done func(*fanResult)) {
	n := len(spec.calls)
	f := &fanout{r: r, ctx: host.WithLogInfo(ctx, spec.runID, spec.label, spec.logs), spec: spec, done: done, left: n, attempts: make([]int, n)}
	f.res.outputs = make([][]byte, n)
	if spec.skipErrors {
		f.res.errs = make([]error, n)
	}
	if n == 0 {
		done(&f.res)
		return
	}
	if f.spec.maxParallel <= 0 {
		f.spec.maxParallel = r.maxParallel
	}
	f.pending = batches(spec.calls, f.spec.maxParallel)
	f.mu.Lock()
	f.pump()
	f.mu.Unlock()
}

// batches splits calls into batches of consecutive calls of one task,
// small enough that each of maxParallel slots gets several, and at most
// maxBatch long. It returns the batches' call indexes.
func batches(calls []Call, maxParallel int) [][]int {
	n := len(calls)
	// More slots than calls would stay idle; bounding them keeps the
	// product from overflowing.
	size := n / (max(1, min(maxParallel, n)) * 4)
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

// pump submits pending batches while slots are free. Called with f.mu held.
func (f *fanout) pump() {
	for f.inflight < f.spec.maxParallel && len(f.pending) > 0 && !f.finished {
		idx := f.pending[0]
		f.pending = f.pending[1:]
		job := &broker.Job{Ctx: f.ctx, RunID: f.spec.runID, Tenant: f.r.tenant, Attempt: f.attempts[idx[0]],
			Step: f.spec.label, Task: f.spec.calls[idx[0]].Task, Limits: f.spec.limits, Index: idx[0], Inputs: make([][]byte, len(idx))}
		for k, i := range idx {
			job.Inputs[k] = f.spec.calls[i].Input
		}
		f.inflight++
		if err := f.r.broker.Submit(job, func(_ *broker.Job, res *broker.Result) { f.settle(idx, res) }); err != nil {
			f.inflight--
			f.failLocked(err, idx[0])
			return
		}
	}
}

// settle records a batch's results.
func (f *fanout) settle(idx []int, res *broker.Result) {
	f.mu.Lock()
	f.inflight--
	if f.finished {
		f.mu.Unlock()
		return
	}
	type retry struct {
		index, attempt int
		err            error
	}
	var retries []retry
	for k, i := range idx {
		err := res.Errs[k]
		if err == nil {
			f.res.outputs[i] = res.Outputs[k]
			f.nDone++
			f.left--
			continue
		}
		if f.attempts[i] < f.spec.retries && Retryable(err) && f.ctx.Err() == nil {
			f.attempts[i]++
			retries = append(retries, retry{i, f.attempts[i], err})
			i := i
			time.AfterFunc(backoff(f.r.retryBase, f.r.retryMax, f.attempts[i]), func() {
				f.mu.Lock()
				f.pending = append(f.pending, []int{i})
				f.pump()
				f.mu.Unlock()
			})
			continue
		}
		if f.spec.skipErrors && host.KindOf(err) != host.KindCanceled {
			f.res.errs[i] = err
			f.nDone++
			f.nFailed++
			f.left--
			continue
		}
		f.failLocked(err, i)
		f.mu.Unlock()
		return
	}
	nd, nf := f.nDone, f.nFailed
	complete := f.left == 0
	if complete {
		f.finished = true
	} else {
		f.pump()
	}
	f.mu.Unlock()
	for _, rt := range retries {
		if f.spec.onRetry != nil {
			f.spec.onRetry(rt.index, rt.attempt, rt.err)
		}
	}
	if f.spec.onProgress != nil {
		f.spec.onProgress(nd, nf)
	}
	if complete {
		f.done(&f.res)
	}
}

// failLocked ends the fan-out with err. Called with f.mu held; calls done
// on another goroutine so the caller may keep its lock. It does not cancel
// the run itself: done records err as the run's failure first and then
// cancels, so that no call canceled on its account can be reported
// instead of it.
func (f *fanout) failLocked(err error, index int) {
	if f.finished {
		return
	}
	f.finished = true
	f.res.err, f.res.index = err, index
	res := f.res
	go f.done(&res)
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
