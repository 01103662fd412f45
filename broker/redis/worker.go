package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/tenant"
)

// Message kinds.
const (
	kindInit   = "init"   // start a run
	kindStep   = "step"   // enqueue the calls of a step (sequential) or node (dataflow)
	kindCall   = "call"   // run a batch of calls
	kindDone   = "done"   // a dataflow node finished: start what became ready
	kindFinish = "finish" // assemble the result and end the run
)

// message is a stream entry's body.
type message struct {
	Kind string `json:"k"`
	Run  string `json:"r"`
	// Tenant is the tenant whose stream the message was read from: a fact
	// of the read, never a claim of the body, which its tenant may write.
	Tenant string            `json:"-"`
	Step   int               `json:"s"`
	Index  int               `json:"i,omitempty"`  // step-wide index of the batch's first call
	Task   int               `json:"ti,omitempty"` // which of the step's tasks (group)
	Inputs []json.RawMessage `json:"in,omitempty"`
	Elems  []json.RawMessage `json:"el,omitempty"` // a filter's elements, kept when the task says true
	// Attempt is how many times the batch's first call failed before: a
	// retry is this message again, from the failed call, delayed.
	Attempt int `json:"a,omitempty"`
}

// batchResult is what a call batch stores in its step's hash.
type batchResult struct {
	Index   int               `json:"i"`
	Outputs []json.RawMessage `json:"o"`
	Errs    []string          `json:"e,omitempty"`
	Kept    []json.RawMessage `json:"k,omitempty"`
}

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
}

// Worker serves the tasks of every tenant's stream.
type Worker struct {
	cfg WorkerConfig
	rdb *goredis.Client
	log *slog.Logger

	mu       sync.Mutex
	modules  *lru[*host.Module]         // tenant/sha256 → module, bounded
	runs     *lru[*runState]            // tenant/run → plan, bounded: a tenant may leave runs that never end
	inflight map[string]map[string]bool // stream → message ids
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

// runState is a run's plan, as a worker rebuilds it from the spec.
type runState struct {
	spec   *Spec
	grants *host.Grants
	mods   map[string]*host.Module
	seq    *dag.SeqPlan
	df     *dag.DataflowPlan
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
	w := &Worker{cfg: cfg, rdb: c.rdb, log: log.With("worker", cfg.Name), modules: newLRU[*host.Module](maxCachedModules),
		runs: newLRU[*runState](maxCachedRuns), inflight: map[string]map[string]bool{}, runCtx: map[string]*runCtx{},
		broken: map[string]time.Time{}, badNames: map[string]bool{}}
	w.sched = newSched(w)
	return w
}

// delivery is a message as read: the stream and tenant it was read from
// (known from the read, not from the body), its id and its body.
type delivery struct {
	stream, tenant, id string
	body               []byte
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
	go w.cancellations(bg)
	go w.promote(bg)
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

// maxTenants bounds the tenants one worker reads from.
const maxTenants = 10000

// quarantine is how long a tenant whose stream cannot be read is left out
// of the reads, so that a broken stream costs other tenants one read.
const quarantine = 10 * time.Second

// tenants are the tenants this worker serves now: those its
// configuration names and those in the registry, each name checked (a
// name that could widen a key pattern is never read), less the ones
// whose stream is broken.
func (w *Worker) tenants(ctx context.Context) ([]string, error) {
	reg, err := w.rdb.SMembers(ctx, tenantsKey).Result()
	if err != nil {
		return nil, err
	}
	var named []string
	if w.cfg.Tenants != nil {
		for t := range w.cfg.Tenants.Tenants {
			if t != policy.DefaultTenant {
				named = append(named, t)
			}
		}
	}
	now := time.Now()
	seen := map[string]bool{}
	out := make([]string, 0, len(reg)+len(named))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range append(named, reg...) {
		if seen[t] || len(out) >= maxTenants {
			continue
		}
		seen[t] = true
		if err := policy.CheckTenant(t); err != nil {
			if !w.badNames[t] && len(w.badNames) < maxTenants {
				w.badNames[t] = true
				w.log.Warn("registry holds an invalid tenant name; it is never read", "err", err)
				w.cfg.Metrics.Refused("", "tenant_name")
			}
			continue
		}
		if until, ok := w.broken[t]; ok {
			if now.Before(until) {
				continue
			}
			delete(w.broken, t)
		}
		out = append(out, t)
	}
	return out, nil
}

// read reads up to n new messages from every tenant's stream.
func (w *Worker) read(ctx context.Context, n int) ([]delivery, error) {
	tenants, err := w.tenants(ctx)
	if err != nil {
		return nil, err
	}
	if len(tenants) == 0 {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, nil
	}
	// A tenant with a message waiting here, or running as many calls as
	// its policy allows, is not read this time round.
	all := len(tenants)
	tenants = w.sched.readable(tenants)
	if len(tenants) == 0 {
		w.sched.pause(ctx, 200*time.Millisecond)
		return nil, nil
	}
	block := 250 * time.Millisecond // short enough to see a new tenant soon
	if len(tenants) < all {
		block = 50 * time.Millisecond // read the others again soon
	}
	streams := make([]string, 0, 2*len(tenants))
	tenantOf := make(map[string]string, len(tenants))
	for _, t := range tenants {
		streams = append(streams, streamKey(t))
		tenantOf[streamKey(t)] = t
	}
	for range tenants {
		streams = append(streams, ">")
	}
	res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name, Streams: streams,
		Count: int64(n), Block: block}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && ctx.Err() == nil {
		// One stream a tenant broke (deleted, or replaced by another
		// type) fails the whole read: read each alone, and leave out
		// the broken ones for a while.
		return w.readEach(ctx, tenants, n), nil
	}
	if err != nil {
		return nil, err
	}
	var ds []delivery
	for _, s := range res {
		ds = w.deliveries(ds, tenantOf[s.Stream], s.Stream, s.Messages)
	}
	return ds, nil
}

// readEach reads each tenant's stream on its own, without blocking,
// repairing a missing consumer group and quarantining a stream that
// cannot be read.
func (w *Worker) readEach(ctx context.Context, tenants []string, n int) []delivery {
	var ds []delivery
	for _, t := range tenants {
		res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name,
			Streams: []string{streamKey(t), ">"}, Count: int64(n), Block: -1}).Result()
		if err != nil && strings.Contains(err.Error(), "NOGROUP") {
			err = ensureGroup(ctx, w.rdb, t)
		}
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				w.isolate(t, err)
			}
			continue
		}
		for _, s := range res {
			ds = w.deliveries(ds, t, s.Stream, s.Messages)
		}
	}
	return ds
}

