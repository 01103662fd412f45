package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// Concurrency is how many batches run at once; default GOMAXPROCS.
	Concurrency int
	// Lease is how long a message may go without a heartbeat before
	// another worker takes it over; default 5 s.
	Lease time.Duration
	// MaxDeliveries sends a message delivered more often to the
	// dead-letter stream and fails its run; default 5.
	MaxDeliveries int64
	// BatchSize bounds the calls of one message; default 256.
	BatchSize int
	// Drain bounds how long a stopping worker waits for its running
	// batches before handing them back; default 30 s.
	Drain  time.Duration
	Engine *host.Engine
	Logger *slog.Logger
	// Metrics records calls and queue gauges; nil records nothing.
	Metrics *metrics.Metrics
	// Tenants are the tenants served and their maxima; nil serves every
	// tenant with no maxima.
	Tenants *tenant.Config
	// Name identifies the worker in the consumer group; default host-pid.
	Name string
	// CacheTTL is how long a tenant's cached results live after their last
	// use (0: DefaultCacheTTL); negative caches nothing.
	CacheTTL time.Duration
}

// Worker serves the tasks of every tenant's stream.
type Worker struct {
	cfg WorkerConfig
	rdb goredis.UniversalClient
	k   keyspace // its client's
	// lastRead is the tenant whose stream last gave this worker a
	// message (on a cluster, the one an idle read blocks on). Under mu.
	lastRead string
	log      *slog.Logger

	mu       sync.Mutex
	modules  *lru[*host.Module]         // tenant/sha256 → module, bounded
	runs     *lru[*runState]            // tenant/run → plan, bounded: a tenant may leave runs that never end
	inflight map[string]map[string]bool // stream → message ids
	held     map[string]*throttled      // concurrency slots the running batches hold, by holder
	runCtx   map[string]*runCtx
	sched    *sched
	broken   map[string]time.Time // tenant → until when its stream is left out
	badNames map[string]bool      // invalid names seen in the registry (logged once)
}

type runCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
	logs   *host.LogBudget
}

// NewWorker makes a worker on a connected client's server.
func NewWorker(c *Client, cfg WorkerConfig) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Second
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = 5
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	cfg.BatchSize = min(cfg.BatchSize, MaxBatchSize)
	if cfg.Drain <= 0 {
		cfg.Drain = 30 * time.Second
	}
	if cfg.Name == "" {
		h, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d-%04x", h, os.Getpid(), rand.IntN(1<<16))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{cfg: cfg, rdb: c.rdb, k: c.k, log: log.With("worker", cfg.Name), modules: newLRU[*host.Module](maxCachedModules),
		runs: newLRU[*runState](maxCachedRuns), inflight: map[string]map[string]bool{}, runCtx: map[string]*runCtx{},
		broken: map[string]time.Time{}, badNames: map[string]bool{}, held: map[string]*throttled{}}
	w.sched = newSched(w)
	return w
}

// delivery is a message as read: the stream and tenant it was read from
// (known from the read, not from the body), its id and its body.
type delivery struct {
	stream, tenant, id string
	body               []byte
	// priority is its stream's (streamPriority).
	priority int
}

// Run serves until ctx ends, then drains: it reads nothing new, lets the
// running batches finish (up to Drain) and hands back the rest.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, ok := w.sched.next()
				if !ok {
					return
				}
				w.handle(d)
				w.sched.done(d)
			}
		}()
	}
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go w.heartbeats(bg)
	announced := make(chan struct{})
	go func() { w.announce(bg); close(announced) }()
	defer func() { stopBG(); <-announced }() // out of the registry before Run returns
	go w.cancellations(bg)
	go w.promote(bg)
	scheduled := make(chan struct{})
	go func() { w.schedules(ctx); close(scheduled) }()
	defer func() { <-scheduled }()
	if w.cfg.Metrics != nil {
		go w.queueGauges(bg)
	}

	var backoff time.Duration
	lastReclaim := time.Now()
	for ctx.Err() == nil {
		// Take over expired leases now and then.
		if time.Since(lastReclaim) >= w.cfg.Lease/2 {
			lastReclaim = time.Now()
			w.sched.add(w.reclaim(ctx))
		}
		ds, err := w.read(ctx, w.cfg.Concurrency)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			w.log.Warn("broker unreachable; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		w.sched.add(ds)
	}
	// Messages read but never started go back at once; running ones get
	// up to Drain to finish.
	w.handBackNow(w.sched.close())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.Drain):
		w.handBack()
	}
	return nil
}

