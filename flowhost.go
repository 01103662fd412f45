// Package flowhost embeds the flowhost engine in a Go program: load task
// modules under aliases, then run sequential or dataflow pipelines
// (package pipeline) on them, in this process.
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
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
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
	// Observer receives progress events of every run; nil discards them.
	Observer runner.Observer
}

// Host runs pipelines in this process. It implements pipeline.Executor,
// so pipeline.New(h) and pipeline.FromTasks(h, …) run on it.
type Host struct {
	opts    Options
	engine  *host.Engine
	broker  *inproc.Broker
	tracker *track.Memory

	mu      sync.RWMutex
	modules map[string]*host.Module
}

var _ pipeline.Executor = (*Host)(nil)

// New starts a host.
func New(ctx context.Context, opts Options) (*Host, error) {
	eng, err := host.New(ctx, host.Config{CacheDir: opts.CacheDir, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return &Host{opts: opts, engine: eng, broker: inproc.New(opts.Workers), tracker: track.NewMemory(0),
		modules: map[string]*host.Module{}}, nil
}

// Load loads the module at path under alias, so that pipelines can name
// its tasks as "alias.task".
func (h *Host) Load(ctx context.Context, alias, path string) error {
	m, err := h.engine.LoadFile(ctx, path)
	if err != nil {
		return fmt.Errorf("load %s: %w", alias, err)
	}
	h.mu.Lock()
	h.modules[alias] = m
	h.mu.Unlock()
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
	return runner.New(runner.Config{Broker: h.broker, Modules: mods, Limits: h.opts.Limits,
		Observer: runner.Observers(h.tracker, h.opts.Observer)})
}

// RunSequential implements pipeline.Executor.
func (h *Host) RunSequential(ctx context.Context, p *pipeline.Sequential, in pipeline.Inputs) (*pipeline.Result, error) {
	return h.runner().RunSequential(ctx, p, in)
}

// RunDataflow implements pipeline.Executor.
func (h *Host) RunDataflow(ctx context.Context, p *pipeline.Dataflow, in pipeline.Inputs) (*pipeline.Result, error) {
	return h.runner().RunDataflow(ctx, p, in)
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