// isolate leaves a tenant whose stream cannot be read out of the reads
// for a while.
func (w *Worker) isolate(tenant string, err error) {
	w.mu.Lock()
	w.broken[tenant] = time.Now().Add(quarantine)
	w.mu.Unlock()
	w.log.Warn("tenant's stream cannot be read; leaving it out for a while", "tenant", tenant, "stream", streamKey(tenant),
		"for", quarantine, "err", err)
	w.cfg.Metrics.Refused(tenant, "stream")
}

// deliveries appends a stream's messages, as read from tenant's stream.
func (w *Worker) deliveries(ds []delivery, tenant, stream string, msgs []goredis.XMessage) []delivery {
	for _, m := range msgs {
		body, _ := m.Values["m"].(string)
		ds = append(ds, delivery{stream: stream, tenant: tenant, id: m.ID, body: []byte(body)})
	}
	return ds
}

func (w *Worker) track(stream, id string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		if w.inflight[stream] == nil {
			w.inflight[stream] = map[string]bool{}
		}
		w.inflight[stream][id] = true
	} else {
		delete(w.inflight[stream], id)
	}
}

func (w *Worker) inflightIDs() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for s, ids := range w.inflight {
		for id := range ids {
			out[s] = append(out[s], id)
		}
	}
	return out
}

// heartbeats renew the leases of running messages: claiming them again
// by this worker resets their idle time.
func (w *Worker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for stream, ids := range w.inflightIDs() {
			if err := w.rdb.XClaimJustID(ctx, &goredis.XClaimArgs{Stream: stream, Group: group, Consumer: w.cfg.Name, MinIdle: 0, Messages: ids}).Err(); err != nil && ctx.Err() == nil {
				w.log.Warn("heartbeat failed", "err", err)
			}
		}
	}
}

// reclaim takes over messages whose lease expired, sending the ones
// delivered too often to the dead-letter stream.
func (w *Worker) reclaim(ctx context.Context) []delivery {
	tenants, err := w.tenants(ctx)
	if err != nil {
		return nil
	}
	var out []delivery
	for _, t := range tenants {
		stream := streamKey(t)
		msgs, _, err := w.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{Stream: stream, Group: group, Consumer: w.cfg.Name,
			MinIdle: w.cfg.Lease, Start: "0-0", Count: int64(w.cfg.Concurrency * 4)}).Result()
		if err != nil {
			continue
		}
		for _, m := range msgs {
			body, _ := m.Values["m"].(string)
			d := delivery{stream: stream, tenant: t, id: m.ID, body: []byte(body)}
			pend, err := w.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: group, Start: m.ID, End: m.ID, Count: 1}).Result()
			if err == nil && len(pend) == 1 && pend[0].RetryCount > w.cfg.MaxDeliveries {
				w.deadLetter(ctx, d, pend[0].RetryCount)
				continue
			}
			w.log.Info("took over an expired lease", "stream", stream, "id", m.ID)
			out = append(out, d)
		}
	}
	return out
}

func (w *Worker) deadLetter(ctx context.Context, d delivery, n int64) {
	reason := fmt.Sprintf("message %s was delivered %d times without completing (each worker that took it stopped or lost its lease): moved to %s",
		d.id, n, deadKey(d.tenant))
	if err := w.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: deadKey(d.tenant), Values: []any{"m", d.body, "reason", reason}}).Err(); err != nil {
		// Claim nothing that did not happen: the message stays pending,
		// and the next take-over tries again.
		w.log.Error("cannot move a message to the dead letters; it stays pending", "tenant", d.tenant, "id", d.id, "err", err)
		return
	}
	w.cfg.Metrics.Refused(d.tenant, "dead_letter")
	var m message
	if json.Unmarshal(d.body, &m) != nil || policy.CheckRunID(m.Run) != nil {
		w.log.Error("dead letter", "tenant", d.tenant, "id", d.id, "reason", reason)
		w.wrote(ctx, "ack", w.rdb.XAck(ctx, d.stream, group, d.id).Err())
		return
	}
	m.Tenant = d.tenant
	w.log.Error("dead letter", "tenant", d.tenant, "run", m.Run, "reason", reason)
	w.end(ctx, &m, d, "failed", "null", reason)
}

