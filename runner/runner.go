// Package runner is flowhost's one execution model: what a step or node
// does (its calls, their inputs, their limits), how calls are batched,
// retried and collected (map order, filter, group, dataflow outputs), and
// which error a failed run reports. The pure functions of model.go are the
// rules; both drivers call them. The in-process driver is Runner, which
// executes checked plans on a broker (broker/inproc) and plays the part of
// Taskiq-Flow's PipelineMiddleware: every completion starts whatever just
// became ready, with no level-by-level barrier and no waiting task holding
// a worker. The Redis driver (broker/redis) keeps the run's state in Redis
// and calls the same rules from its workers.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// Config configures a Runner.
type Config struct {
	// Broker executes the calls.
	Broker broker.Broker
	// Tenant labels the runs' calls (metrics); default policy.DefaultTenant.
	Tenant string
	// Policy is the tenant's policy: its maxima clamp every call's limits
	// and it must permit the flow's grants, exactly as on a worker. nil
	// clamps nothing and permits everything.
	Policy *policy.Tenant
	// Modules are the loaded plugins, by alias.
	Modules map[string]*host.Module
	// Limits are the flow's limits; zero fields fall back to host.DefaultLimits.
	Limits pipeline.Limits
	// Grants are what the runs' tasks may reach beyond the sandbox.
	Grants pipeline.Grants
	// Observer receives the runs' events; nil discards them.
	Observer track.Observer
	// MaxParallel is the default bound of calls in flight per step; 0
	// means twice the broker's workers.
	MaxParallel int
	// RetryBase and RetryMax shape the retry backoff (defaults 100 ms, 10 s).
	RetryBase, RetryMax time.Duration
	// Cache serves and keeps the results of calls that are functions of
	// their input (package cache); nil caches nothing.
	Cache cache.Store
	// Metrics records the calls the runner serves from the cache itself
	// (the broker records those it runs); nil records nothing.
	Metrics *metrics.Metrics
	// OnFailedCall, when set, receives each call that failed for good (or
	// whose failure skip_errors skipped), with its exact input, module and
	// limits: `flowhost call --from` runs it again. It is called on the
	// fan-out's goroutine: it must not block.
	OnFailedCall func(track.FailedCall)
	// OnBatch, when set, receives the times of each batch of calls of a
	// map, filter or group step (1-based) as it settles. It must not block.
	OnBatch func(runID string, step int, b track.BatchTime)
	// OnChildResult, when set, receives the result of each sub-flow's run
	// that succeeded (a run's own result is Exec's).
	OnChildResult func(runID string, v json.RawMessage)
	// Limiter holds the concurrency slots and rate buckets of throttled
	// steps; runners that share one share their keys. nil: the runner's own.
	Limiter *Limiter
	// Priority is the runs' priority, 1 to 5 (0: the default): the
	// broker takes the tenant's work of higher priority first.
	Priority int
	// RunFrom, when positive, makes the calls of that step (1-based, or
	// node in plan order) and every later one run again: they do not read
	// the cache (they still write it). `flowhost rerun --from`.
	RunFrom int
}

// Runner runs plans. It is safe for concurrent use by several runs.
type Runner struct {
	broker      broker.Broker
	tenant      string
	policy      *policy.Tenant
	grants      pipeline.Grants
	modules     map[string]*host.Module
	flowLimits  pipeline.Limits
	obs         track.Observer
	maxParallel int
	retryBase   time.Duration
	retryMax    time.Duration
	gate        *gate
	cache       cache.Store
	metrics     *metrics.Metrics
	runFrom     int
	priority    int
	limiter     *Limiter
	// parent and parentStep start a sub-flow's runs: the run and step
	// (1-based) that started them.
	parent        string
	parentStep    int
	onChildResult func(string, json.RawMessage)

	onFailedCall func(track.FailedCall)
	onBatch      func(string, int, track.BatchTime)
}

var _ pipeline.Executor = (*Runner)(nil)

