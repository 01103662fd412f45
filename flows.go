package flowhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/flow"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/text"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// Flow is a flow file ready to run on either driver: parsed, its inputs
// set, its modules loaded (and checked against their pinned sha256), its
// plan checked.
type Flow struct {
	File    *flow.File
	Modules map[string]*host.Module
	Plan    *dag.Plan
	// Warnings are what is legal in the flow but likely a mistake (an
	// input only pruned tasks read); the command line prints them.
	Warnings []string

	wasm map[string][]byte // the modules' bytes, by alias, for Submit
}

// ErrInvalid is wrapped by every error of LoadFlow that is the flow's, a
// module's or an input's fault: nothing ran (the command line's exit
// code 2).
var ErrInvalid = errors.New("invalid flow")

type invalid struct{ err error }

func (e invalid) Error() string   { return e.err.Error() }
func (e invalid) Unwrap() []error { return []error{e.err, ErrInvalid} }
func invalidf(err error) error    { return invalid{err} }

// LoadFlow parses the flow file at path, sets the inputs given as
// NAME=JSON (as `--input` does), loads its plugins on eng and checks its
// plan. Every error names its place in the flow file (file:line:col).
func LoadFlow(ctx context.Context, eng *host.Engine, path string, inputs []string) (*Flow, error) {
	f, err := flow.ParseFile(path)
	if err != nil {
		return nil, invalidf(err)
	}
	given := map[string]json.RawMessage{} // by --input
	for _, kv := range inputs {
		name, v, err := flow.ParseInput(kv)
		if err != nil {
			return nil, invalidf(err)
		}
		given[name] = v
	}
	return load(ctx, eng, f, given, func(p flow.Plugin) ([]byte, error) { return host.ReadModuleFile(p.Path) })
}

// LoadFlowSource is LoadFlow of a flow sent rather than read: its text
// (named name in errors), its modules' bytes by plugin alias (the
// plugins' paths are not read), and inputs that override its own. It is
// how the API submits a flow (POST /api/v1/runs).
func LoadFlowSource(ctx context.Context, eng *host.Engine, name string, src []byte, modules map[string][]byte, inputs map[string]json.RawMessage) (*Flow, error) {
	f, err := flow.Parse(name, src)
	if err != nil {
		return nil, invalidf(err)
	}
	for alias := range modules {
		if _, ok := f.Plugin(alias); !ok {
			return nil, invalidf(fmt.Errorf("module %q: the flow has no plugin of that alias", alias))
		}
	}
	return load(ctx, eng, f, inputs, func(p flow.Plugin) ([]byte, error) {
		b, ok := modules[p.Alias]
		if !ok {
			return nil, errors.New("its module was not sent")
		}
		return b, nil
	})
}

// load checks a parsed flow with inputs given beside it, loads its
// plugins' modules (read by wasm) on eng and plans it.
func load(ctx context.Context, eng *host.Engine, f *flow.File, given map[string]json.RawMessage, wasm func(flow.Plugin) ([]byte, error)) (*Flow, error) {
	names := map[string]bool{}
	for name, v := range given {
		if err := pipeline.CheckJSON(v); err != nil {
			return nil, invalidf(fmt.Errorf("input %s: %w", name, err))
		}
		f.Inputs[name] = v
		names[name] = true
	}
	if !f.Grants.Empty() {
		g := f.Grants
		if err := host.CheckGrants(&g); err != nil {
			return nil, invalidf(f.Errorf(f.KeyPos("grants"), "%v", err))
		}
	}
	fl := &Flow{File: f, Modules: map[string]*host.Module{}, wasm: map[string][]byte{}}
	cat := dag.Catalog{}
	// The modules load at once, as many at a time as there are cores
	// (each is decoded, validated and compiled or read from the cache on
	// its own; a flow sent to the API may name any number); the first
	// failure, in the file's order, is the one reported.
	type loaded struct {
		m    *host.Module
		wasm []byte
		err  error
	}
	got := make([]loaded, len(f.Plugins))
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, p := range f.Plugins {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			b, err := wasm(p)
			if err != nil {
				got[i].err = err
				return
			}
			got[i].m, got[i].err = loadPlugin(ctx, eng, p, b)
			got[i].wasm = b
		})
	}
	wg.Wait()
	for i, p := range f.Plugins {
		if err := got[i].err; err != nil {
			return nil, invalidf(f.Errorf(p.Pos, "plugin %s: %v", p.Alias, err))
		}
		fl.Modules[p.Alias], fl.wasm[p.Alias] = got[i].m, got[i].wasm
		cat[p.Alias] = got[i].m.Manifest
	}
	var err error
	if fl.Plan, err = dag.Build(cat, f.Sequential, f.Dataflow, f.Inputs); err != nil {
		return nil, invalidf(locate(f, err))
	}
	if err := fl.checkInputs(names); err != nil {
		return nil, invalidf(err)
	}
	return fl, nil
}