// handBackNow makes messages this worker read but never started
// claimable at once by other workers.
func (w *Worker) handBackNow(ds []delivery) {
	ids := map[string][]string{}
	for _, d := range ds {
		ids[d.stream] = append(ids[d.stream], d.id)
	}
	w.claimIdle(ids)
}

// handBack makes the messages still running claimable at once by other
// workers, by setting their idle time past the lease.
func (w *Worker) handBack() { w.claimIdle(w.inflightIDs()) }

// claimIdle sets messages' idle time past the lease, so that any worker
// takes them over at its next look.
func (w *Worker) claimIdle(ids map[string][]string) {
	ctx := context.Background()
	for stream, ids := range ids {
		args := []any{"XCLAIM", stream, group, w.cfg.Name, 0}
		for _, id := range ids {
			args = append(args, id)
		}
		args = append(args, "IDLE", w.cfg.Lease.Milliseconds()+1, "JUSTID")
		w.wrote(ctx, "hand back", w.rdb.Do(ctx, args...).Err())
	}
}

// queueGauges samples each tenant's stream for the metrics.
func (w *Worker) queueGauges(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		tenants, _ := w.rdb.SMembers(ctx, tenantsKey).Result()
		for _, tn := range tenants {
			depth, _ := w.rdb.XLen(ctx, streamKey(tn)).Result()
			groups, err := w.rdb.XInfoGroups(ctx, streamKey(tn)).Result()
			if err != nil {
				continue
			}
			for _, g := range groups {
				if g.Name == group {
					w.cfg.Metrics.SetQueue(tn, depth, g.Lag, g.Pending)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cancellations interrupt the running calls of cancelled runs.
func (w *Worker) cancellations(ctx context.Context) {
	sub := w.rdb.PSubscribe(ctx, cancelPattern)
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			// The channel, which only its tenant may publish to, says whose
			// run it is; fh:t:*:cancel also matches fh:t:acme:x:cancel,
			// whose "tenant" is not a valid name and is ignored.
			tenant := strings.TrimSuffix(strings.TrimPrefix(msg.Channel, "fh:t:"), ":cancel")
			if policy.CheckTenant(tenant) != nil || policy.CheckRunID(msg.Payload) != nil {
				continue
			}
			w.mu.Lock()
			if rc := w.runCtx[tenant+"/"+msg.Payload]; rc != nil {
				rc.cancel()
			}
			w.mu.Unlock()
		}
	}
}

func (w *Worker) ctxFor(tenant, run string) *runCtx {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := tenant + "/" + run
	rc := w.runCtx[key]
	if rc == nil {
		ctx, cancel := context.WithCancel(context.Background())
		rc = &runCtx{ctx: ctx, cancel: cancel, logs: host.NewLogBudget(100, 500)}
		w.runCtx[key] = rc
	}
	return rc
}

func (w *Worker) forget(tenant, run string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := tenant + "/" + run
	if rc := w.runCtx[key]; rc != nil {
		rc.cancel()
		delete(w.runCtx, key)
	}
	w.runs.remove(key)
}

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
			w.end(ctx, &m, d, "failed", "null", fmt.Sprintf("worker %s: internal error handling message %s: %v", w.cfg.Name, d.id, r))
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
		w.end(ctx, &m, d, "failed", "null", fmt.Sprintf("worker %s: %v", w.cfg.Name, perr))
		return
	}
	rs, status, err := w.runState(ctx, m.Tenant, m.Run)
	if errors.Is(err, ErrNoRun) {
		// No run of this tenant by that id: it expired, or the message
		// names another tenant's run, which is never looked for.
		w.refuse(ctx, d, "no_run", fmt.Errorf("tenant %s has no run %s", m.Tenant, m.Run))
		return
	}
	if err == nil && status != "pending" && status != "running" {
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
			w.end(ctx, &m, d, "failed", "null", fe.Error())
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
	if err := pol.Permit(m.Tenant, rs.spec.Grants); err != nil {
		w.end(ctx, &m, d, "failed", "null", fmt.Sprintf("worker %s refuses the run: %v", w.cfg.Name, err))
		return
	}
	for alias, sha := range rs.spec.Modules {
		if err := pol.PermitModule(m.Tenant, alias, sha); err != nil {
			w.end(ctx, &m, d, "failed", "null", fmt.Sprintf("worker %s refuses the run: %v", w.cfg.Name, err))
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
			return w.initRun(ctx, rs, &m, d)
		case kindStep:
			return w.startStep(ctx, rs, &m, d)
		case kindCall:
			return w.call(ctx, rs, &m, d, pol)
		case kindDone:
			return w.nodeDone(ctx, rs, &m, d)
		default:
			return w.finish(ctx, rs, &m, d)
		}
	})
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			w.end(ctx, &m, d, "failed", "null", fe.Error())
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

// MaxBatchSize is the most calls one message may carry.
const MaxBatchSize = 10000

// maxMessageBytes bounds a message a worker parses: a batch carries at
// most a step's inputs.
const maxMessageBytes = runner.MaxStepInput + 1<<20

// maxBatchCalls bounds the calls of a message a worker accepts.
const maxBatchCalls = MaxBatchSize

// check refuses a message no worker would have written, before anything
// is read for it.
func (m *message) check() error {
	switch m.Kind {
	case kindInit, kindStep, kindCall, kindDone, kindFinish:
	default:
		return fmt.Errorf("unknown message kind %.40q", m.Kind)
	}
	if err := policy.CheckRunID(m.Run); err != nil {
		return err
	}
	if m.Step < 0 || m.Index < 0 || m.Task < 0 || m.Attempt < 0 {
		return fmt.Errorf("negative step, index, task or attempt (%d, %d, %d, %d)", m.Step, m.Index, m.Task, m.Attempt)
	}
	if m.Attempt > pipeline.MaxRetries {
		return fmt.Errorf("attempt %d: at most %d retries", m.Attempt, pipeline.MaxRetries)
	}
	if m.Kind != kindCall {
		if len(m.Inputs) != 0 || len(m.Elems) != 0 {
			return fmt.Errorf("a %s message carries no inputs", m.Kind)
		}
		return nil
	}
	if len(m.Inputs) == 0 || len(m.Inputs) > maxBatchCalls {
		return fmt.Errorf("a call message carries 1 to %d inputs, not %d", maxBatchCalls, len(m.Inputs))
	}
	if m.Elems != nil && len(m.Elems) != len(m.Inputs) {
		return fmt.Errorf("a filter batch carries one element per input, not %d for %d", len(m.Elems), len(m.Inputs))
	}
	if m.Index > math.MaxInt32 {
		return fmt.Errorf("call index %d out of range", m.Index)
	}
	return nil
}

// check refuses a message that names a step, node or task its run's plan
// does not have.
func (rs *runState) check(m *message) error {
	if m.Kind == kindInit || m.Kind == kindFinish {
		return nil
	}
	if rs.seq != nil {
		if m.Kind == kindDone {
			return errors.New("a sequential run has no node to mark done")
		}
		if m.Step >= len(rs.seq.Steps) {
			return fmt.Errorf("no step %d (the run has %d)", m.Step+1, len(rs.seq.Steps))
		}
		st := &rs.seq.Steps[m.Step]
		if m.Kind == kindCall {
			if m.Task >= len(st.Tasks) {
				return fmt.Errorf("step %d has no task %d", m.Step+1, m.Task)
			}
			if (st.Kind == pipeline.Filter) != (m.Elems != nil) {
				return fmt.Errorf("step %d: elements belong to filter batches only", m.Step+1)
			}
		}
		return nil
	}
	if m.Step >= len(rs.df.Nodes) {
		return fmt.Errorf("no node %d (the run has %d)", m.Step, len(rs.df.Nodes))
	}
	if m.Kind == kindCall && (m.Task != 0 || m.Elems != nil || len(m.Inputs) != 1 || m.Index != 0) {
		return fmt.Errorf("node %s is one call of one task", rs.df.Nodes[m.Step].Ref())
	}
	return nil
}

// fatalError fails the run (as opposed to a Redis error, retried by redelivery).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error { return &fatalError{err} }

// runState loads (once per worker) a run's spec, modules and plan.
func (w *Worker) runState(ctx context.Context, tenant, run string) (*runState, string, error) {
	vals, err := w.rdb.HMGet(ctx, runKey(tenant, run), "status", "spec").Result()
	if err != nil {
		return nil, "", err
	}
	status, _ := vals[0].(string)
	if status == "" {
		return nil, "", ErrNoRun
	}
	key := tenant + "/" + run
	w.mu.Lock()
	rs, _ := w.runs.get(key)
	w.mu.Unlock()
	if rs != nil {
		return rs, status, nil
	}
	specJSON, _ := vals[1].(string)
	var spec Spec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: unreadable spec: %w", run, err))
	}
	if err := spec.check(run); err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: invalid spec: %w", run, err))
	}
	spec.Tenant = tenant // the key it was read from says whose it is
	rs = &runState{spec: &spec, grants: runner.HostGrants(spec.Grants), mods: map[string]*host.Module{}}
	cat := dag.Catalog{}
	for alias, sha := range spec.Modules {
		m, err := w.module(ctx, tenant, sha)
		if err != nil {
			return nil, status, err
		}
		rs.mods[alias] = m
		cat[alias] = m.Manifest
	}
	if spec.Seq != nil {
		rs.seq, err = dag.PlanSequential(cat, spec.Seq, spec.Inputs)
	} else if spec.DF != nil {
		rs.df, err = dag.PlanDataflow(cat, spec.DF, spec.Inputs)
	} else {
		err = errors.New("the spec holds no pipeline")
	}
	if err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: %w", run, err))
	}
	w.mu.Lock()
	w.runs.put(key, rs)
	w.mu.Unlock()
	return rs, status, nil
}

