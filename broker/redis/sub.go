package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// This file is sub-flows on Redis. A flow step creates its child run
// (with the step's start, in one script): a run of its own, on the
// parent's stream, whose hash names its parent, the step and the stream
// to tell. The run's end (endScript, or a cancel) sends the parent a
// child message there; the worker that reads it stores the child's
// result as the step's, or fails the step with the child's error. The
// step waits holding no worker. A parent that ends before its children
// cancels them.

// childrenKey is the set of a run's sub-flow runs.
func (k keyspace) childrenKey(tenant, run string) string { return k.runKey(tenant, run) + ":children" }

// childRunID is the run a flow step starts: the same for every delivery
// of its message, sorted by its parent.
func childRunID(parent string, step int) string {
	sum := sha256.Sum256([]byte(parent + "/" + strconv.Itoa(step)))
	prefix := hex.EncodeToString(sum[6:12])[:11]
	if len(parent) >= 11 && strings.Trim(parent[:11], "0123456789abcdef") == "" {
		prefix = parent[:11] // sorted with its parent (a run id begins with its time)
	}
	return prefix + hex.EncodeToString(sum[:6])
}

// maxSubDepth bounds how deep a stored spec's sub-flows nest.
const maxSubDepth = 8

// checkSubs refuses a stored spec whose sub-flows nest too deep or hold
// more steps, all told, than maxSpecSteps.
func checkSubs(seq *pipeline.Sequential, df *pipeline.Dataflow, depth int, steps *int) error {
	if seq == nil {
		if df != nil {
			*steps += len(df.Tasks)
		}
		return nil
	}
	for _, st := range seq.Steps {
		if *steps++; *steps > maxSpecSteps {
			return fmt.Errorf("more than %d steps, sub-flows included", maxSpecSteps)
		}
		if st.Sub == nil {
			continue
		}
		if depth >= maxSubDepth {
			return fmt.Errorf("sub-flows nest more than %d deep", maxSubDepth)
		}
		if err := checkSubs(st.Sub.Sequential, st.Sub.Dataflow, depth+1, steps); err != nil {
			return err
		}
	}
	return nil
}

// subScript starts a flow step once: the step's hash counts one call
// (its child), its step_started event, and the child run, created and
// enqueued unless it exists.
// KEYS: the step hash, the parent's events, the child's run hash, the
// tenant's runs index, the stream, the parent's children set. ARGV: ttl
// ms, now (RFC 3339), the step's started event, the child's id, its
// hash's fields (JSON object), its init message, now (ms), the child's ttl ms.
var subScript = goredis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'started', 1) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'left', 1, 'total', 1, 'done', 0, 'started_at', ARGV[2], 'child', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'e', ARGV[3])
redis.call('SADD', KEYS[6], ARGV[4])
redis.call('PEXPIRE', KEYS[6], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then
  for k, v in pairs(cjson.decode(ARGV[5])) do redis.call('HSET', KEYS[3], k, v) end
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[4])
  redis.call('XADD', KEYS[5], '*', 'm', ARGV[6])
end
return 1
`)

// startSub starts a flow step: its child run.
func (w *Worker) startSub(ctx context.Context, rs *runState, m *message, d delivery, st *dag.SeqStep, prev []byte) error {
	in, err := runner.SubInputs(st, prev, rs.spec.Inputs)
	if err != nil {
		return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, err))
	}
	cat := dag.Catalog{}
	for alias, mod := range rs.mods {
		cat[alias] = mod.Manifest
	}
	sub := st.Sub.Flow
	plan, err := dag.Build(cat, sub.Sequential, sub.Dataflow, in)
	if err != nil {
		return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, fmt.Errorf("sub-flow %s: %w", sub.Name, err)))
	}
	child := childRunID(m.Run, m.Step+1)
	spec := &Spec{ID: child, Tenant: m.Tenant, Name: sub.Name, Modules: rs.spec.Modules, Seq: sub.Sequential, DF: sub.Dataflow,
		Inputs: in, Limits: sub.Limits, Grants: sub.Grants, ResultTTL: rs.spec.ResultTTL, Steps: plan.Steps(), Priority: rs.spec.Priority,
		Parent: m.Run, ParentStep: m.Step + 1}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	steps, _ := json.Marshal(spec.Steps)
	now := time.Now().UTC()
	fields, _ := json.Marshal(map[string]string{"spec": string(b), "steps": string(steps), "status": string(track.Pending), "tenant": m.Tenant,
		"name": sub.Name, "created_at": now.Format(time.RFC3339Nano), "parent": m.Run, "parent_step": strconv.Itoa(m.Step + 1), "parent_stream": d.stream})
	init, _ := json.Marshal(message{Kind: kindInit, Run: child})
	started := w.stepEvent(rs, m)
	started.Type, started.Total, started.Child = track.StepStarted, 1, child
	err = subScript.Run(ctx, w.rdb, []string{w.k.stepKey(m.Tenant, m.Run, m.Step), w.k.eventsKey(m.Tenant, m.Run), w.k.runKey(m.Tenant, child), w.k.runsKey(m.Tenant), d.stream,
		w.k.childrenKey(m.Tenant, m.Run)}, w.ttl(rs), now.Format(time.RFC3339Nano), started.Encode(), child, string(fields), string(init), now.UnixMilli(),
		(7 * rs.spec.ResultTTL).Milliseconds()).Err()
	if err != nil {
		return err
	}
	return w.rdb.XAck(ctx, d.stream, group, d.id).Err()
}

// childDone settles a flow step whose child run ended: its result is the
// step's, its failure the step's.
func (w *Worker) childDone(ctx context.Context, rs *runState, m *message, d delivery) error {
	st := &rs.seq.Steps[m.Step]
	child, err := w.rdb.HGet(ctx, w.k.stepKey(m.Tenant, m.Run, m.Step), "child").Result()
	if errors.Is(err, goredis.Nil) || policy.CheckRunID(child) != nil {
		w.refuse(ctx, d, "invalid", fmt.Errorf("run %s step %d started no sub-flow", m.Run, m.Step+1))
		return nil
	}
	if err != nil {
		return err
	}
	vals, err := w.rdb.HMGet(ctx, w.k.runKey(m.Tenant, child), "status", "result", "error").Result()
	if err != nil {
		return err
	}
	status, _ := vals[0].(string)
	result, _ := vals[1].(string)
	errText, _ := vals[2].(string)
	switch track.State(status) {
	case track.Succeeded:
		if !json.Valid([]byte(result)) {
			return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, runner.SubError(st, child, errors.New("its stored result is not JSON"))))
		}
	case track.Failed, track.Cancelled:
		if errText == "" {
			errText = status
		}
		return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, runner.SubError(st, child, errors.New(errText))))
	default: // not over: a message no worker sent
		w.refuse(ctx, d, "invalid", fmt.Errorf("run %s step %d: its sub-flow %s has not ended", m.Run, m.Step+1, child))
		return nil
	}
	res := (&batchResult{Index: 0, Outputs: []json.RawMessage{json.RawMessage(result)}}).encode()
	fin := w.stepEvent(rs, m)
	fin.Type, fin.Child = track.StepFinished, child
	queued, _, _ := strings.Cut(d.id, "-")
	q, _ := strconv.ParseInt(queued, 10, 64)
	bt, _ := json.Marshal(BatchTime{Calls: 1, Queued: q, Started: q, Finished: time.Now().UnixMilli()})
	return w.complete(ctx, rs, m, d, completion{result: res, calls: 1, finished: fin.Encode(), times: bt})
}
