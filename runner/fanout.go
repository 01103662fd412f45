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

// unitSpec is what the calls of a unit share: the calls of a fan-out (a
// step's elements, a group's tasks), or the one call of a dataflow node
// (oneCall).
type unitSpec struct {
	runID  string
	label  string
	kind   pipeline.Kind // "" for a dataflow node
	opts   pipeline.Options
	limits host.Limits
	// step is the step's (or node's) number, for the cache (Runner.cacheFor).
	step int
	// logs rate-limits the guest logs of the run's calls.
	logs *host.LogBudget
	// throttle, when set, is the step's concurrency key and rate: each
	// call then waits for its key's slot and its rate's token, holding
	// no worker. flow is what the keys read as `inputs`.
	throttle *dag.Throttle
	flow     pipeline.Inputs
}

// fanSpec describes a set of calls run as one unit: a step's elements or
// a group's tasks.
type fanSpec struct {
	unitSpec
	calls []Call
	// check, when set, judges each successful call's output: an error
	// fails the call, and the step (a filter's answer that is no boolean).
	check func(out []byte) error
	// onProgress is called, under no lock, after each batch.
	onProgress func(done, failed int)
	// onRetry is called when a call is scheduled again.
	onRetry func(index, attempt int, err error)
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

	sync.Mutex
	waits
	res      fanResult
	attempts []int
	pending  [][]int // batches of call indexes waiting for a slot
	inflight int
	left     int // calls not yet settled
	finished bool
	nDone    int
	nFailed  int
	slots    int
	lookups
	// A throttled fan-out's calls wait in tq, with their keys.
	tq   *throttleQueue
	keys []callKeys

	// A fan-out of one call (a call step) keeps its
	// slices here: one allocation, not four.
	one struct {
		attempts [1]int
		outputs  [1][]byte
		pending  [1][]int
		inputs   [1][]byte
	}
}

// firstCall is the batch of a unit of one call (a fan-out's, a
// oneCall's); never written.
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
		var miss []int
		f.lookups, miss = r.lookup(f.ctx, store, &spec.unitSpec, spec.calls, spec.check, f.res.outputs)
		hits := n - len(miss)
		f.res.cached += hits
		f.nDone += hits
		f.left -= hits
		f.pending = f.batches(miss)
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
	f.Lock()
	defer f.Unlock()
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

// lookup looks each of calls (of spec) up in store, one batch per
// task, and serves the hits whose output check (when set) accepts: their
// outputs go to outputs. It returns the calls' lookups and the calls left
// to run, in order. Called before any of the calls is submitted.
func (r *Runner) lookup(ctx context.Context, store cache.Store, spec *unitSpec, calls []Call, check func([]byte) error, outputs [][]byte) (l lookups, miss []int) {
	l.batches, l.pos = make([]*cache.Batch, len(calls)), make([]int, len(calls))
	for start := 0; start < len(calls); {
		t := calls[start].Task
		var idx []int
		for i := start; i < len(calls); i++ {
			if calls[i].Task == t && l.batches[i] == nil {
				idx = append(idx, i)
			}
		}
		inputs := make([][]byte, len(idx))
		for k, i := range idx {
			inputs[k] = calls[i].Input
		}
		b := cache.NewBatch(ctx, store, t, spec.limits, inputs)
		hits := 0
		for k, i := range idx {
			l.batches[i], l.pos[i] = b, k
			// A stored answer the step's check refuses (a filter's that is
			// no boolean) is not served: the call runs.
			if out, ok := b.Hit(k); ok && (check == nil || check(out) == nil) {
				outputs[i] = out
				hits++
				continue
			}
			miss = append(miss, i)
		}
		r.metrics.Task(r.tenant, t.Module().Name, t.Spec.Name).Served(hits)
		for start < len(calls) && l.batches[start] != nil {
			start++
		}
	}
	slices.Sort(miss) // a group's calls, looked up task by task
	return l, miss
}

