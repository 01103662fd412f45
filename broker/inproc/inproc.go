// Package inproc is the embedded broker: a pool of goroutines in the
// calling process that runs jobs on the host engine's warm instances.
package inproc

import (
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/policy"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("inproc: broker closed")

type item struct {
	job  *broker.Job
	done func(*broker.Job, *broker.Result)
}

// lane is one tenant's queued jobs, one first-in-first-out queue per
// priority.
type lane struct {
	tenant string
	q      [policy.MaxPriority + 1][]item
	n      int
}

// Broker runs jobs on a fixed set of worker goroutines. The tenants with
// jobs queued take turns; of one tenant's jobs, the oldest of the
// highest priority goes first. So priorities order a tenant's own work
// and never put one tenant's before another's.
type Broker struct {
	workers int
	metrics *metrics.Metrics
	mu      sync.Mutex
	cond    *sync.Cond
	lanes   map[string]*lane
	active  []*lane // the lanes with jobs, in turn
	turn    int
	// queued counts the jobs waiting; finishing the workers in a job's
	// done callback, each of which takes a job next without being woken.
	queued, finishing int
	closed            bool
	wg                sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// Option configures a Broker.
type Option func(*Broker)

// WithMetrics records every call in m.
func WithMetrics(m *metrics.Metrics) Option { return func(b *Broker) { b.metrics = m } }

// New starts a broker with n workers; n <= 0 means GOMAXPROCS, one call
// per core.
func New(n int, opts ...Option) *Broker {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	b := &Broker{workers: n, lanes: map[string]*lane{}}
	for _, o := range opts {
		o(b)
	}
	b.cond = sync.NewCond(&b.mu)
	b.wg.Add(n)
	for range n {
		go b.work()
	}
	return b
}

// Workers reports the pool size.
func (b *Broker) Workers() int { return b.workers }

// Submit queues a job.
func (b *Broker) Submit(job *broker.Job, done func(*broker.Job, *broker.Result)) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	l := b.lanes[job.Tenant]
	if l == nil {
		l = &lane{tenant: job.Tenant}
		b.lanes[job.Tenant] = l
	}
	if l.n == 0 {
		b.active = append(b.active, l)
	}
	p := policy.Priority(job.Priority)
	if policy.CheckPriority(p) != nil {
		p = policy.DefaultPriority
	}
	l.q[p] = append(l.q[p], item{job, done})
	l.n++
	b.queued++
	wake := b.queued > b.finishing // else a worker finishing a job takes it next
	b.mu.Unlock()
	if wake {
		b.cond.Signal()
	}
	return nil
}

// Close lets the queued jobs finish, then stops the workers.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
	b.wg.Wait()
	return nil
}

func (b *Broker) next() (item, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.active) == 0 {
		if b.closed {
			return item{}, false
		}
		b.cond.Wait()
	}
	if b.turn >= len(b.active) {
		b.turn = 0
	}
	l := b.active[b.turn]
	p := policy.MaxPriority
	for len(l.q[p]) == 0 {
		p--
	}
	it := l.q[p][0]
	l.q[p][0] = item{}
	if l.q[p] = l.q[p][1:]; len(l.q[p]) == 0 {
		l.q[p] = nil
	}
	b.queued--
	if l.n--; l.n == 0 {
		b.active = append(b.active[:b.turn], b.active[b.turn+1:]...)
		if len(b.lanes) > maxIdleLanes {
			delete(b.lanes, l.tenant)
		}
	} else {
		b.turn++
	}
	return it, true
}

// maxIdleLanes bounds the lanes kept for tenants with nothing queued.
const maxIdleLanes = 1024

func (b *Broker) work() {
	defer b.wg.Done()
	for {
		it, ok := b.next()
		if !ok {
			return
		}
		res := Run(it.job, b.metrics)
		b.mu.Lock()
		b.finishing++
		b.mu.Unlock()
		it.done(it.job, res)
		b.mu.Lock()
		b.finishing--
		b.mu.Unlock()
	}
}

// result1 is the Result of a job of one call, with its slices' arrays:
// one allocation, where a dataflow node's job would otherwise take three.
type result1 struct {
	broker.Result
	outputs [1][]byte
	errs    [1]error
}

// newResult makes the Result of a job of n calls.
func newResult(n int) *broker.Result {
	if n == 1 {
		r := &result1{}
		r.Outputs, r.Errs = r.outputs[:], r.errs[:]
		return &r.Result
	}
	return &broker.Result{Outputs: make([][]byte, n), Errs: make([]error, n)}
}

// Run executes a job's calls in order on the calling goroutine, recording
// them in m (which may be nil). Calls not yet started when the job's
// context ends fail as canceled.
func Run(job *broker.Job, m *metrics.Metrics) *broker.Result {
	res := newResult(len(job.Inputs))
	res.Started = time.Now()
	tm := m.Task(job.Tenant, job.Task.Module().Name, job.Task.Spec.Name)
	var start time.Time
	calls, ok := 0, 0
	timer := tm.Timer()
	batch := job.Cache
	if batch == nil {
		batch = cache.NewBatch(job.Ctx, nil, job.Task, job.Limits, job.Inputs)
	}
	defer batch.Flush(job.Ctx)
	for i, in := range job.Inputs {
		if err := job.Ctx.Err(); err != nil {
			res.Errs[i] = &host.TaskError{Kind: host.KindCanceled, Module: job.Task.Module().Name, Task: job.Task.Spec.Name, Msg: "the run was canceled before the call started"}
			continue
		}
		var hit bool
		if tm == nil {
			var st host.CallStats
			res.Outputs[i], hit, st, res.Errs[i] = batch.Call(job.Ctx, i, in)
			res.Fuel, res.PeakMemory = res.Fuel+st.Fuel, max(res.PeakMemory, st.Memory)
			if hit {
				res.Cached++
			}
			continue
		}
		// One clock reading per call: each call ends where the next starts.
		if start.IsZero() {
			start = time.Now()
		}
		var st host.CallStats
		res.Outputs[i], hit, st, res.Errs[i] = batch.Call(job.Ctx, i, in)
		res.Fuel, res.PeakMemory = res.Fuel+st.Fuel, max(res.PeakMemory, st.Memory)
		if hit {
			res.Cached++
			tm.CacheHit()
		} else if batch.Cached(i) {
			tm.CacheMiss()
		}
		end := time.Now()
		timer.Observe(end.Sub(start))
		start = end
		calls++
		if res.Errs[i] != nil {
			tm.Failed(res.Errs[i])
		} else {
			ok++
		}
	}
	timer.Flush()
	tm.Batch(calls, ok, job.Attempt > 0)
	return res
}