// Bounds of what a worker keeps of what it read: run plans and modules
// are read again from Redis when they were forgotten.
const (
	maxCachedRuns    = 1024
	maxCachedModules = 256
)

// handle processes one message. Every path acknowledges it, in the same
// atomic script as its effect where there is one. A message that is not
// what a worker writes (its tenant may write anything to its stream) is
// refused alone, with a log line and a metric, and has no effect.
func (w *Worker) handle(d delivery) {
	ctx := context.Background()
	var m message
	defer func() {
		if r := recover(); r != nil {
			// A bug, not an attack that got through: fail the run it
			// belongs to, loudly, and keep serving everyone else.
			w.log.Error("internal error handling a message", "tenant", d.tenant, "run", m.Run, "id", d.id, "panic", r, "stack", string(debug.Stack()))
			w.cfg.Metrics.Refused(d.tenant, "panic")
			w.end(ctx, &m, d, track.Failed, "null", fmt.Sprintf("worker %s: internal error handling message %s: %v", w.cfg.Name, d.id, r))
		}
	}()
	if len(d.body) > maxMessageBytes {
		w.refuse(ctx, d, "too_large", fmt.Errorf("%d bytes: a message is at most %d", len(d.body), maxMessageBytes))
		return
	}
	if err := json.Unmarshal(d.body, &m); err != nil {
		w.refuse(ctx, d, "unreadable", fmt.Errorf("not a message: %w", err))
		return
	}
	m.Tenant = d.tenant
	if err := m.check(); err != nil {
		m.Run = ""
		w.refuse(ctx, d, "invalid", err)
		return
	}
	pol, perr := w.cfg.Tenants.Policy(m.Tenant)
	if perr != nil {
		w.end(ctx, &m, d, track.Failed, "null", fmt.Sprintf("worker %s: %v", w.cfg.Name, perr))
		return
	}
	rs, status, err := w.runState(ctx, m.Tenant, m.Run)
	if errors.Is(err, ErrNoRun) {
		// No run of this tenant by that id: it expired, or the message
		// names another tenant's run, which is never looked for.
		w.refuse(ctx, d, "no_run", fmt.Errorf("tenant %s has no run %s", m.Tenant, m.Run))
		return
	}
	if err == nil && status.Ended() {
		w.rdb.XAck(ctx, d.stream, group, d.id) // the run ended: nothing to do
		if err == nil {
			w.forget(m.Tenant, m.Run)
		}
		return
	}
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			w.cfg.Metrics.Refused(d.tenant, "spec")
			w.end(ctx, &m, d, track.Failed, "null", fe.Error())
			return
		}
		// Leave the message pending: another delivery will try again.
		w.log.Warn("cannot load run", "tenant", m.Tenant, "run", m.Run, "err", err)
		return
	}
	if err := rs.check(&m); err != nil {
		w.refuse(ctx, d, "invalid", fmt.Errorf("run %s: %w", m.Run, err))
		return
	}
	// Grants the tenant may not have refuse the run before any task runs
	// (and on any worker whose policy is stricter).
	refuse := func(err error) {
		w.log.Warn("the tenant's policy refuses a run", "tenant", m.Tenant, "run", m.Run, "err", err)
		w.wrote(ctx, "run started", w.started(ctx, rs, &m))
		w.end(ctx, &m, d, track.Failed, "null", runner.Refused(err).Error())
	}
	if err := pol.Permit(m.Tenant, rs.spec.Grants); err != nil {
		refuse(err)
		return
	}
	for alias, sha := range rs.spec.Modules {
		if err := pol.PermitModule(m.Tenant, alias, sha); err != nil {
			refuse(err)
			return
		}
	}
	// A grant names folders of the submitter's machine: a worker without
	// them fails the run, saying which grant and which worker.
	if m.Kind == kindInit && !rs.spec.Grants.Empty() {
		g := rs.spec.Grants
		if err := host.CheckGrants(&g); err != nil {
			w.end(ctx, &m, d, track.Failed, "null", fmt.Sprintf("worker %s cannot provide the run's grants: %v", w.cfg.Name, err))
			return
		}
	}
	// Every transition but a call's is a few reads and one idempotent
	// script: while Redis refuses writes (out of memory, loading), do it
	// again here, keeping the lease, rather than letting the message
	// look like one a worker died on. A call retries only its write.
	err = w.whileRefused(ctx, &m, func() error {
		switch m.Kind {
		case kindInit:
			return w.initRun(ctx, rs, &m, d, &pol)
		case kindStep:
			return w.startStep(ctx, rs, &m, d, &pol)
		case kindCall:
			return w.call(ctx, rs, &m, d, &pol)
		case kindDone:
			return w.nodeDone(ctx, rs, &m, d)
		case kindChild:
			return w.childDone(ctx, rs, &m, d)
		default:
			return w.finish(ctx, rs, &m, d)
		}
	})
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			w.end(ctx, &m, d, track.Failed, "null", fe.Error())
			return
		}
		w.log.Warn("message failed; it will be delivered again", "tenant", m.Tenant, "run", m.Run, "kind", m.Kind, "err", err)
	}
}

