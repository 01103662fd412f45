// Package runner executes checked pipeline plans on a broker. It plays
// the part of Taskiq-Flow's PipelineMiddleware: every completion starts
// whatever just became ready, with no level-by-level barrier and no
// waiting task holding a worker.
package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
)

// Config configures a Runner.
type Config struct {
	// Broker executes the calls.
	Broker broker.Broker
	// Tenant labels the runs' calls (metrics); default "default".
	Tenant string
	// Modules are the loaded plugins, by alias.
	Modules map[string]*host.Module
	// Limits are the flow's limits; zero fields fall back to host.DefaultLimits.
	Limits pipeline.Limits
	// Grants are what the runs' tasks may reach beyond the sandbox.
	Grants pipeline.Grants
	// Observer receives progress events; nil discards them.
	Observer Observer
	// MaxParallel is the default bound of calls in flight per step; 0
	// means twice the broker's workers.
	MaxParallel int
	// RetryBase and RetryMax shape the retry backoff (defaults 100 ms, 10 s).
	RetryBase, RetryMax time.Duration
}

// Runner runs plans. It is safe for concurrent use by several runs.
type Runner struct {
	broker      broker.Broker
	tenant      string
	grants      *host.Grants
	modules     map[string]*host.Module
	limits      pipeline.Limits
	obs         Observer
	maxParallel int
	retryBase   time.Duration
	retryMax    time.Duration
}

var _ pipeline.Executor = (*Runner)(nil)

// New makes a runner.
func New(cfg Config) *Runner {
	r := &Runner{broker: cfg.Broker, tenant: cfg.Tenant, grants: HostGrants(cfg.Grants), modules: cfg.Modules, limits: cfg.Limits, obs: cfg.Observer,
		maxParallel: cfg.MaxParallel, retryBase: cfg.RetryBase, retryMax: cfg.RetryMax}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.tenant == "" {
		r.tenant = "default"
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
	r.retryBase, r.retryMax = min(r.retryBase, pipeline.MaxDuration), min(r.retryMax, pipeline.MaxDuration)
	return r
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

// RunError is a run's failure: the step or node, the element, the cause.
type RunError struct {
	RunID string
	// Step is the 1-based step of a sequential run; 0 for a dataflow run.
	Step  int
	Label string
	// Element is the index of the failed element of a map, filter or
	// group, or -1.
	Element int
	Err     error
}

func (e *RunError) Error() string {
	var b strings.Builder
	if e.Step > 0 {
		fmt.Fprintf(&b, "step %d (%s)", e.Step, e.Label)
	} else {
		fmt.Fprintf(&b, "task %s", e.Label)
	}
	if e.Element >= 0 {
		fmt.Fprintf(&b, ", element %d", e.Element)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *RunError) Unwrap() error { return e.Err }

func (r *Runner) hostLimits(step pipeline.Limits) host.Limits {
	l := HostLimits(r.limits, step)
	l.Grants = r.grants
	return l
}

// HostGrants gives a flow's grants to the host: nil when they grant nothing.
func HostGrants(g pipeline.Grants) *host.Grants {
	if g.Empty() {
		return nil
	}
	return &g
}

// HostLimits resolves a call's limits: the step's, else the flow's, else
// host.DefaultLimits. A timeout is at most pipeline.MaxDuration, so that
// the call's deadline (now + the timeout) cannot overflow.
func HostLimits(flow, step pipeline.Limits) host.Limits {
	d := host.DefaultLimits
	l := step.Merge(flow).Merge(pipeline.Limits{Timeout: d.Timeout, Memory: d.Memory, MaxOutput: d.MaxOutput, Fuel: d.Fuel})
	return host.Limits{Timeout: clampTimeout(l.Timeout), Memory: l.Memory, MaxOutput: l.MaxOutput, Fuel: l.Fuel}
}

// clampTimeout bounds a timeout to pipeline.MaxDuration; a negative one
// means none was set.
func clampTimeout(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return min(d, pipeline.MaxDuration)
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
	plan, err := dag.PlanSequential(r.Catalog(), p, in)
	if err != nil {
		return nil, err
	}
	id := NewRunID()
	v, err := r.ExecSequential(ctx, id, plan)
	if err != nil {
		return nil, err
	}
	return &pipeline.Result{RunID: id, Value: v}, nil
}

// RunDataflow plans and runs a dataflow pipeline.
func (r *Runner) RunDataflow(ctx context.Context, p *pipeline.Dataflow, in pipeline.Inputs) (*pipeline.Result, error) {
	plan, err := dag.PlanDataflow(r.Catalog(), p, in)
	if err != nil {
		return nil, err
	}
	id := NewRunID()
	v, err := r.ExecDataflow(ctx, id, plan)
	if err != nil {
		return nil, err
	}
	return &pipeline.Result{RunID: id, Value: v}, nil
}

// template builds a task's input objects: every value but the param's is
// fixed, so each call costs one concatenation.
type template struct {
	prefix []byte // `{"a":1,"b":2,` without the param; the whole object when there is none
	param  string
	key    []byte // the param's name as JSON
}

// newTemplate fixes the inputs of t other than param: args first, then
// flow inputs, then declared defaults.
func newTemplate(t *host.Task, param string, args, flow map[string]json.RawMessage) (*template, error) {
	values := map[string]json.RawMessage{}
	for _, in := range t.Spec.Inputs {
		if in.Name == param {
			continue
		}
		if v, ok := args[in.Name]; ok {
			values[in.Name] = v
		} else if v, ok := flow[in.Name]; ok {
			values[in.Name] = v
		}
	}
	check := make(map[string]json.RawMessage, len(values)+1)
	for k, v := range values {
		check[k] = v
	}
	if _, err := t.Input(withPlaceholder(check, param)); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, in := range t.Spec.Inputs {
		if in.Name == param {
			continue
		}
		v, ok := values[in.Name]
		if !ok {
			v = in.Default
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		key, _ := json.Marshal(in.Name)
		b.Write(key)
		b.WriteByte(':')
		b.Write(v)
	}
	tp := &template{param: param}
	switch {
	case param == "":
		b.WriteByte('}')
	case n > 0:
		b.WriteByte(',')
	}
	tp.prefix = b.Bytes()
	tp.key, _ = json.Marshal(param)
	return tp, nil
}

func withPlaceholder(values map[string]json.RawMessage, param string) map[string]json.RawMessage {
	if param != "" {
		values[param] = json.RawMessage("0")
	}
	return values
}

// build returns the input with v as the param's value.
func (tp *template) build(v json.RawMessage) []byte {
	if tp.param == "" {
		return tp.prefix
	}
	b := make([]byte, 0, len(tp.prefix)+len(tp.key)+len(v)+2)
	b = append(b, tp.prefix...)
	b = append(b, tp.key...)
	b = append(b, ':')
	b = append(b, v...)
	return append(b, '}')
}

// Guest log lines a run may write: a burst, then a steady rate.
const (
	logBurst     = 500
	logPerSecond = 100
)

func newLogBudget() *host.LogBudget { return host.NewLogBudget(logPerSecond, logBurst) }
