// Package flowhost is the one composition of flowhost's parts, used by
// the command line and by Go programs that embed it: load task modules
// under aliases and run sequential or dataflow pipelines (package
// pipeline) on them in this process; or load a flow file (LoadFlow) and
// run it here (Host.Exec) or submit it to Redis workers (Flow.Submit).
//
//	h, err := flowhost.New(ctx, flowhost.Options{})
//	...
//	defer h.Close()
//	if err := h.Load(ctx, "text", "textkit.wasm"); err != nil { ... }
//	res, err := pipeline.New(h).
//		CallNext("text.split").
//		Map("text.upper").
//		Run(ctx, pipeline.Inputs{"text": json.RawMessage(`"hello world"`)})
package flowhost

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/flowhost/flowhost/broker/inproc"
	"github.com/flowhost/flowhost/flow"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// Options configure a Host. The zero value is ready to use.
type Options struct {
	// Workers is how many task calls run at once; 0 means one per core.
	Workers int
	// Limits apply to every task call; zero fields take host.DefaultLimits.
	Limits pipeline.Limits
	// CacheDir holds compiled modules between processes; "" is the user
	// cache directory, "off" disables it.
	CacheDir string
	// Logger receives host and guest logs; nil discards them.
	Logger *slog.Logger
	// Observer receives the events of every run; nil discards them.
	Observer track.Observer
	// Tenant is the tenant the Go API's runs run as; default
	// policy.DefaultTenant.
	Tenant string
	// Policy is that tenant's policy, applied as a worker applies it: its
	// maxima clamp every call's limits, and it must permit the runs'
	// grants. nil: no maxima.
	Policy *policy.Tenant
	// Grants are what the Go API's runs may reach beyond the sandbox, as
	// a flow's [grants] (the tenant's Policy must permit them); none by
	// default.
	Grants pipeline.Grants
	// Metrics records every call (Host.Metrics serves them); off by default.
	Metrics bool
}

// Host runs pipelines in this process. It implements pipeline.Executor,
// so pipeline.New(h) and pipeline.FromTasks(h, …) run on it.
type Host struct {
	opts    Options
	engine  *host.Engine
	broker  *inproc.Broker
	tracker *track.Memory
	metrics *metrics.Metrics
	// limiter holds the concurrency slots and rate buckets every run of
	// the host shares.
	limiter *runner.Limiter

	mu      sync.RWMutex
	modules map[string]*host.Module
}

var _ pipeline.Executor = (*Host)(nil)

// New starts a host.
func New(ctx context.Context, opts Options) (*Host, error) {
	if !opts.Grants.Empty() {
		if err := host.CheckGrants(&opts.Grants); err != nil {
			return nil, fmt.Errorf("flowhost: Options.Grants: %w", err)
		}
	}
	eng, err := host.New(ctx, host.Config{CacheDir: opts.CacheDir, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	h := &Host{opts: opts, engine: eng, tracker: track.NewMemory(0), modules: map[string]*host.Module{}, limiter: runner.NewLimiter()}
	if opts.Metrics {
		h.metrics = metrics.New(eng)
	}
	h.broker = inproc.New(opts.Workers, inproc.WithMetrics(h.metrics))
	return h, nil
}

// Engine is the host's WebAssembly engine.
func (h *Host) Engine() *host.Engine { return h.engine }

// Metrics are the host's metrics (nil unless Options.Metrics).
func (h *Host) Metrics() *metrics.Metrics { return h.metrics }

// Load loads the module at path under alias, so that pipelines can name
// its tasks as "alias.task".
// An alias is letters, digits, '_' and '-' (no '.': tasks are named
// "alias.task"), and is loaded once: loading another module under it is
// refused (it would change what running pipelines call).
func (h *Host) Load(ctx context.Context, alias, path string) error {
	if !flow.ValidAlias(alias) {
		return fmt.Errorf("load %s: %q is not a valid alias (letters, digits, '_' and '-', starting with a letter or '_'; no '.': tasks are named alias.task)", path, alias)
	}
	m, err := h.engine.LoadFile(ctx, path)
	if err != nil {
		return fmt.Errorf("load %s: %w", alias, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.modules[alias]; ok {
		return fmt.Errorf("load %s: alias %q is already loaded (module %s, sha256 %.12s…): choose another alias", path, alias, old.Name, old.SHA256)
	}
	h.modules[alias] = m
	return nil
}

// Module returns the module loaded under alias.
func (h *Host) Module(alias string) (*host.Module, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	m, ok := h.modules[alias]
	return m, ok
}

func (h *Host) runner() *runner.Runner {
	h.mu.RLock()
	mods := make(map[string]*host.Module, len(h.modules))
	for a, m := range h.modules {
		mods[a] = m
	}
	h.mu.RUnlock()
	return h.newRunner(mods, runner.Config{Tenant: h.opts.Tenant, Policy: h.opts.Policy, Limits: h.opts.Limits, Grants: h.opts.Grants,
		Observer: track.Observers(h.tracker, h.opts.Observer)})
}

// newRunner is the one place a runner is made, on the host's workers.
func (h *Host) newRunner(mods map[string]*host.Module, cfg runner.Config) *runner.Runner {
	cfg.Broker, cfg.Modules, cfg.Metrics, cfg.Limiter, cfg.OnChildResult = h.broker, mods, h.metrics, h.limiter, h.tracker.SetResult
	return runner.New(cfg)
}

// RunSequential implements pipeline.Executor.
func (h *Host) RunSequential(ctx context.Context, p *pipeline.Sequential, in pipeline.Inputs) (*pipeline.Result, error) {
	return h.keep(h.runner().RunSequential(ctx, p, in))
}

// RunDataflow implements pipeline.Executor.
func (h *Host) RunDataflow(ctx context.Context, p *pipeline.Dataflow, in pipeline.Inputs) (*pipeline.Result, error) {
	return h.keep(h.runner().RunDataflow(ctx, p, in))
}

// keep records a run's result in its status.
func (h *Host) keep(res *pipeline.Result, err error) (*pipeline.Result, error) {
	if err == nil {
		h.tracker.SetResult(res.RunID, res.Value)
	}
	return res, err
}

// Status returns the status of a run of this host (one of its last 1,000),
// by the id in its Result: status and, per step, attempts, times, errors
// and done/total for maps and filters.
func (h *Host) Status(runID string) (*track.RunStatus, bool) { return h.tracker.Run(runID) }

// Runs returns the host's recent runs, newest first.
func (h *Host) Runs() []*track.RunStatus { return h.tracker.Runs() }

// Close waits for running calls and releases every module.
func (h *Host) Close() error {
	h.broker.Close()
	return h.engine.Close(context.Background())
}
