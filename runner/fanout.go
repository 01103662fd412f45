package runner

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// Call is one task call of a step.
type Call struct {
	Task  *host.Task
	Input []byte
}

// fanSpec describes a set of calls run as one unit: a step's elements, a
// group's tasks, or one dataflow node.
type fanSpec struct {
	runID  string
	label  string
	kind   pipeline.Kind // "" for a dataflow node
	opts   pipeline.Options
	calls  []Call
	limits host.Limits
	// step is the step's (or node's) number, for the cache (Runner.cacheFor).
	step int
	// check, when set, judges each successful call's output: an error
	// fails the call, and the step (a filter's answer that is no boolean).
	check func(out []byte) error
	// onProgress is called, under no lock, after each batch.
	onProgress func(done, failed int)
	// onRetry is called when a call is scheduled again.
	onRetry func(index, attempt int, err error)
	// logs rate-limits the guest logs of the run's calls.
	logs *host.LogBudget
	// throttle, when set, is the step's concurrency key and rate: each
	// call then waits for its key's slot and its rate's token, holding
	// no worker. flow is what the keys read as `inputs`.
	throttle *dag.Throttle
	flow     pipeline.Inputs
}

// fanResult is the outcome of a fan-out: every call's output, or, when
// skipErrors, its final error. err is the first error that failed the
// fan-out (without skipErrors), with the index of its call.
type fanResult struct {
	outputs [][]byte
	errs    []error
	err     error
	index   int
	cached  int // outputs that came from the cache
	// fuel and peak are what the calls burned and the most memory one
	// ended with.
	fuel, peak uint64
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
	waiting  bool // for a slot of the tenant's (Runner.gate)
	nDone    int
	nFailed  int
	slots    int
	// lookups are the calls' cache lookups, by call (nil: no cache);
	// pos is each call's place in its lookup.
	lookups []*cache.Batch
	pos     []int
	// A throttled fan-out's calls wait in tq, with their keys; it is
	// woken by a slot given back (slotWait) or a token's time (timer).
	tq       *throttleQueue
	keys     []callKeys
	slotWait bool
	timer    bool

	// A fan-out of one call (a dataflow node, a call step) keeps its
	// slices here: one allocation, not four.
	one struct {
		attempts [1]int
		outputs  [1][]byte
		pending  [1][]int
		inputs   [1][]byte
	}
}

// firstCall is the batch of a fan-out of one call; never written.
var firstCall = []int{0}

// callKeys are a throttled call's concurrency and rate keys (CallKeys).
type callKeys struct{ conc, rate string }

// maxBatch bounds the calls of one in-process job, so progress and
// cancellation stay responsive. (A Redis worker's batches are longer,
// WorkerConfig.BatchSize, since each costs a round trip.)
const maxBatch = 64