// New makes a runner.
func New(cfg Config) *Runner {
	r := &Runner{broker: cfg.Broker, tenant: cfg.Tenant, policy: cfg.Policy, grants: cfg.Grants, modules: cfg.Modules, flowLimits: cfg.Limits, obs: cfg.Observer,
		maxParallel: cfg.MaxParallel, retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, cache: cfg.Cache, metrics: cfg.Metrics, runFrom: cfg.RunFrom, priority: cfg.Priority, limiter: cfg.Limiter, onChildResult: cfg.OnChildResult, onFailedCall: cfg.OnFailedCall, onBatch: cfg.OnBatch}
	if r.obs == nil {
		r.obs = track.ObserverFunc(func(track.Event) {})
	}
	if r.tenant == "" {
		r.tenant = policy.DefaultTenant
	}
	if r.limiter == nil {
		r.limiter = NewLimiter()
	}
	if r.policy != nil {
		r.gate = newGate(r.policy.MaxConcurrent)
	}
	if r.maxParallel <= 0 {
		r.maxParallel = 2 * max(cfg.Broker.Workers(), runtime.GOMAXPROCS(0))
	}
	if r.retryBase <= 0 {
		r.retryBase = DefaultRetryBase
	}
	if r.retryMax <= 0 {
		r.retryMax = DefaultRetryMax
	}
	r.retryBase, r.retryMax = min(r.retryBase, policy.MaxDuration), min(r.retryMax, policy.MaxDuration)
	return r
}

// alias is the alias m is loaded under.
func (r *Runner) alias(m *host.Module) string {
	for a, mm := range r.modules {
		if mm == m {
			return a
		}
	}
	return m.Name
}

// Catalog is the manifests of the runner's modules, by alias.
func (r *Runner) Catalog() dag.Catalog {
	c := dag.Catalog{}
	for alias, m := range r.modules {
		c[alias] = m.Manifest
	}
	return c
}

// NewRunID returns a new run id: sortable by time, unique by chance.
func NewRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%011x%s", time.Now().UnixMilli(), hex.EncodeToString(b[:]))
}

func (r *Runner) limits(opts pipeline.Options) host.Limits {
	return StepLimits(r.flowLimits, r.grants, opts, r.policy)
}

func (r *Runner) task(tr dag.TaskRef) (*host.Task, error) { return ResolveTask(r.modules, tr) }

// ResolveTask finds a plan's task among modules loaded by alias.
func ResolveTask(modules map[string]*host.Module, tr dag.TaskRef) (*host.Task, error) {
	m, ok := modules[tr.Alias]
	if !ok {
		return nil, fmt.Errorf("no module for alias %q", tr.Alias)
	}
	t, ok := m.Task(tr.Task.Name)
	if !ok {
		return nil, fmt.Errorf("module %s has no task %q", m.Name, tr.Task.Name)
	}
	return t, nil
}

// RunSequential plans and runs a sequential pipeline.
func (r *Runner) RunSequential(ctx context.Context, p *pipeline.Sequential, in pipeline.Inputs) (*pipeline.Result, error) {
	return r.plan(ctx, p, nil, in)
}

// RunDataflow plans and runs a dataflow pipeline.
func (r *Runner) RunDataflow(ctx context.Context, p *pipeline.Dataflow, in pipeline.Inputs) (*pipeline.Result, error) {
	return r.plan(ctx, nil, p, in)
}

func (r *Runner) plan(ctx context.Context, seq *pipeline.Sequential, df *pipeline.Dataflow, in pipeline.Inputs) (*pipeline.Result, error) {
	plan, err := dag.Build(r.Catalog(), seq, df, in)
	if err != nil {
		return nil, err
	}
	id := NewRunID()
	v, err := r.Exec(ctx, id, plan)
	if err != nil {
		return nil, err
	}
	return &pipeline.Result{RunID: id, Value: v}, nil
}

// Exec runs a checked plan as run runID.
func (r *Runner) Exec(ctx context.Context, runID string, plan *dag.Plan) (json.RawMessage, error) {
	if plan.Seq != nil {
		return r.ExecSequential(ctx, runID, plan.Seq)
	}
	return r.ExecDataflow(ctx, runID, plan.DF)
}

// cacheFor is the store the calls of step (1-based) use: write-only from
// RunFrom on.
func (r *Runner) cacheFor(step int) cache.Store {
	if r.cache != nil && r.runFrom > 0 && step >= r.runFrom {
		return cache.WriteOnly(r.cache)
	}
	return r.cache
}

// child is a runner for a sub-flow started by step of run: the child
// flow's limits and grants, all else the parent's.
func (r *Runner) child(run string, step int, sub *pipeline.SubFlow) *Runner {
	c := *r
	c.flowLimits, c.grants, c.parent, c.parentStep, c.runFrom = sub.Limits, sub.Grants, run, step, 0
	return &c
}

// started is the run_started event of run runID of this runner.
func (r *Runner) started(runID, name string, steps []dag.StepInfo) track.Event {
	return ChildStartedEvent(runID, r.tenant, name, steps, r.parent, r.parentStep)
}

// permit checks the runner's flow grants against its tenant's policy, as
// a worker does before a run's first task.
func (r *Runner) permit() error {
	if r.policy == nil {
		return nil
	}
	return r.policy.Permit(r.tenant, r.grants)
}