// module returns a loaded module, fetching it from Redis the first time.
func (w *Worker) module(ctx context.Context, tenant, sha string) (*host.Module, error) {
	// Keyed by tenant and hash: a tenant runs only the modules it uploaded
	// itself, whatever sha256 its run names.
	key := tenant + "/" + sha
	w.mu.Lock()
	m, _ := w.modules.get(key)
	w.mu.Unlock()
	if m != nil {
		return m, nil
	}
	wasm, err := w.rdb.Get(ctx, moduleKey(tenant, sha)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fatal(fmt.Errorf("module %s was never uploaded for tenant %s", sha, tenant))
	}
	if err != nil {
		return nil, err
	}
	m, err = w.cfg.Engine.Load(ctx, wasm)
	if err != nil {
		return nil, fatal(fmt.Errorf("module %s: %w", sha, err))
	}
	if m.SHA256 != sha {
		return nil, fatal(fmt.Errorf("module stored as %s has sha256 %s", sha, m.SHA256))
	}
	w.mu.Lock()
	w.modules.put(key, m)
	w.mu.Unlock()
	return m, nil
}

func (rs *runState) task(tr dag.TaskRef) (*host.Task, error) { return runner.ResolveTask(rs.mods, tr) }

// emit records an event that no script guards (a retry, a failure).
func (w *Worker) emit(ctx context.Context, m *message, e Event) {
	w.wrote(ctx, "event", w.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: eventsKey(m.Tenant, m.Run), NoMkStream: true, MaxLen: 10000, Approx: true, Values: []any{"e", e.encode()}}).Err())
}