// wrote logs and counts a Redis write that failed where nothing else
// would notice: an acknowledgement, an event, a counter, a notice. None of
// them loses a result (a message not acknowledged is delivered again),
// but none is lost silently either.
func (w *Worker) wrote(ctx context.Context, what string, err error) {
	if err == nil || errors.Is(err, goredis.Nil) || ctx.Err() != nil {
		return // Nil: an event for a run whose events expired, not added
	}
	w.log.Warn("a Redis write failed", "write", what, "err", err)
	w.cfg.Metrics.Refused("", "redis_write_failed")
}

// refuse acknowledges a message that will not be acted on, and says why.
func (w *Worker) refuse(ctx context.Context, d delivery, reason string, err error) {
	w.log.Warn("message refused", "tenant", d.tenant, "stream", d.stream, "id", d.id, "reason", reason, "err", err)
	w.cfg.Metrics.Refused(d.tenant, reason)
	w.wrote(ctx, "ack", w.rdb.XAck(ctx, d.stream, group, d.id).Err())
}

// fatalError fails the run (as opposed to a Redis error, retried by redelivery).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error { return &fatalError{err} }

// whileRefused runs fn again, with a growing pause, for as long as Redis
// answers with a refusal that waiting cures (out of memory under
// noeviction, loading, busy), saying so; it returns any other result.
// The message's lease is renewed meanwhile (a claim is not refused when
// Redis is out of memory), so no other worker takes it over.
func (w *Worker) whileRefused(ctx context.Context, m *message, fn func() error) error {
	var pause time.Duration
	var since time.Time
	for {
		err := fn()
		if !isTransientReply(err) {
			if !since.IsZero() {
				w.log.Info("Redis accepts writes again", "tenant", m.Tenant, "run", m.Run, "after", time.Since(since).Round(time.Millisecond))
			}
			return err
		}
		if since.IsZero() {
			since = time.Now()
			w.log.Warn("Redis refuses writes; the run waits and retries", "tenant", m.Tenant, "run", m.Run, "kind", m.Kind, "err", err)
			w.cfg.Metrics.Refused(m.Tenant, "redis_refused_write")
		}
		pause = min(max(2*pause, 50*time.Millisecond), 2*time.Second)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
}

// every runs duty every d until ctx ends: each background duty of a
// worker (heartbeats, retries, gauges) is one such loop, in a file of its
// own.
func every(ctx context.Context, d time.Duration, duty func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		duty()
	}
}