// batches are the batches of the fan-out's calls miss, the ones its
// cache did not serve.
func (f *fanout) batches(miss []int) [][]int {
	todo := make([]Call, len(miss))
	for k, i := range miss {
		todo[k] = f.spec.calls[i]
	}
	batches := Batches(todo, f.slots, maxBatch)
	for _, b := range batches {
		for k := range b {
			b[k] = miss[b[k]]
		}
	}
	return batches
}

// lookups are a unit's cache lookups of its calls (cache.Batch), by call,
// and each call's place in its lookup; nil without a cache.
type lookups struct {
	batches []*cache.Batch
	pos     []int
}

// jobCache is the cache lookups of the calls idx (of one task), for
// their job; nil without a cache.
func (l *lookups) jobCache(idx []int) *cache.Batch {
	if l.batches == nil {
		return nil
	}
	pos := make([]int, len(idx))
	for k, i := range idx {
		pos[k] = l.pos[i]
	}
	return l.batches[idx[0]].Sub(pos)
}

// input is the input call i runs on (cache.Batch.Input), given its own.
func (l *lookups) input(i int, input []byte) []byte {
	if l.batches == nil {
		return input
	}
	return l.batches[i].Input(l.pos[i], input)
}

// job is the job of call c of spec, the index-th of its unit, on its
// attempt-th retry (0: the first try), with the call's lookup (or nil);
// its Inputs are the caller's to set.
func (r *Runner) job(ctx context.Context, spec *unitSpec, c Call, index, attempt int, lookup *cache.Batch) broker.Job {
	return broker.Job{Ctx: ctx, RunID: spec.runID, Tenant: r.tenant, Attempt: attempt, Priority: r.priority,
		Step: spec.label, Task: c.Task, Limits: spec.limits, Index: index, Cache: lookup}
}

// release gives back the slots a call held: its concurrency key's (conc,
// "" for none) and the tenant's.
func (r *Runner) release(conc string) {
	r.limiter.give(conc)
	r.gate.give()
}

// retry has u run a failed call again after the backoff of its
// attempt-th retry: requeue puts it back to wait for its turn, under
// u's lock, and u is pumped.
func (r *Runner) retry(u pumper, attempt int, requeue func()) {
	time.AfterFunc(backoff(r.retryBase, r.retryMax, attempt), func() {
		u.Lock()
		requeue()
		u.pump()
		u.Unlock()
	})
}

// pumper is a unit of calls (a fanout, a oneCall): pump, called with its
// lock held, submits the calls that may start.
type pumper interface {
	sync.Locker
	pump()
}

// waits are the wake-ups a unit of calls waits for, at most one of each
// pending: a slot of the tenant's (Runner.gate), a slot of a concurrency
// key given back, a rate's token. Each pumps the unit again. Guarded by
// the unit's lock.
type waits struct{ gate, slot, timer bool }

// repump is a wake-up of u: it clears the flag of its wait, then pumps u.
func repump(u pumper, pending *bool) func() {
	return func() {
		u.Lock()
		*pending = false
		u.pump()
		u.Unlock()
	}
}

// admit takes a slot of the tenant's for a call of u; when none is free,
// u is pumped again once one is given back. Called with u's lock held.
func (w *waits) admit(g *gate, u pumper) bool {
	if g.take() {
		return true
	}
	if !w.gate {
		w.gate = true
		g.wait(repump(u, &w.gate))
	}
	return false
}

// throttled gives back the tenant's slot u took for a call its throttle
// holds back, and has u pumped again when a concurrency key's slot is
// given back and, when wait is positive, once a token may have come.
// Called with u's lock held.
func (w *waits) throttled(r *Runner, wait time.Duration, u pumper) {
	go r.gate.give() // not under u's lock: give may wake u
	if wait > 0 && !w.timer {
		w.timer = true
		time.AfterFunc(wait, repump(u, &w.timer))
	}
	if !w.slot {
		w.slot = true
		r.limiter.wait(repump(u, &w.slot))
	}
}