func (r *Runner) startFanout(ctx context.Context, spec fanSpec, done func(*fanResult)) {
	n := len(spec.calls)
	f := &fanout{r: r, ctx: host.WithLogInfo(ctx, spec.runID, spec.label, spec.logs), spec: spec, done: done, left: n}
	if n == 1 {
		f.attempts, f.res.outputs = f.one.attempts[:], f.one.outputs[:]
	} else {
		f.attempts, f.res.outputs = make([]int, n), make([][]byte, n)
	}
	if spec.opts.SkipErrors {
		f.res.errs = make([]error, n)
	}
	if n == 0 {
		done(&f.res)
		return
	}
	f.slots = spec.opts.MaxParallel
	if f.slots <= 0 {
		f.slots = r.maxParallel
	}
	if store := r.cacheFor(spec.step); store != nil {
		// Hits are served here, at once; only the misses are handed on.
		f.pending = f.lookup(store)
		if f.left == 0 {
			f.finished = true
			done(&f.res)
			return
		}
		if f.nDone > 0 && spec.onProgress != nil {
			spec.onProgress(f.nDone, 0)
		}
	} else if n == 1 {
		f.one.pending[0] = firstCall
		f.pending = f.one.pending[:]
	} else {
		f.pending = Batches(spec.calls, f.slots, maxBatch)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if spec.throttle != nil {
		// One call a job, each with its keys.
		f.tq, f.keys = &throttleQueue{}, make([]callKeys, n)
		keyers := map[*host.Task]*Keyer{}
		for _, b := range f.pending {
			for _, i := range b {
				t := spec.calls[i].Task
				if keyers[t] == nil {
					keyers[t] = NewKeyer(spec.throttle, t, spec.flow)
				}
				conc, rate, err := keyers[t].Keys(spec.calls[i].Input)
				if err != nil {
					f.failLocked(err, i)
					return
				}
				f.keys[i] = callKeys{conc, rate}
				f.tq.push(i, conc, rate)
			}
		}
		f.pending = nil
	}
	f.pump()
}

// lookup looks every call up in store, one batch per task, serves the
// hits and returns the batches of the calls left to run. Called before
// any job is submitted.
func (f *fanout) lookup(store cache.Store) [][]int {
	calls := f.spec.calls
	f.lookups, f.pos = make([]*cache.Batch, len(calls)), make([]int, len(calls))
	var miss []int
	for start := 0; start < len(calls); {
		t := calls[start].Task
		var idx []int
		for i := start; i < len(calls); i++ {
			if calls[i].Task == t && f.lookups[i] == nil {
				idx = append(idx, i)
			}
		}
		inputs := make([][]byte, len(idx))
		for k, i := range idx {
			inputs[k] = calls[i].Input
		}
		b := cache.NewBatch(f.ctx, store, t, f.spec.limits, inputs)
		hits := 0
		for k, i := range idx {
			f.lookups[i], f.pos[i] = b, k
			// A stored answer the step's check refuses (a filter's that is
			// no boolean) is not served: the call runs.
			if out, ok := b.Hit(k); ok && (f.spec.check == nil || f.spec.check(out) == nil) {
				f.res.outputs[i] = out
				hits++
				continue
			}
			miss = append(miss, i)
		}
		f.res.cached += hits
		f.nDone += hits
		f.left -= hits
		f.r.metrics.Task(f.r.tenant, t.Module().Name, t.Spec.Name).Served(hits)
		for start < len(calls) && f.lookups[start] != nil {
			start++
		}
	}
	slices.Sort(miss) // a group's calls, looked up task by task
	todo := make([]Call, len(miss))
	for k, i := range miss {
		todo[k] = calls[i]
	}
	batches := Batches(todo, f.slots, maxBatch)
	for _, b := range batches {
		for k := range b {
			b[k] = miss[b[k]]
		}
	}
	return batches
}

// jobCache is the cache lookups of the calls idx (of one task), for
// their job; nil without a cache.
func (f *fanout) jobCache(idx []int) *cache.Batch {
	if f.lookups == nil {
		return nil
	}
	pos := make([]int, len(idx))
	for k, i := range idx {
		pos[k] = f.pos[i]
	}
	return f.lookups[idx[0]].Sub(pos)
}

// pump submits pending batches while slots are free. Called with f.mu held.
func (f *fanout) pump() {
	if f.tq != nil {
		f.pumpThrottled()
		return
	}
	for f.inflight < f.slots && len(f.pending) > 0 && !f.finished {
		if !f.r.gate.take() {
			if !f.waiting {
				f.waiting = true
				f.r.gate.wait(f.wake)
			}
			return
		}
		idx := f.pending[0]
		f.pending = f.pending[1:]
		job := &broker.Job{Ctx: f.ctx, RunID: f.spec.runID, Tenant: f.r.tenant, Attempt: f.attempts[idx[0]], Priority: f.r.priority,
			Step: f.spec.label, Task: f.spec.calls[idx[0]].Task, Limits: f.spec.limits, Index: idx[0], Cache: f.jobCache(idx)}
		if len(f.spec.calls) == 1 { // one job at a time: its retry comes after it
			f.one.inputs[0] = f.spec.calls[0].Input
			job.Inputs = f.one.inputs[:]
		} else {
			job.Inputs = make([][]byte, len(idx))
			for k, i := range idx {
				job.Inputs[k] = f.spec.calls[i].Input
			}
		}
		f.inflight++
		queued, attempt := time.Now(), job.Attempt
		if err := f.r.broker.Submit(job, func(_ *broker.Job, res *broker.Result) {
			f.r.gate.give()
			f.batchDone(idx, attempt, queued, res)
			f.settle(idx, res)
		}); err != nil {
			go f.r.gate.give() // not under f.mu: give may wake this fan-out
			f.inflight--
			f.failLocked(err, idx[0])
			return
		}
	}
}

// pumpThrottled submits the calls whose key has a free slot and whose
// rate a token, one a job, while the fan-out's slots allow; when none
// may start, it waits for a slot or a token holding no worker. Called
// with f.mu held.
func (f *fanout) pumpThrottled() {
	lim := f.r.limiter
	for f.inflight < f.slots && !f.tq.empty() && !f.finished {
		if !f.r.gate.take() {
			if !f.waiting {
				f.waiting = true
				f.r.gate.wait(f.wake)
			}
			return
		}
		i, conc, ok, wait := f.tq.next(lim, f.spec.throttle)
		if !ok {
			go f.r.gate.give() // not under f.mu: give may wake this fan-out
			if wait > 0 && !f.timer {
				f.timer = true
				time.AfterFunc(wait, func() {
					f.mu.Lock()
					f.timer = false
					f.pump()
					f.mu.Unlock()
				})
			}
			if !f.slotWait {
				f.slotWait = true
				lim.wait(func() {
					f.mu.Lock()
					f.slotWait = false
					f.pump()
					f.mu.Unlock()
				})
			}
			return
		}
		idx := []int{i}
		job := &broker.Job{Ctx: f.ctx, RunID: f.spec.runID, Tenant: f.r.tenant, Attempt: f.attempts[i], Priority: f.r.priority,
			Step: f.spec.label, Task: f.spec.calls[i].Task, Limits: f.spec.limits, Index: i, Inputs: [][]byte{f.spec.calls[i].Input},
			Cache: f.jobCache(idx)}
		f.inflight++
		queued, attempt := time.Now(), job.Attempt
		if err := f.r.broker.Submit(job, func(_ *broker.Job, res *broker.Result) {
			lim.give(conc)
			f.r.gate.give()
			f.batchDone(idx, attempt, queued, res)
			f.settle(idx, res)
		}); err != nil {
			go func() { lim.give(conc); f.r.gate.give() }()
			f.inflight--
			f.failLocked(err, i)
			return
		}
	}
}

// requeue puts call i back to wait for its turn (a retry).
func (f *fanout) requeue(i int) {
	if f.tq != nil {
		f.tq.push(i, f.keys[i].conc, f.keys[i].rate)
		return
	}
	f.pending = append(f.pending, []int{i})
}

// wake pumps again once a slot of the tenant's is free.
func (f *fanout) wake() {
	f.mu.Lock()
	f.waiting = false
	f.pump()
	f.mu.Unlock()
}

// settle records a batch's results.
func (f *fanout) settle(idx []int, res *broker.Result) {
	f.mu.Lock()
	f.inflight--
	if f.finished {
		f.mu.Unlock()
		return
	}
	f.res.cached += res.Cached
	f.res.fuel, f.res.peak = f.res.fuel+res.Fuel, max(f.res.peak, res.PeakMemory)
	type retry struct {
		index, attempt int
		err            error
	}
	var retries []retry
	for k, i := range idx {
		err := res.Errs[k]
		if err == nil && f.spec.check != nil {
			if err = f.spec.check(res.Outputs[k]); err != nil {
				f.failLocked(err, i)
				f.mu.Unlock()
				return
			}
		}
		if err == nil {
			f.res.outputs[i] = res.Outputs[k]
			f.nDone++
			f.left--
			continue
		}
		switch OnFailure(f.ctx, err, f.attempts[i], f.spec.kind, f.spec.opts) {
		case Retry:
			f.attempts[i]++
			retries = append(retries, retry{i, f.attempts[i], err})
			i := i
			time.AfterFunc(backoff(f.r.retryBase, f.r.retryMax, f.attempts[i]), func() {
				f.mu.Lock()
				f.requeue(i)
				f.pump()
				f.mu.Unlock()
			})
			continue
		case Skip:
			f.recordFailure(i, err)
			f.res.errs[i] = err
			f.nDone++
			f.nFailed++
			f.left--
			continue
		}
		f.recordFailure(i, err)
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

// batchDone hands a settled batch's times to Config.OnBatch.
func (f *fanout) batchDone(idx []int, attempt int, queued time.Time, res *broker.Result) {
	if f.r.onBatch == nil || f.spec.kind == "" {
		return
	}
	failed := 0
	for _, err := range res.Errs {
		if err != nil {
			failed++
		}
	}
	started := res.Started
	if started.IsZero() {
		started = queued
	}
	f.r.onBatch(f.spec.runID, f.spec.step, track.BatchTime{Index: idx[0], Attempt: attempt, Calls: len(idx), Failed: failed,
		Queued: queued.UnixMilli(), Started: started.UnixMilli(), Finished: time.Now().UnixMilli()})
}

// recordFailure hands call i's final failure to Config.OnFailedCall:
// the exact input the task saw, its module and limits. A call canceled
// because its run ended failed on another's account: not recorded.
func (f *fanout) recordFailure(i int, err error) {
	if f.r.onFailedCall == nil || !OwnFailure(err) {
		return
	}
	c := f.spec.calls[i]
	input := c.Input
	if f.lookups != nil {
		input = f.lookups[i].Input(f.pos[i], input)
	}
	elem := -1
	switch f.spec.kind {
	case pipeline.Map, pipeline.Filter, pipeline.Group:
		elem = i
	}
	f.r.onFailedCall(track.FailedCall{Step: f.spec.step, Element: elem, Label: f.spec.label, Module: f.r.alias(c.Task.Module()),
		SHA256: c.Task.Module().SHA256, Task: c.Task.Spec.Name, Input: input, Limits: f.spec.limits, Attempts: f.attempts[i] + 1, Error: err.Error()})
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

// gate bounds the calls of a runner's tenant in flight at once
// (policy.Tenant.MaxConcurrent), across all its runs and steps. A fan-out
// that finds no slot waits for one without holding a worker. A nil gate
// bounds nothing.
type gate struct {
	mu      sync.Mutex
	free    int
	waiters []func()
}

func newGate(n int) *gate {
	if n <= 0 {
		return nil
	}
	return &gate{free: n}
}

// take takes a slot, if one is free.
func (g *gate) take() bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.free == 0 {
		return false
	}
	g.free--
	return true
}

// wait calls wake, once, when a slot is given back.
func (g *gate) wait(wake func()) {
	g.mu.Lock()
	g.waiters = append(g.waiters, wake)
	g.mu.Unlock()
}

// give gives a slot back and wakes every waiting fan-out: the first to
// take the slot gets it, the others wait again.
func (g *gate) give() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.free++
	ws := g.waiters
	g.waiters = nil
	g.mu.Unlock()
	for _, w := range ws {
		w()
	}
}
