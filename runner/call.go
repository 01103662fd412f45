package runner

import (
	"context"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/host"
)

// oneCall runs exactly one call as a unit of its own, a dataflow node's,
// as a fan-out of that one call would: served from the cache when it can
// be, submitted once the tenant's slot, its concurrency key's slot and
// its rate's token allow, holding no worker while it waits, and retried
// with backoff. Its owner is told of each retry, then of the outcome. A
// node's call has no kind: no check, no progress, no batch times, and
// nothing skipped.
//
// The fan-out does the same for thousands of calls, and costs as much
// for one. A oneCall is kept by its owner, and may run another call once
// it told its owner the outcome of the last (a dataflow run keeps those
// of its nodes in flight): starting one allocates only its context. A
// wake-up it waited for may still come after its call ended: it pumps
// whatever call it runs then, which is harmless, as pump checks what may
// start.
type oneCall struct {
	sync.Mutex
	waits
	r     *Runner
	ctx   context.Context
	spec  unitSpec
	calls [1]Call
	owner callOwner
	lookups
	keys    callKeys
	attempt int  // the retry under way (0: the first try)
	queued  bool // waiting for its turn: neither in flight nor in a retry's backoff
	over    bool // the outcome is decided
	res     fanResult
	outputs [1][]byte
	inputs  [1][]byte
	// job is the job of each try in turn: a broker reads a job no more
	// once it called its done (the fan-out's one call keeps its inputs
	// so too). done is its callback, made once.
	job  broker.Job
	done func(*broker.Job, *broker.Result)
}

// callOwner is told what becomes of a oneCall: each retry (its number,
// from 1, and the failure behind it), then, once, the outcome: res.err
// set when the call failed for good, else res.outputs[0]. Neither is
// called under the call's lock.
type callOwner interface {
	retried(attempt int, err error)
	finished(res *fanResult)
}

// start runs c, call of spec, for owner. On a failure (res.err), owner
// records it as the run's, then cancels the run's other work, as a
// fan-out's done does.
func (o *oneCall) start(r *Runner, ctx context.Context, spec *unitSpec, c Call, owner callOwner) {
	o.Lock() // a wake-up of the last call may come at any time
	o.r, o.spec, o.owner, o.calls[0] = r, *spec, owner, c
	o.ctx = host.WithLogInfo(ctx, spec.runID, spec.label, spec.logs)
	o.lookups, o.keys, o.attempt, o.queued, o.over = lookups{}, callKeys{}, 0, false, false
	o.res, o.outputs = fanResult{outputs: o.outputs[:]}, [1][]byte{}
	if store := r.cacheFor(spec.step); store != nil {
		// A hit is served here, at once; only a miss is handed on.
		var miss []int
		if o.lookups, miss = r.lookup(o.ctx, store, spec, o.calls[:], nil, o.res.outputs); len(miss) == 0 {
			o.res.cached, o.over = 1, true
			o.Unlock()
			owner.finished(&o.res)
			return
		}
	}
	defer o.Unlock()
	if spec.throttle != nil {
		conc, rate, err := CallKeys(spec.throttle, c.Task, spec.flow, c.Input)
		if err != nil {
			o.failLocked(err)
			return
		}
		o.keys = callKeys{conc, rate}
	}
	o.queued = true
	o.pump()
}

// pump submits the call when it waits for its turn and may start: a
// slot of the tenant's, and when throttled its key's slot and its rate's
// token. Called with o's lock held.
func (o *oneCall) pump() {
	if !o.queued || o.over || !o.admit(o.r.gate, o) {
		return
	}
	if th := o.spec.throttle; th != nil {
		if ok, wait := o.r.limiter.take(o.keys.conc, th.Limit, o.keys.rate, th.Rate, time.Now()); !ok {
			o.throttled(o.r, wait, o)
			return
		}
	}
	o.queued = false
	job := &o.job
	*job = o.r.job(o.ctx, &o.spec, o.calls[0], 0, o.attempt, o.jobCache(firstCall))
	o.inputs[0] = o.calls[0].Input
	job.Inputs = o.inputs[:]
	if o.done == nil {
		o.done = func(_ *broker.Job, res *broker.Result) {
			o.r.release(o.keys.conc) // the keys stay until the outcome is told
			o.settle(res)
		}
	}
	if err := o.r.broker.Submit(job, o.done); err != nil {
		go o.r.release(o.keys.conc) // not under o's lock: giving may wake o
		o.failLocked(err)
	}
}

// settle records the result of a try: the output, a retry, or the
// call's failure.
func (o *oneCall) settle(res *broker.Result) {
	o.Lock()
	if o.over {
		o.Unlock()
		return
	}
	o.res.cached += res.Cached
	o.res.fuel, o.res.peak = o.res.fuel+res.Fuel, max(o.res.peak, res.PeakMemory)
	err := res.Errs[0]
	if err == nil {
		o.outputs[0], o.over = res.Outputs[0], true
		o.Unlock()
		o.owner.finished(&o.res)
		return
	}
	if OnFailure(o.ctx, err, o.attempt, o.spec.kind, o.spec.opts) == Retry {
		o.attempt++
		attempt := o.attempt
		o.r.retry(o, attempt, func() { o.queued = true })
		o.Unlock()
		o.owner.retried(attempt, err)
		return
	}
	o.r.recordFailure(&o.spec, &o.lookups, o.calls[0], 0, o.attempt+1, err)
	o.failLocked(err)
	o.Unlock()
}

// failLocked ends the call with err, as fanout.failLocked ends a
// fan-out: the owner is told on another goroutine. Called with o's lock
// held.
func (o *oneCall) failLocked(err error) {
	if o.over {
		return
	}
	o.over = true
	o.res.err = err
	go o.owner.finished(&o.res)
}