// pump submits pending batches while slots are free. Called with f's
// lock held.
func (f *fanout) pump() {
	if f.tq != nil {
		f.pumpThrottled()
		return
	}
	for f.inflight < f.slots && len(f.pending) > 0 && !f.finished {
		if !f.admit(f.r.gate, f) {
			return
		}
		idx := f.pending[0]
		f.pending = f.pending[1:]
		if !f.submit(idx, "") {
			return
		}
	}
}

// pumpThrottled submits the calls whose key has a free slot and whose
// rate a token, one a job, while the fan-out's slots allow; when none
// may start, it waits for a slot or a token holding no worker. Called
// with f's lock held.
func (f *fanout) pumpThrottled() {
	for f.inflight < f.slots && !f.tq.empty() && !f.finished {
		if !f.admit(f.r.gate, f) {
			return
		}
		i, conc, ok, wait := f.tq.next(f.r.limiter, f.spec.throttle)
		if !ok {
			f.throttled(f.r, wait, f)
			return
		}
		if !f.submit([]int{i}, conc) {
			return
		}
	}
}

// submit hands the calls idx to the broker as one job, holding a slot of
// the tenant's and, for a throttled call, its key's (conc). It reports
// whether the broker took the job; when not, the fan-out fails. Called
// with f's lock held.
func (f *fanout) submit(idx []int, conc string) bool {
	i := idx[0]
	job := new(broker.Job)
	*job = f.r.job(f.ctx, &f.spec.unitSpec, f.spec.calls[i], i, f.attempts[i], f.jobCache(idx))
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
		f.r.release(conc)
		f.batchDone(idx, attempt, queued, res)
		f.settle(idx, res)
	}); err != nil {
		go f.r.release(conc) // not under f's lock: giving may wake this fan-out
		f.inflight--
		f.failLocked(err, i)
		return false
	}
	return true
}

// requeue puts call i back to wait for its turn (a retry).
func (f *fanout) requeue(i int) {
	if f.tq != nil {
		f.tq.push(i, f.keys[i].conc, f.keys[i].rate)
		return
	}
	f.pending = append(f.pending, []int{i})
}

// settle records a batch's results.
func (f *fanout) settle(idx []int, res *broker.Result) {
	f.Lock()
	f.inflight--
	if f.finished {
		f.Unlock()
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
				f.Unlock()
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
			f.r.retry(f, f.attempts[i], func() { f.requeue(i) })
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
		f.Unlock()
		return
	}
	nd, nf := f.nDone, f.nFailed
	complete := f.left == 0
	if complete {
		f.finished = true
	} else {
		f.pump()
	}
	f.Unlock()
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

// recordFailure hands call i's final failure to Config.OnFailedCall.
func (f *fanout) recordFailure(i int, err error) {
	f.r.recordFailure(&f.spec.unitSpec, &f.lookups, f.spec.calls[i], i, f.attempts[i]+1, err)
}

// recordFailure hands the final failure of call c, the i-th of a unit of
// spec, after attempts tries, to Config.OnFailedCall: the exact input the
// task saw (l has the unit's lookups), its module and limits. A call
// canceled because its run ended failed on another's account: not
// recorded.
func (r *Runner) recordFailure(spec *unitSpec, l *lookups, c Call, i, attempts int, err error) {
	if r.onFailedCall == nil || !OwnFailure(err) {
		return
	}
	elem := -1
	if fans(spec.kind) {
		elem = i
	}
	r.onFailedCall(track.FailedCall{Step: spec.step, Element: elem, Label: spec.label, Module: r.alias(c.Task.Module()),
		SHA256: c.Task.Module().SHA256, Task: c.Task.Spec.Name, Input: l.input(i, c.Input), Limits: spec.limits, Attempts: attempts, Error: err.Error()})
}

// failLocked ends the fan-out with err. Called with f's lock held; calls done
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
