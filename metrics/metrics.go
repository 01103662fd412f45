// Package metrics exposes flowhost's Prometheus metrics (names prefixed
// flowhost_) and a /healthz endpoint. A nil *Metrics records nothing, so
// callers need no checks.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
)

// Metrics holds the registry and the metric families.
type Metrics struct {
	reg                         *prometheus.Registry
	started, succeeded, retried *prometheus.CounterVec
	failed                      *prometheus.CounterVec
	duration                    *histVec
	depth, lag, pending         *prometheus.GaugeVec
	refused                     *prometheus.CounterVec
	cacheHits, cacheMisses      *prometheus.CounterVec

	mu    sync.Mutex
	tasks map[[3]string]*Task
}

var taskLabels = []string{"tenant", "module", "task"}

// New makes the metrics; eng, when not nil, also reports its instances,
// compile cache and guest memory.
func New(eng *host.Engine) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, tasks: map[[3]string]*Task{},
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_tasks_started_total",
			Help: "Task calls started (retries included)."}, taskLabels),
		succeeded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_tasks_succeeded_total",
			Help: "Task calls that succeeded."}, taskLabels),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_tasks_retried_total",
			Help: "Task calls that were retries of a failed call."}, taskLabels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_tasks_failed_total",
			Help: "Task calls that failed, by failure class (trap, timeout, task error, …)."}, append(taskLabels, "kind")),
		duration: newHistVec("flowhost_task_duration_seconds", "Wall-clock duration of task calls.", taskLabels),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flowhost_queue_depth",
			Help: "Entries in the tenant's work stream."}, []string{"tenant"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flowhost_queue_lag",
			Help: "Entries of the tenant's stream not yet read by any worker."}, []string{"tenant"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flowhost_pending_leases",
			Help: "Entries read by a worker and not yet acknowledged (running, or held by a dead worker)."}, []string{"tenant"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_cache_hits_total",
			Help: "Task calls served from the result cache instead of running."}, taskLabels),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_cache_misses_total",
			Help: "Cacheable task calls the result cache did not hold: they ran, and their result was stored."}, taskLabels),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowhost_messages_refused_total",
			Help: "Broker messages, run specs, streams and tenant names a worker refused to act on, by reason."}, []string{"tenant", "reason"}),
	}
	reg.MustRegister(m.started, m.succeeded, m.retried, m.failed, m.duration, m.depth, m.lag, m.pending, m.refused, m.cacheHits, m.cacheMisses,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if eng != nil {
		stat := func(f func(host.EngineStats) float64) func() float64 {
			return func() float64 { return f(eng.Stats()) }
		}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_instances_created_total", Help: "Instances started."},
				stat(func(s host.EngineStats) float64 { return float64(s.InstancesCreated) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_instances_reused_total", Help: "Calls served by a warm, pooled instance."},
				stat(func(s host.EngineStats) float64 { return float64(s.InstancesReused) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_instances_discarded_total", Help: "Instances thrown away after a trap, timeout or limit."},
				stat(func(s host.EngineStats) float64 { return float64(s.InstancesDiscarded) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowhost_instances_pooled", Help: "Warm instances waiting in the pools."},
				stat(func(s host.EngineStats) float64 { return float64(s.InstancesIdle) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowhost_guest_memory_bytes", Help: "Linear memory held by pooled instances."},
				stat(func(s host.EngineStats) float64 { return float64(s.GuestMemory) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowhost_modules_loaded", Help: "Modules loaded."},
				stat(func(s host.EngineStats) float64 { return float64(s.Modules) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_compile_cache_hits_total", Help: "Modules whose prepared code came from the on-disk cache."},
				stat(func(s host.EngineStats) float64 { return float64(s.CacheHits) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_compile_cache_misses_total", Help: "Modules prepared anew and added to the on-disk cache."},
				stat(func(s host.EngineStats) float64 { return float64(s.CacheMisses) })),
		)
	}
	return m
}

// CacheSource is what the metrics read of a result store.
type CacheSource interface {
	// Stats counts its entries and bytes.
	Stats() cache.Stats
	// Evicted counts the entries (or packs) removed to stay within its
	// size and TTL.
	Evicted() int64
}

// WatchCache reports a result store: flowhost_cache_bytes,
// flowhost_cache_entries and flowhost_cache_evictions_total.
func (m *Metrics) WatchCache(c CacheSource) {
	if m == nil || c == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowhost_cache_bytes", Help: "Bytes the result cache holds."},
			func() float64 { return float64(c.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowhost_cache_entries", Help: "Results the cache holds."},
			func() float64 { return float64(c.Stats().Entries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowhost_cache_evictions_total", Help: "Cache packs removed to stay within the cache's size and TTL."},
			func() float64 { return float64(c.Evicted()) }),
	)
}

// Task is the metrics of one task of one tenant, resolved once.
type Task struct {
	started, succeeded, retried prometheus.Counter
	cacheHits, cacheMisses      prometheus.Counter
	hist                        *hist
	failed                      *prometheus.CounterVec
}

// Task returns the metrics of a tenant's task; nil when m is nil.
func (m *Metrics) Task(tenant, module, task string) *Task {
	if m == nil {
		return nil
	}
	k := [3]string{tenant, module, task}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tasks[k]; ok {
		return t
	}
	t := &Task{started: m.started.WithLabelValues(k[:]...), succeeded: m.succeeded.WithLabelValues(k[:]...),
		retried: m.retried.WithLabelValues(k[:]...), hist: m.duration.get(k), cacheHits: m.cacheHits.WithLabelValues(k[:]...),
		cacheMisses: m.cacheMisses.WithLabelValues(k[:]...),
		failed:      m.failed.MustCurryWith(prometheus.Labels{"tenant": tenant, "module": module, "task": task})}
	m.tasks[k] = t
	return t
}

// Observe records one finished call; retry marks it as a retry.
func (t *Task) Observe(d time.Duration, err error, retry bool) {
	if t == nil {
		return
	}
	t.started.Inc()
	if retry {
		t.retried.Inc()
	}
	tm := t.Timer()
	tm.Observe(d)
	tm.Flush()
	if err == nil {
		t.succeeded.Inc()
		return
	}
	t.Failed(err)
}

// Batch records a batch of calls: their count, how many succeeded, and
// whether they were retries. Use it with a Timer and Failed where calls
// come in batches, to touch the shared counters once per batch.
func (t *Task) Batch(calls, succeeded int, retry bool) {
	if t == nil || calls == 0 {
		return
	}
	t.started.Add(float64(calls))
	t.succeeded.Add(float64(succeeded))
	if retry {
		t.retried.Add(float64(calls))
	}
}

// CacheHit records a call served from the result cache (it is counted
// as started and succeeded too).
func (t *Task) CacheHit() {
	if t != nil {
		t.cacheHits.Inc()
	}
}

// Served records n calls served from the result cache before any was
// handed to an executor: started, succeeded and cache hits.
func (t *Task) Served(n int) {
	if t == nil || n == 0 {
		return
	}
	t.started.Add(float64(n))
	t.succeeded.Add(float64(n))
	t.cacheHits.Add(float64(n))
}

// CacheMiss records a cacheable call the cache did not hold.
func (t *Task) CacheMiss() {
	if t != nil {
		t.cacheMisses.Inc()
	}
}

// Failed records one failed call by its failure class.
func (t *Task) Failed(err error) {
	if t == nil {
		return
	}
	kind := host.KindOf(err).String()
	if host.KindOf(err) == 0 {
		kind = "other"
	}
	t.failed.WithLabelValues(kind).Inc()
}

// SetQueue records a tenant's stream depth, unread lag and pending entries.
func (m *Metrics) SetQueue(tenant string, depth, lag, pending int64) {
	if m == nil {
		return
	}
	m.depth.WithLabelValues(tenant).Set(float64(depth))
	m.lag.WithLabelValues(tenant).Set(float64(lag))
	m.pending.WithLabelValues(tenant).Set(float64(pending))
}

// Refused counts something a worker refused to act on: an invalid
// message or run spec, a broken stream, an invalid tenant name (tenant
// "" when the name itself was refused), a dead letter.
func (m *Metrics) Refused(tenant, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(tenant, reason).Inc()
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics and /healthz on addr until ctx ends. It returns
// once the listener is bound, with its address (useful with port 0).
func Serve(ctx context.Context, addr string, m *Metrics) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return ln.Addr().String(), nil
}