// checkInputs refuses a flow input no task of the flow reads (a typo
// would otherwise be silently ignored, and the task given its default),
// naming it and the likely name; one that only pruned tasks read is a
// warning (Flow.Warnings).
func (fl *Flow) checkInputs(given map[string]bool) error {
	read, pruned := fl.Plan.InputsRead()
	names := make([]string, 0, len(fl.File.Inputs))
	for name := range fl.File.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	valid := make([]string, 0, len(read))
	for name := range read {
		valid = append(valid, name)
	}
	sort.Strings(valid)
	for _, name := range names {
		switch {
		case read[name]:
		case pruned[name]:
			fl.Warnings = append(fl.Warnings, fmt.Sprintf("input %q is read only by tasks this run does not need (no requested output depends on them)", name))
		case given[name]:
			return fmt.Errorf("--input %s: no task of the flow reads an input %q%s (inputs its tasks read: %s)", name, name, text.Suggest(name, valid), text.OrNone(valid))
		default:
			return fl.File.Errorf(fl.File.KeyPos("inputs", name), "input %q: no task of the flow reads it%s (inputs its tasks read: %s)", name, text.Suggest(name, valid), text.OrNone(valid))
		}
	}
	return nil
}

func loadPlugin(ctx context.Context, eng *host.Engine, p flow.Plugin, wasm []byte) (*host.Module, error) {
	m, err := eng.Load(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Path, err)
	}
	if p.SHA256 != "" && m.SHA256 != p.SHA256 {
		return nil, fmt.Errorf("%s has sha256 %s, but the flow pins %s: refusing a module that changed", p.Path, m.SHA256, p.SHA256)
	}
	return m, nil
}

// locate places a plan error in the flow file.
func locate(f *flow.File, err error) error {
	var de *dag.Error
	if !errors.As(err, &de) {
		return err
	}
	var pos flow.Position
	switch {
	case de.Step > 0:
		pos = f.StepPos(de.Step-1, de.Key)
	case de.Ref != "" && de.Key != "":
		if pos = f.KeyPos("task", de.Ref, de.Key); pos.Line == 0 {
			pos = f.TaskPos(de.Ref)
		}
	case de.Ref != "":
		pos = f.TaskPos(de.Ref)
	case de.Field != "":
		pos = f.KeyPos(de.Field)
	}
	return f.Errorf(pos, "%s", de.Error())
}

// Tenant is the tenant a run of the flow runs as: name when given, else
// the flow's own (`tenant = …`), else policy.DefaultTenant. The name is
// checked.
func (f *Flow) Tenant(name string) (string, error) {
	if name == "" {
		name = f.File.Tenant
	}
	if name == "" {
		name = policy.DefaultTenant
	}
	return name, policy.CheckTenant(name)
}

// ExecOptions configure one in-process run of a flow.
type ExecOptions struct {
	// RunID is the run's id; "" makes a new one.
	RunID string
	// Tenant runs the flow as this tenant (see Flow.Tenant).
	Tenant string
	// Policy is the tenant's policy, applied as a worker applies it: its
	// maxima clamp every call's limits, and it must permit the flow's
	// grants. nil: no maxima.
	Policy *policy.Tenant
	// Observer receives the run's events, besides the host's tracker.
	Observer track.Observer
	// Cache serves and keeps the results of calls that are functions of
	// their input (package cache: cache.OpenDisk); nil caches nothing.
	Cache cache.Store
	// RunFrom, when positive, runs that step (1-based; a node, in plan
	// order) and every later one again, whatever the cache holds.
	RunFrom int
	// OnFailedCall receives each call that failed for good, with its exact
	// input, module and limits (runner.Config.OnFailedCall).
	OnFailedCall func(track.FailedCall)
	// OnBatch receives the times of each batch of a map, filter or group
	// step (runner.Config.OnBatch).
	OnBatch func(runID string, step int, b track.BatchTime)
	// Priority, 1 to 5, overrides the flow's (`priority = …`; 0: the
	// flow's, else the default, 3).
	Priority int
}

// Priority is the priority a run of the flow has: p when set, else the
// flow's, else policy.DefaultPriority. It is checked.
func (f *Flow) Priority(p int) (int, error) {
	if p == 0 {
		p = f.File.Priority
	}
	return policy.Priority(p), policy.CheckPriority(p)
}

