package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// This file rebuilds a run's plan from its stored spec, once per worker,
// with the modules it names.

// maxSpecBytes bounds a stored spec a worker reads: a run's inputs (at
// most what a step may take, runner.MaxStepInput, and what a message
// carries) and its pipeline.
const maxSpecBytes = 2 * maxMessageBytes

// runState is a run's plan, as a worker rebuilds it from the spec.
type runState struct {
	spec *Spec
	mods map[string]*host.Module
	seq  *dag.SeqPlan
	df   *dag.DataflowPlan
}

// runState loads (once per worker) a run's spec, modules and plan.
func (w *Worker) runState(ctx context.Context, tenant, run string) (*runState, track.State, error) {
	key := tenant + "/" + run
	w.mu.Lock()
	rs, _ := w.runs.get(key)
	w.mu.Unlock()
	want := "1" // the spec, unless the run's plan is loaded already
	if rs != nil {
		want = "0"
	}
	// One round trip: the status, and the spec when it is wanted and
	// not too large to read.
	vals, err := specScript.Run(ctx, w.rdb, []string{w.k.runKey(tenant, run)}, want, maxSpecBytes).Slice()
	if err != nil {
		return nil, "", err
	}
	st, _ := vals[0].(string)
	status := track.State(st)
	if status == "" {
		return nil, "", ErrNoRun
	}
	if rs != nil {
		return rs, status, nil
	}
	if len(vals) < 2 {
		return nil, status, fatal(fmt.Errorf("run %s: no spec", run))
	}
	if n, _ := vals[1].(int64); n > maxSpecBytes {
		return nil, status, fatal(fmt.Errorf("run %s: its spec is %d bytes, more than %d", run, n, maxSpecBytes))
	}
	specJSON := ""
	if len(vals) > 2 {
		specJSON, _ = vals[2].(string)
	}
	if len(specJSON) > maxSpecBytes {
		return nil, status, fatal(fmt.Errorf("run %s: its spec is %d bytes, more than %d", run, len(specJSON), maxSpecBytes))
	}
	var spec Spec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: unreadable spec: %w", run, err))
	}
	if err := spec.check(run); err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: invalid spec: %w", run, err))
	}
	spec.Tenant = tenant // the key it was read from says whose it is
	rs = &runState{spec: &spec, mods: map[string]*host.Module{}}
	cat := dag.Catalog{}
	for alias, sha := range spec.Modules {
		m, err := w.module(ctx, tenant, sha)
		if err != nil {
			return nil, status, err
		}
		rs.mods[alias] = m
		cat[alias] = m.Manifest
	}
	plan, err := dag.Build(cat, spec.Seq, spec.DF, spec.Inputs)
	if err != nil {
		return nil, status, fatal(fmt.Errorf("run %s: %w", run, err))
	}
	rs.seq, rs.df = plan.Seq, plan.DF
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
	wasm, err := w.rdb.Get(ctx, w.k.moduleKey(tenant, sha)).Bytes()
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

// plan is the run's plan.
func (rs *runState) plan() *dag.Plan { return &dag.Plan{Seq: rs.seq, DF: rs.df} }