// label names a step (sequential) or node (dataflow).
func (rs *runState) label(step int) string {
	if rs.seq != nil {
		if step < len(rs.seq.Steps) {
			return rs.seq.Steps[step].Label
		}
		return ""
	}
	if step < len(rs.df.Nodes) {
		return rs.df.Nodes[step].Ref()
	}
	return ""
}

func (w *Worker) send(m message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func (w *Worker) ttl(rs *runState) string {
	return strconv.FormatInt((7 * rs.spec.ResultTTL).Milliseconds(), 10)
}

// setRunning moves a pending run to running.
var runningScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'e', ARGV[2])
end
return 1
`)

// initRun starts a run: the first step, or every dataflow node without producers.
func (w *Worker) initRun(ctx context.Context, rs *runState, m *message, d delivery) error {
	ev := Event{Type: EventRunStarted, RunID: m.Run, Worker: w.cfg.Name, Name: rs.spec.Name}.encode()
	if err := runningScript.Run(ctx, w.rdb, []string{runKey(m.Tenant, m.Run), eventsKey(m.Tenant, m.Run)}, time.Now().UTC().Format(time.RFC3339Nano), ev).Err(); err != nil {
		return err
	}
	if rs.seq != nil {
		first := *m
		first.Kind, first.Step = kindStep, 0
		return w.startStep(ctx, rs, &first, d)
	}
	// Dataflow: counters of producers still to finish, then the ready nodes.
	var msgs []string
	fields := []any{}
	for _, n := range rs.df.Nodes {
		fields = append(fields, "w:"+strconv.Itoa(n.ID), len(n.Deps))
		if len(n.Deps) == 0 {
			msgs = append(msgs, w.send(message{Kind: kindStep, Run: m.Run, Tenant: m.Tenant, Step: n.ID}))
		}
	}
	args := append([]any{d.id, len(fields)}, fields...)
	for _, s := range msgs {
		args = append(args, s)
	}
	return initScript.Run(ctx, w.rdb, []string{runKey(m.Tenant, m.Run), d.stream}, args...).Err()
}

// initScript sets a dataflow run's counters and enqueues its ready nodes, once.
// KEYS: run hash, stream. ARGV: message id, number of field args, fields…, messages…
var initScript = goredis.NewScript(`
redis.call('XACK', KEYS[2], 'workers', ARGV[1])
if redis.call('HSETNX', KEYS[1], 'initialized', 1) == 0 then return 0 end
local nf = tonumber(ARGV[2])
for i = 3, 2 + nf, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
for i = 3 + nf, #ARGV do redis.call('XADD', KEYS[2], '*', 'm', ARGV[i]) end
return 1
`)

// next is the message that follows the end of step s.
func (w *Worker) next(rs *runState, m *message) string {
	n := message{Run: m.Run, Tenant: m.Tenant, Step: m.Step + 1, Kind: kindStep}
	switch {
	case rs.df != nil:
		n.Kind, n.Step = kindDone, m.Step
	case m.Step+1 >= len(rs.seq.Steps):
		n.Kind, n.Step = kindFinish, 0
	}
	return w.send(n)
}

// startStep enqueues the call batches of a sequential step or a dataflow node.
func (w *Worker) startStep(ctx context.Context, rs *runState, m *message, d delivery) error {
	var calls []runner.Call
	var elems []json.RawMessage
	var taskOf func(i int) int
	if rs.seq != nil {
		if m.Step >= len(rs.seq.Steps) {
			return fatal(fmt.Errorf("run %s has no step %d", m.Run, m.Step+1))
		}
		st := &rs.seq.Steps[m.Step]
		var prev json.RawMessage
		if m.Step > 0 {
			var err error
			if prev, err = w.collect(ctx, rs, m.Tenant, m.Run, m.Step-1); err != nil {
				return err
			}
		}
		var err error
		calls, elems, err = runner.StepCalls(st, rs.task, prev, m.Step == 0, rs.spec.Inputs)
		if err != nil {
			return fatal(&runner.RunError{RunID: m.Run, Step: st.Index, Label: st.Label, Element: -1, Err: err})
		}
		tasks := make([]*host.Task, len(st.Tasks))
		for i, t := range st.Tasks {
			tasks[i], _ = rs.task(t.TaskRef)
		}
		taskOf = func(i int) int {
			for k, t := range tasks {
				if t == calls[i].Task {
					return k
				}
			}
			return 0
		}
		if st.Kind != pipeline.Filter {
			elems = nil
		}
	} else {
		node := rs.df.Nodes[m.Step]
		input, err := w.nodeInput(ctx, rs, m, node)
		if err != nil {
			return err
		}
		t, _ := rs.task(node.TaskRef)
		calls = []runner.Call{{Task: t, Input: input}}
		taskOf = func(int) int { return 0 }
	}
	total := len(calls)
	started := Event{Type: EventStepStarted, RunID: m.Run, Step: m.Step + 1, Name: rs.label(m.Step), Worker: w.cfg.Name, Total: &total}
	finished := started
	finished.Type = EventStepFinished
	args := []any{len(calls), w.ttl(rs), w.next(rs, m), time.Now().UTC().Format(time.RFC3339Nano), started.encode(), finished.encode()}
	for i := 0; i < len(calls); {
		j := i + 1
		for j < len(calls) && j-i < w.cfg.BatchSize && calls[j].Task == calls[i].Task {
			j++
		}
		bm := message{Kind: kindCall, Run: m.Run, Tenant: m.Tenant, Step: m.Step, Index: i, Task: taskOf(i)}
		for k := i; k < j; k++ {
			bm.Inputs = append(bm.Inputs, calls[k].Input)
		}
		if elems != nil {
			bm.Elems = elems[i:j]
		}
		args = append(args, w.send(bm))
		i = j
	}
	started1, err := startScript.Run(ctx, w.rdb, []string{stepKey(m.Tenant, m.Run, m.Step), d.stream, eventsKey(m.Tenant, m.Run)}, args...).Int()
	if err != nil {
		return err
	}
	if started1 == 1 {
		w.wrote(ctx, "step worker", w.rdb.HSet(ctx, stepKey(m.Tenant, m.Run, m.Step), "worker", w.cfg.Name).Err())
	}
	return w.rdb.XAck(ctx, d.stream, group, d.id).Err()
}

// nodeInput builds a dataflow node's input from its producers' outputs,
// the flow inputs and defaults.
func (w *Worker) nodeInput(ctx context.Context, rs *runState, m *message, node *dag.Node) ([]byte, error) {
	values := map[string]json.RawMessage{}
	for _, b := range node.Inputs {
		switch {
		case b.From != nil:
			outs, err := w.nodeOutputs(ctx, rs, m.Tenant, m.Run, b.From)
			if err != nil {
				return nil, err
			}
			values[b.Input] = outs[b.Input]
		case b.Flow:
			values[b.Input] = rs.spec.Inputs[b.Input]
		default:
			values[b.Input] = b.Default
		}
	}
	t, err := rs.task(node.TaskRef)
	if err != nil {
		return nil, fatal(err)
	}
	in, err := t.Input(values)
	if err != nil {
		return nil, fatal(&runner.RunError{RunID: m.Run, Label: node.Ref(), Element: -1, Err: err})
	}
	return in, nil
}

func (w *Worker) nodeOutputs(ctx context.Context, rs *runState, tenant, run string, n *dag.Node) (map[string]json.RawMessage, error) {
	raw, err := w.rdb.HGet(ctx, stepKey(tenant, run, n.ID), batchField(0)).Result()
	if err != nil {
		return nil, fmt.Errorf("node %s output: %w", n.Ref(), err)
	}
	var br batchResult
	if err := json.Unmarshal([]byte(raw), &br); err != nil || len(br.Outputs) != 1 {
		return nil, fatal(fmt.Errorf("node %s: unreadable output", n.Ref()))
	}
	t, _ := rs.task(n.TaskRef)
	outs, err := t.Outputs(br.Outputs[0])
	if err != nil {
		return nil, fatal(err)
	}
	return outs, nil
}

// maxStepCalls bounds the calls of one step.
const maxStepCalls = 1 << 24

// collect assembles a sequential step's result from its batches. The
// step hash is read back from a key its tenant may write, so every batch
// is checked against the step's count of calls before anything is
// allocated for it.
func (w *Worker) collect(ctx context.Context, rs *runState, tenant, run string, step int) (json.RawMessage, error) {
	h, err := w.rdb.HGetAll(ctx, stepKey(tenant, run, step)).Result()
	if err != nil {
		return nil, err
	}
	st := &rs.seq.Steps[step]
	bad := func(err error) error {
		return fatal(fmt.Errorf("run %s step %d: stored results: %w", run, step+1, err))
	}
	total, brs, err := parseBatches(h)
	if err != nil {
		return nil, bad(err)
	}
	if st.Kind == pipeline.Filter {
		var kept [][]byte
		for _, br := range brs {
			for _, e := range br.Kept {
				kept = append(kept, e)
			}
		}
		return runner.Collect(&dag.SeqStep{Kind: pipeline.Map}, kept, nil, nil)
	}
	outputs := make([][]byte, total)
	errs := make([]error, total)
	for _, br := range brs {
		for i, o := range br.Outputs {
			idx := br.Index + i
			if outputs[idx] != nil {
				return nil, bad(fmt.Errorf("two results for call %d", idx))
			}
			outputs[idx] = o
			if i < len(br.Errs) && br.Errs[i] != "" {
				errs[idx] = errors.New(br.Errs[i])
			}
		}
	}
	if total == 0 && st.Kind != pipeline.Map {
		return nil, bad(errors.New("the step has no result"))
	}
	return runner.Collect(st, outputs, errs, nil)
}

// parseBatches reads a step hash's count of calls and batch results,
// checking each batch lies within the count and that they add up to it,
// before anything is allocated for them. The batches come back in call
// order.
func parseBatches(h map[string]string) (int, []batchResult, error) {
	total, err := strconv.Atoi(h["total"])
	if err != nil || total < 0 || total > maxStepCalls {
		return 0, nil, fmt.Errorf("unreadable count of calls %.20q", h["total"])
	}
	var brs []batchResult
	n := 0
	for k, v := range h {
		if !strings.HasPrefix(k, "b:") {
			continue
		}
		var br batchResult
		if err := json.Unmarshal([]byte(v), &br); err != nil {
			return 0, nil, fmt.Errorf("batch %.20s: %v", k, err)
		}
		if br.Index < 0 || br.Index > total || len(br.Outputs) > total-br.Index || len(br.Errs) > len(br.Outputs) || len(br.Kept) > len(br.Outputs) {
			return 0, nil, fmt.Errorf("batch %.20s lies outside the step's %d calls", k, total)
		}
		n += len(br.Outputs)
		brs = append(brs, br)
	}
	if n != total {
		return 0, nil, fmt.Errorf("%d results for %d calls", n, total)
	}
	sortBatches(brs)
	return total, brs, nil
}

func sortBatches(brs []batchResult) {
	slices.SortFunc(brs, func(a, b batchResult) int { return cmp.Compare(a.Index, b.Index) })
}

// call runs a batch and records its result.
func (w *Worker) call(ctx context.Context, rs *runState, m *message, d delivery, policy tenant.Policy) error {
	var task *host.Task
	var opts pipeline.Options
	var label string
	var kind pipeline.Kind
	stepNo := 0
	if rs.seq != nil {
		st := &rs.seq.Steps[m.Step]
		task, _ = rs.task(st.Tasks[m.Task].TaskRef)
		opts, label, kind, stepNo = st.Options, st.Label, st.Kind, st.Index
	} else {
		node := rs.df.Nodes[m.Step]
		task, _ = rs.task(node.TaskRef)
		opts, label = node.Options, node.Ref()
	}
	lim := runner.HostLimits(rs.spec.Limits, opts.Limits)
	if opts.Timeout > 0 {
		lim.Timeout = opts.Timeout
	}
	lim = policy.Clamp(lim) // a flow may ask for less than its tenant's maxima, never more
	lim.Grants = rs.grants
	rc := w.ctxFor(m.Tenant, m.Run)
	rctx := host.WithLogInfo(rc.ctx, m.Run, label, rc.logs)
	tm := w.cfg.Metrics.Task(m.Tenant, task.Module().Name, task.Spec.Name)
	br := batchResult{Index: m.Index, Outputs: make([]json.RawMessage, len(m.Inputs))}
	began := time.Now()
	remainder, due := "", time.Time{}
	for i, in := range m.Inputs {
		// A long batch yields its slot to another tenant's message
		// waiting for one: it keeps what it did and sends the rest on.
		if i > 0 && time.Since(began) >= yieldAfter && w.sched.othersWaiting(m.Tenant) {
			rest := *m
			rest.Index, rest.Inputs = m.Index+i, m.Inputs[i:]
			if m.Elems != nil {
				rest.Elems = m.Elems[i:]
			}
			remainder = w.send(rest)
			br.Outputs = br.Outputs[:i]
			if br.Errs != nil {
				br.Errs = br.Errs[:i]
			}
			break
		}
		elem := m.Index + i
		attempt := 0
		if i == 0 {
			attempt = m.Attempt
		}
		start := time.Now()
		out, err := task.Call(rctx, in, lim)
		tm.Observe(time.Since(start), err, attempt > 0)
		if err != nil && attempt < opts.Retries && runner.Retryable(err) && rc.ctx.Err() == nil {
			// Retry later from this call, holding no slot meanwhile: what
			// the batch did is stored, the rest waits in the tenant's
			// delayed set until its backoff is over.
			rest := *m
			rest.Index, rest.Inputs, rest.Attempt = m.Index+i, m.Inputs[i:], attempt+1
			if m.Elems != nil {
				rest.Elems = m.Elems[i:]
			}
			remainder, due = w.send(rest), time.Now().Add(runner.RetryDelay(attempt+1))
			br.Outputs = br.Outputs[:i]
			if br.Errs != nil {
				br.Errs = br.Errs[:i]
			}
			w.wrote(ctx, "retry count", w.rdb.HIncrBy(ctx, stepKey(m.Tenant, m.Run, m.Step), "retries", 1).Err())
			w.emit(ctx, m, Event{Type: EventStepRetried, RunID: m.Run, Step: m.Step + 1, Name: label, Worker: w.cfg.Name,
				Attempt: attempt + 1, Element: &elem, Error: err.Error()})
			break
		}
		if err != nil {
			if !opts.SkipErrors || host.KindOf(err) == host.KindCanceled {
				if host.KindOf(err) != host.KindCanceled {
					w.emit(ctx, m, Event{Type: EventStepFailed, RunID: m.Run, Step: m.Step + 1, Name: label, Worker: w.cfg.Name,
						Element: &elem, Error: err.Error()})
				}
				if kind == pipeline.Call || kind == pipeline.After || rs.df != nil {
					elem = -1
				}
				return fatal(&runner.RunError{RunID: m.Run, Step: stepNo, Label: label, Element: elem, Err: err})
			}
			if br.Errs == nil {
				br.Errs = make([]string, len(m.Inputs))
			}
			br.Errs[i] = err.Error()
			br.Outputs[i] = json.RawMessage("null")
			continue
		}
		br.Outputs[i] = out
		if m.Elems != nil && string(out) == "true" {
			br.Kept = append(br.Kept, m.Elems[i])
		} else if m.Elems != nil && string(out) != "false" {
			return fatal(&runner.RunError{RunID: m.Run, Step: stepNo, Label: label, Element: m.Index + i,
				Err: fmt.Errorf("a filter task must return true or false, not %.60s", out)})
		}
	}
	failed := 0
	for _, e := range br.Errs {
		if e != "" {
			failed++
		}
	}
	res, _ := json.Marshal(br)
	fin := Event{Type: EventStepFinished, RunID: m.Run, Step: m.Step + 1, Name: label, Worker: w.cfg.Name}.encode()
	dueMS := ""
	if !due.IsZero() {
		dueMS = strconv.FormatInt(due.UnixMilli(), 10)
	}
	if len(br.Outputs) == 0 {
		// The first call is to be retried: nothing to store.
		return w.whileRefused(ctx, m, func() error {
			return retryScript.Run(ctx, w.rdb, []string{d.stream, delayedKey(m.Tenant), delayedIndex}, d.id, dueMS, remainder, m.Tenant).Err()
		})
	}
	return w.whileRefused(ctx, m, func() error {
		return completeScript.Run(ctx, w.rdb, []string{stepKey(m.Tenant, m.Run, m.Step), d.stream, eventsKey(m.Tenant, m.Run), delayedKey(m.Tenant), delayedIndex},
			batchField(m.Index), res, w.next(rs, m), d.id, len(br.Outputs), failed, time.Now().UTC().Format(time.RFC3339Nano), fin, remainder, dueMS, m.Tenant).Err()
	})
}

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

// yieldAfter is how long a batch runs before it yields its slot to
// another tenant's waiting message.
const yieldAfter = 10 * time.Millisecond

// batchField is the step hash field of the batch whose first call is
// the step's call index.
func batchField(index int) string { return "b:" + strconv.Itoa(index) }

// nodeDone starts the dataflow nodes that became ready.
func (w *Worker) nodeDone(ctx context.Context, rs *runState, m *message, d delivery) error {
	node := rs.df.Nodes[m.Step]
	args := []any{d.id, len(rs.df.Nodes), w.send(message{Kind: kindFinish, Run: m.Run, Tenant: m.Tenant})}
	for _, dep := range node.Dependents {
		args = append(args, "w:"+strconv.Itoa(dep.ID), w.send(message{Kind: kindStep, Run: m.Run, Tenant: m.Tenant, Step: dep.ID}))
	}
	return advanceScript.Run(ctx, w.rdb, []string{stepKey(m.Tenant, m.Run, m.Step), runKey(m.Tenant, m.Run), d.stream}, args...).Err()
}

// finish assembles the run's result and ends it.
func (w *Worker) finish(ctx context.Context, rs *runState, m *message, d delivery) error {
	var result json.RawMessage
	if rs.seq != nil {
		var err error
		if result, err = w.collect(ctx, rs, m.Tenant, m.Run, len(rs.seq.Steps)-1); err != nil {
			return err
		}
	} else {
		obj := map[string]json.RawMessage{}
		for _, o := range rs.df.Outputs {
			outs, err := w.nodeOutputs(ctx, rs, m.Tenant, m.Run, rs.df.Producer[o])
			if err != nil {
				return err
			}
			obj[o] = outs[o]
		}
		var b strings.Builder
		b.WriteByte('{')
		for i, o := range rs.df.Outputs {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(o)
			b.Write(k)
			b.WriteByte(':')
			b.Write(obj[o])
		}
		b.WriteByte('}')
		result = json.RawMessage(b.String())
	}
	w.end(ctx, m, d, "succeeded", string(result), "")
	return nil
}

// end ends a run (once) and acknowledges the message.
func (w *Worker) end(ctx context.Context, m *message, d delivery, status, result, errText string) {
	if policy.CheckRunID(m.Run) != nil {
		w.wrote(ctx, "ack", w.rdb.XAck(ctx, d.stream, group, d.id).Err())
		return
	}
	ttl := int64((24 * time.Hour).Milliseconds())
	w.mu.Lock()
	if rs, _ := w.runs.get(m.Tenant + "/" + m.Run); rs != nil {
		ttl = rs.spec.ResultTTL.Milliseconds()
	}
	w.mu.Unlock()
	ev := Event{Type: EventRunFinished, RunID: m.Run, Worker: w.cfg.Name, Status: status, Error: errText}.encode()
	err := w.whileRefused(ctx, m, func() error {
		return endScript.Run(ctx, w.rdb, []string{runKey(m.Tenant, m.Run), runsKey(m.Tenant), eventsKey(m.Tenant, m.Run)}, status, result, errText,
			time.Now().UTC().Format(time.RFC3339Nano), ttl, doneTopic(m.Tenant), m.Run, d.id, d.stream, ev).Err()
	})
	if err != nil {
		w.log.Warn("cannot end run; the message will be delivered again", "run", m.Run, "err", err)
		return
	}
	if status != "succeeded" {
		w.wrote(ctx, "cancel notice", w.rdb.Publish(ctx, cancelTopic(m.Tenant), m.Run).Err()) // stop the run's other calls everywhere
	}
	w.forget(m.Tenant, m.Run)
}