// Exec runs a loaded flow in this process, on the host's workers, and
// returns its result. The run's status is kept (Host.Status).
func (h *Host) Exec(ctx context.Context, f *Flow, o ExecOptions) (string, json.RawMessage, error) {
	id := o.RunID
	if id == "" {
		id = runner.NewRunID()
	}
	tenant, err := f.Tenant(o.Tenant)
	if err != nil {
		return id, nil, err
	}
	prio, err := f.Priority(o.Priority)
	if err != nil {
		return id, nil, err
	}
	r := h.newRunner(f.Modules, runner.Config{Tenant: tenant, Policy: o.Policy, Priority: prio, Limits: f.File.Limits, Grants: f.File.Grants,
		Observer: track.Observers(h.tracker, h.opts.Observer, o.Observer), Cache: o.Cache, RunFrom: o.RunFrom, OnFailedCall: o.OnFailedCall, OnBatch: o.OnBatch})
	v, err := r.Exec(ctx, id, f.Plan)
	if err == nil {
		h.tracker.SetResult(id, v)
	}
	return id, v, err
}

// RunOnSchedule fires the flow's [schedule] in this process until ctx
// ends: at each tick it runs the flow (as Exec, with o; each run its own
// id) and hands each its tick, run id, result and error. Ticks missed
// while a run went on are handled as the schedule's catch_up says
// (schedule.Schedule.Due); skipped, when set, hears of those skipped.
func (h *Host) RunOnSchedule(ctx context.Context, f *Flow, o ExecOptions, each func(tick time.Time, runID string, v json.RawMessage, err error), skipped func(upTo time.Time)) error {
	sc := f.File.Schedule
	if sc == nil {
		return ErrNoSchedule
	}
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(sc.Next(last))):
		}
		fire, skipTo := sc.Due(last, time.Now())
		if !skipTo.IsZero() {
			last = skipTo
			if skipped != nil {
				skipped(skipTo)
			}
		}
		for _, tick := range fire {
			last = tick
			run := o
			run.RunID = runner.NewRunID()
			id, v, err := h.Exec(ctx, f, run)
			if ctx.Err() != nil {
				return nil
			}
			each(tick, id, v, err)
		}
	}
}

// SubmitOptions configure a run submitted to Redis workers.
type SubmitOptions struct {
	// RerunOf names the run this one runs again (`flowhost rerun`).
	RerunOf string
	// RunFrom, when positive, runs that step and every later one again,
	// whatever the cache holds.
	RunFrom int
	// Priority, 1 to 5, overrides the flow's (Flow.Priority).
	Priority int
}

// Submit uploads the flow's modules to a Redis broker, under the tenant's
// namespace, and submits it there as run id, kept ttl after it ends. The
// workers run it; Client.Wait waits for it.
func (f *Flow) Submit(ctx context.Context, c *redis.Client, id, tenant string, ttl time.Duration, opts ...SubmitOptions) error {
	var o SubmitOptions
	for _, x := range opts {
		o = x
	}
	spec, err := f.upload(ctx, c, tenant, ttl, o.Priority)
	if err != nil {
		return err
	}
	spec.ID, spec.RerunOf, spec.RunFrom = id, o.RerunOf, o.RunFrom
	return c.Submit(ctx, spec)
}

// ErrNoSchedule is returned by Schedule for a flow without [schedule].
var ErrNoSchedule = errors.New("the flow declares no [schedule]")

// Schedule uploads the flow's modules to a Redis broker and stores its
// [schedule] there as the tenant's schedule name (default: the flow's
// name), replacing one of that name: the workers fire it, each tick a
// run kept ttl after it ends.
func (f *Flow) Schedule(ctx context.Context, c *redis.Client, tenant, name string, ttl time.Duration, priority int) error {
	if f.File.Schedule == nil {
		return ErrNoSchedule
	}
	if name == "" {
		name = f.File.Name
	}
	spec, err := f.upload(ctx, c, tenant, ttl, priority)
	if err != nil {
		return err
	}
	return c.AddSchedule(ctx, tenant, &redis.ScheduleDef{Name: name, Schedule: f.File.Schedule.Spec, Spec: spec})
}

// upload uploads the flow's modules for tenant and returns the spec of
// a run of it, without its id.
func (f *Flow) upload(ctx context.Context, c *redis.Client, tenant string, ttl time.Duration, priority int) (*redis.Spec, error) {
	file := f.File
	spec := &redis.Spec{Tenant: tenant, Name: file.Name, Modules: map[string]string{},
		Seq: file.Sequential, DF: file.Dataflow, Inputs: file.Inputs, Limits: file.Limits, Grants: file.Grants, ResultTTL: ttl,
		Steps: f.Plan.Steps()}
	var err error
	if spec.Priority, err = f.Priority(priority); err != nil {
		return nil, err
	}
	for _, p := range file.Plugins {
		// The bytes the flow was loaded with: a file changed since would
		// be another module than the one the plan was checked against.
		wasm := f.wasm[p.Alias]
		sha := f.Modules[p.Alias].SHA256
		if err := c.Upload(ctx, tenant, sha, wasm); err != nil {
			return nil, fmt.Errorf("upload %s: %w", p.Alias, err)
		}
		spec.Modules[p.Alias] = sha
	}
	return spec, nil
}
