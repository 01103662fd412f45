package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

// This file carries the execution model (package runner) on Redis: each
// message kind's transition, as reads and one atomic script. Every rule
// of a step (its calls, inputs, limits, retries, collection, errors and
// events) is runner's; this file only stores and moves what they decide.

// emit records an event that no script guards (a retry, a failure).
func (w *Worker) emit(ctx context.Context, m *message, e track.Event) {
	w.wrote(ctx, "event", w.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: w.k.eventsKey(m.Tenant, m.Run), NoMkStream: true, MaxLen: 10000, Approx: true, Values: []any{"e", e.Encode()}}).Err())
}

// stepEvent is the base of the events of message m's step or node.
func (w *Worker) stepEvent(rs *runState, m *message) track.Event {
	e := track.Event{RunID: m.Run, Step: m.Step + 1, Name: rs.label(m.Step), Worker: w.cfg.Name}
	if rs.seq != nil {
		e.Kind = rs.seq.Steps[m.Step].Kind
	}
	return e
}

// failStep fails the run with err, the failure of m's step: it records
// the step's step_failed event (unless the call was canceled because the
// run is ending: its failure is another's) and returns err as fatal.
func (w *Worker) failStep(ctx context.Context, rs *runState, m *message, err error) error {
	if !runner.OwnFailure(err) {
		return fatal(err)
	}
	// The step hash records which step failed, and why, for status.
	key := w.k.stepKey(m.Tenant, m.Run, m.Step)
	_, werr := w.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, key, "error", err.Error(), "finished_at", time.Now().UTC().Format(time.RFC3339Nano))
		p.HIncrBy(ctx, key, "failed", 1)
		p.PExpire(ctx, key, 7*rs.spec.ResultTTL)
		return nil
	})
	w.wrote(ctx, "step failure", werr)
	w.emit(ctx, m, runner.StepFailedEvent(w.stepEvent(rs, m), err))
	return fatal(err)
}

func (w *Worker) send(m message) string { return m.encode() }

func (w *Worker) ttl(rs *runState) string {
	return strconv.FormatInt((7 * rs.spec.ResultTTL).Milliseconds(), 10)
}

// initRun starts a run: the first step, or every dataflow node without producers.
func (w *Worker) initRun(ctx context.Context, rs *runState, m *message, d delivery, pol *tenant.Policy) error {
	if rs.seq != nil {
		first := *m
		first.Kind, first.Step = kindStep, 0
		if st := &rs.seq.Steps[0]; st.Cond == nil && st.Kind != pipeline.Branch && st.Kind != pipeline.Flow {
			first.starts = true // the script that starts its calls starts the run
		} else if err := w.started(ctx, rs, m); err != nil {
			return err
		}
		return w.startStep(ctx, rs, &first, d, pol)
	}
	if err := w.started(ctx, rs, m); err != nil {
		return err
	}
	// Dataflow: counters of producers still to finish, then the ready nodes.
	var msgs []string
	fields := []any{}
	for _, n := range rs.df.Nodes {
		fields = append(fields, waitingField(n.ID), len(n.Deps))
		if len(n.Deps) == 0 {
			msgs = append(msgs, w.send(message{Kind: kindStep, Run: m.Run, Tenant: m.Tenant, Step: n.ID}))
		}
	}
	args := append([]any{d.id, len(fields)}, fields...)
	for _, s := range msgs {
		args = append(args, s)
	}
	return initScript.Run(ctx, w.rdb, []string{w.k.runKey(m.Tenant, m.Run), d.stream}, args...).Err()
}

// started moves a pending run to running and records its run_started
// event, once.
func (w *Worker) started(ctx context.Context, rs *runState, m *message) error {
	return runningScript.Run(ctx, w.rdb, []string{w.k.runKey(m.Tenant, m.Run), w.k.eventsKey(m.Tenant, m.Run)}, time.Now().UTC().Format(time.RFC3339Nano), w.runStarted(rs, m)).Err()
}

// runStarted is the run_started event of m's run.
func (w *Worker) runStarted(rs *runState, m *message) string {
	started := runner.RunStartedEvent(m.Run, m.Tenant, rs.spec.Name, rs.plan().Steps())
	started.Worker = w.cfg.Name
	return started.Encode()
}

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

// startStep enqueues the call batches of a sequential step or a dataflow
// node; a step of one batch it runs itself, with d as its record
// (startScript).
func (w *Worker) startStep(ctx context.Context, rs *runState, m *message, d delivery, pol *tenant.Policy) error {
	var calls []runner.Call
	var elems []json.RawMessage
	var taskOf func(i int) int
	if rs.seq != nil {
		st := &rs.seq.Steps[m.Step]
		var prev json.RawMessage
		if !st.First {
			var err error
			if prev, err = w.collect(ctx, rs, m.Tenant, m.Run, m.Step-1); err != nil {
				return err
			}
			prev = runner.OrNull(prev)
		}
		var readErr error
		runs, choice, err := runner.DecideStep(st, prev, rs.spec.Inputs, func(b int) (string, error) {
			c, err := w.rdb.HGet(ctx, w.k.stepKey(m.Tenant, m.Run, b), "case").Result()
			if errors.Is(err, goredis.Nil) {
				return "", nil
			}
			readErr = err
			return c, err
		})
		switch {
		case readErr != nil:
			return readErr
		case err != nil:
			return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, err))
		case !runs:
			from, err := w.passedFrom(ctx, rs, m)
			if err != nil {
				return err
			}
			return w.pass(ctx, rs, m, d, runner.StepSkippedEvent(w.stepEvent(rs, m)), "skipped", 1, "from", from)
		case st.Kind == pipeline.Branch:
			from, err := w.passedFrom(ctx, rs, m)
			if err != nil {
				return err
			}
			return w.pass(ctx, rs, m, d, runner.BranchEvent(w.stepEvent(rs, m), choice), "case", choice, "from", from)
		case st.Kind == pipeline.Flow:
			return w.startSub(ctx, rs, m, d, st, prev)
		}
		calls, elems, err = runner.StepCalls(st, rs.task, prev, st.First, rs.spec.Inputs)
		if err != nil {
			if m.starts {
				w.wrote(ctx, "run started", w.started(ctx, rs, m))
			}
			return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, -1, err))
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
		t, err := rs.task(node.TaskRef)
		if err != nil {
			return fatal(err)
		}
		var readErr error
		input, err := runner.NodeInput(rs.df, node, t, func(n *dag.Node) (map[string]json.RawMessage, error) {
			outs, err := w.nodeOutputs(ctx, rs, m.Tenant, m.Run, n)
			readErr = err
			return outs, err
		})
		if readErr != nil && !errors.Is(readErr, runner.ErrSkipped) {
			return readErr
		}
		runs := err == nil
		if runs {
			runs, err = runner.NodeRuns(rs.df, node, input)
		}
		if errors.Is(err, runner.ErrSkipped) {
			err = nil
		}
		if err != nil {
			return w.failStep(ctx, rs, m, runner.NodeError(m.Run, node, err))
		}
		if !runs {
			return w.pass(ctx, rs, m, d, runner.StepSkippedEvent(w.stepEvent(rs, m)), "skipped", 1)
		}
		calls = []runner.Call{{Task: t, Input: input}}
		taskOf = func(int) int { return 0 }
	}
	started := w.stepEvent(rs, m)
	started.Type, started.Total = track.StepStarted, len(calls)
	finished := started
	finished.Type = track.StepFinished
	runStarted := ""
	if m.starts {
		runStarted = w.runStarted(rs, m)
	}
	args := []any{len(calls), w.ttl(rs), w.next(rs, m), time.Now().UTC().Format(time.RFC3339Nano), started.Encode(), finished.Encode(),
		d.id, w.cfg.Name, "1", runStarted}
	var one message // the step's batch, when it has one
	batches := runner.Batches(calls, w.cfg.Concurrency, w.cfg.BatchSize)
	for _, b := range batches {
		i, j := b[0], b[len(b)-1]+1
		bm := message{Kind: kindCall, Run: m.Run, Tenant: m.Tenant, Step: m.Step, Index: i, Task: taskOf(i)}
		for k := i; k < j; k++ {
			bm.Inputs = append(bm.Inputs, calls[k].Input)
		}
		if elems != nil {
			bm.Elems = elems[i:j]
		}
		args = append(args, w.send(bm))
		one = bm
	}
	code, err := startScript.Run(ctx, w.rdb, []string{w.k.stepKey(m.Tenant, m.Run, m.Step), d.stream, w.k.eventsKey(m.Tenant, m.Run), w.k.runKey(m.Tenant, m.Run)}, args...).Int()
	if err != nil {
		return err
	}
	switch {
	case code == 3 || (code == 2 && len(batches) == 1):
		return w.call(ctx, rs, &one, d, pol)
	case code == 2:
		// The step's hash says it ran inline, which no step of no call or
		// of many batches does: its tenant wrote it. Nothing to run.
		return w.rdb.XAck(ctx, d.stream, group, d.id).Err()
	}
	return nil
}

// passedFrom is where the result a sequential step that makes no call
// passes on comes from, for its hash's "from" field, so that reading it
// is one step's read however many steps pass it on: "none" (no result),
// "in:K" (the flow input step K, a first map or filter, would have run
// over), or the number of the step whose output it is.
func (w *Worker) passedFrom(ctx context.Context, rs *runState, m *message) (string, error) {
	st := &rs.seq.Steps[m.Step]
	base := "none"
	if m.Step > 0 {
		vals, err := w.rdb.HMGet(ctx, w.k.stepKey(m.Tenant, m.Run, m.Step-1), "pass", "from").Result()
		if err != nil {
			return "", err
		}
		if p, _ := vals[0].(string); p == "" {
			base = strconv.Itoa(m.Step - 1)
		} else if f, _ := vals[1].(string); f != "" {
			base = f
		} else {
			base = strconv.Itoa(m.Step - 1) // written before "from" was: read through it
		}
	}
	if base == "none" && st.First && (st.Kind == pipeline.Map || st.Kind == pipeline.Filter) {
		return "in:" + strconv.Itoa(m.Step), nil
	}
	return base, nil
}

// passed is the result a step that made no call passes on, from its
// hash's "from" (passedFrom): read back from a key its tenant may write,
// it must name an earlier step, or this one's flow input.
func (w *Worker) passed(ctx context.Context, rs *runState, tenant, run string, step int, from string) (json.RawMessage, error) {
	st := &rs.seq.Steps[step]
	if k, ok := strings.CutPrefix(from, "in:"); ok {
		if n, err := strconv.Atoi(k); err == nil && n >= 0 && n <= step {
			return runner.Passed(&rs.seq.Steps[n], nil, rs.spec.Inputs), nil
		}
	}
	if from == "none" {
		return nil, nil
	}
	if n, err := strconv.Atoi(from); err == nil && n >= 0 && n < step {
		return w.collect(ctx, rs, tenant, run, n)
	}
	var prev json.RawMessage // no "from": the step before it, as it was
	if step > 0 {
		var err error
		if prev, err = w.collect(ctx, rs, tenant, run, step-1); err != nil {
			return nil, err
		}
	}
	return runner.Passed(st, prev, rs.spec.Inputs), nil
}

// pass ends a step or node that makes no call (skipped, or a branch)
// with its event and the step hash's fields, and sends on what follows.
func (w *Worker) pass(ctx context.Context, rs *runState, m *message, d delivery, e track.Event, fields ...any) error {
	args := append([]any{w.ttl(rs), w.next(rs, m), time.Now().UTC().Format(time.RFC3339Nano), e.Encode()}, fields...)
	if err := passScript.Run(ctx, w.rdb, []string{w.k.stepKey(m.Tenant, m.Run, m.Step), d.stream, w.k.eventsKey(m.Tenant, m.Run)}, args...).Err(); err != nil {
		return err
	}
	return w.rdb.XAck(ctx, d.stream, group, d.id).Err()
}

// nodeOutputs reads a completed dataflow node's outputs, or
// runner.ErrSkipped for one that was skipped.
func (w *Worker) nodeOutputs(ctx context.Context, rs *runState, tenant, run string, n *dag.Node) (map[string]json.RawMessage, error) {
	vals, err := w.rdb.HMGet(ctx, w.k.stepKey(tenant, run, n.ID), "pass", batchField(0)).Result()
	if err != nil {
		return nil, fmt.Errorf("node %s output: %w", n.Ref(), err)
	}
	if vals[0] != nil {
		return nil, runner.ErrSkipped
	}
	raw, ok := vals[1].(string)
	if !ok {
		return nil, fmt.Errorf("node %s output: %w", n.Ref(), goredis.Nil)
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

// collect assembles a sequential step's result from its batches. The
// step hash is read back from a key its tenant may write, so every batch
// is checked against the step's count of calls before anything is
// allocated for it.
func (w *Worker) collect(ctx context.Context, rs *runState, tenant, run string, step int) (json.RawMessage, error) {
	h, err := w.rdb.HGetAll(ctx, w.k.stepKey(tenant, run, step)).Result()
	if err != nil {
		return nil, err
	}
	st := &rs.seq.Steps[step]
	if h["pass"] != "" { // skipped, or a branch: the result before it
		return w.passed(ctx, rs, tenant, run, step, h["from"])
	}
	total, brs, err := parseBatches(h)
	if err != nil {
		return nil, fatal(fmt.Errorf("run %s step %d: stored results: %w", run, step+1, err))
	}
	return stepResult(run, st, total, brs)
}

// stepResult assembles a sequential step's result from its batches'
// results, in call order, which hold its total calls (parseBatches).
func stepResult(run string, st *dag.SeqStep, total int, brs []batchResult) (json.RawMessage, error) {
	bad := func(err error) error {
		return fatal(fmt.Errorf("run %s step %d: stored results: %w", run, st.Index, err))
	}
	if st.Kind == pipeline.Filter {
		// Each batch kept its elements as it ran (runner.FilterKeep).
		var kept [][]byte
		for _, br := range brs {
			for _, e := range br.Kept {
				kept = append(kept, e)
			}
		}
		return runner.JSONArray(kept, nil), nil
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
	return runner.Collect(run, st, outputs, errs, nil)
}

// call runs a batch and records its result.
func (w *Worker) call(ctx context.Context, rs *runState, m *message, d delivery, pol *tenant.Policy) error {
	var task *host.Task
	var opts pipeline.Options
	var kind pipeline.Kind
	var th *dag.Throttle
	// fail is the run's failure by the call of element elem.
	var fail func(elem int, err error) error
	if rs.seq != nil {
		st := &rs.seq.Steps[m.Step]
		task, _ = rs.task(st.Tasks[m.Task].TaskRef)
		opts, kind, th = st.Options, st.Kind, st.Throttle
		fail = func(elem int, err error) error { return w.failStep(ctx, rs, m, runner.StepError(m.Run, st, elem, err)) }
	} else {
		node := rs.df.Nodes[m.Step]
		task, _ = rs.task(node.TaskRef)
		opts, th = node.Options, node.Throttle
		fail = func(_ int, err error) error { return w.failStep(ctx, rs, m, runner.NodeError(m.Run, node, err)) }
	}
	label := rs.label(m.Step)
	lim := runner.StepLimits(rs.spec.Limits, rs.spec.Grants, opts, pol)
	rc := w.ctxFor(m.Tenant, m.Run)
	rctx := host.WithLogInfo(rc.ctx, m.Run, label, rc.logs)
	rctx = host.WithLogSink(rctx, w.keepLog(m.Tenant, m.Run, 7*rs.spec.ResultTTL))
	tm := w.cfg.Metrics.Task(m.Tenant, task.Module().Name, task.Spec.Name)
	br := batchResult{Index: m.Index, Outputs: make([]json.RawMessage, len(m.Inputs))}
	cached := 0
	var fuel, peak uint64 // what the batch's calls burned, the most memory one ended with
	store := w.cacheStore(m.Tenant)
	if store != nil && rs.spec.RunFrom > 0 && m.Step+1 >= rs.spec.RunFrom {
		store = cache.WriteOnly(store)
	}
	// The batch's cache entries are read in one round trip, and its new
	// results written in another.
	inputs := make([][]byte, len(m.Inputs))
	for i, in := range m.Inputs {
		inputs[i] = in
	}
	batch := cache.NewBatch(rctx, store, task, lim, inputs)
	defer batch.Flush(ctx)
	began := time.Now()
	remainder, due := "", time.Time{}
	// A throttled batch runs the calls its slots and tokens allow; the
	// rest waits, holding no worker.
	runnable := len(m.Inputs)
	var keyErr error
	var held *throttled // given back by the batch's last script, else at return
	if th != nil {
		n, h, again, kerr, err := w.throttle(ctx, m.Tenant, th, task, rs, inputs, w.cfg.Name+":"+d.id)
		held = h
		defer func() { w.release(context.WithoutCancel(ctx), held) }()
		switch {
		case err != nil:
			return err // the message comes again
		case kerr != nil && n == 0:
			return fail(m.Index, kerr)
		}
		runnable, keyErr = n, kerr
		if n < len(m.Inputs) && kerr == nil {
			due = time.Now().Add(again)
		}
	}
	// stopAt ends the batch before call i: what it did is stored, and
	// the rest is sent on as a message of its own, its first call at
	// this attempt (the attempt counts that call's failures).
	stopAt := func(i, attempt int) {
		rest := *m
		rest.Index, rest.Inputs, rest.Attempt, rest.Priority = m.Index+i, m.Inputs[i:], attempt, d.priority
		if m.Elems != nil {
			rest.Elems = m.Elems[i:]
		}
		remainder = w.send(rest)
		br.Outputs = br.Outputs[:i]
		if br.Errs != nil {
			br.Errs = br.Errs[:i]
		}
	}
	for i, in := range m.Inputs {
		if i == runnable {
			if keyErr != nil {
				return fail(m.Index+i, keyErr)
			}
			attempt := 0
			if i == 0 {
				attempt = m.Attempt
			}
			stopAt(i, attempt)
			break
		}
		// A long batch yields its slot to another tenant's message
		// waiting for one: it keeps what it did and sends the rest on.
		if i > 0 && time.Since(began) >= yieldAfter && w.sched.othersWaiting(m.Tenant) {
			stopAt(i, 0)
			break
		}
		elem := m.Index + i
		attempt := 0
		if i == 0 {
			attempt = m.Attempt
		}
		start := time.Now()
		out, hit, cs, err := batch.Call(rctx, i, in)
		fuel, peak = fuel+cs.Fuel, max(peak, cs.Memory)
		if hit {
			cached++
			tm.CacheHit()
		} else if batch.Cached(i) {
			tm.CacheMiss()
		}
		tm.Observe(time.Since(start), err, attempt > 0)
		if err != nil {
			switch runner.OnFailure(rc.ctx, err, attempt, kind, opts) {
			case runner.Retry:
				// Retry later from this call, holding no slot meanwhile:
				// what the batch did is stored, the rest waits in the
				// tenant's delayed set until its backoff is over.
				stopAt(i, attempt+1)
				due = time.Now().Add(runner.RetryDelay(attempt + 1))
				w.wrote(ctx, "retry count", w.rdb.HIncrBy(ctx, w.k.stepKey(m.Tenant, m.Run, m.Step), "retries", 1).Err())
				w.emit(ctx, m, runner.StepRetriedEvent(w.stepEvent(rs, m), elem, attempt+1, err))
			case runner.Skip:
				w.recordFailure(ctx, rs, m, elem, task, batch.Input(i, in), lim, attempt+1, err)
				if br.Errs == nil {
					br.Errs = make([]string, len(m.Inputs))
				}
				br.Errs[i] = err.Error()
				br.Outputs[i] = json.RawMessage("null")
				continue
			default:
				w.recordFailure(ctx, rs, m, elem, task, batch.Input(i, in), lim, attempt+1, err)
				return fail(elem, err)
			}
			break
		}
		br.Outputs[i] = out
		if m.Elems != nil {
			keep, err := runner.FilterKeep(out)
			if err != nil {
				return fail(elem, err)
			}
			if keep {
				br.Kept = append(br.Kept, m.Elems[i])
			}
		}
	}
	failed := 0
	for _, e := range br.Errs {
		if e != "" {
			failed++
		}
	}
	res := br.encode()
	fin := w.stepEvent(rs, m)
	fin.Type = track.StepFinished // the script sets its counts
	finJSON := fin.Encode()
	dueMS := ""
	if !due.IsZero() {
		dueMS = strconv.FormatInt(due.UnixMilli(), 10)
	}
	holder, sems := "", []string(nil)
	if held != nil {
		holder, sems = held.holder, held.sems
	}
	gaveBack := func(err error) error {
		if err == nil {
			w.forgetHeld(held)
			held = nil
		}
		return err
	}
	if len(br.Outputs) == 0 {
		// The first call is to be retried: nothing to store.
		return gaveBack(w.whileRefused(ctx, m, func() error {
			return retryScript.Run(ctx, w.rdb, append([]string{d.stream, w.k.delayedKey(m.Tenant), w.k.delayedIndex(m.Tenant)}, sems...), d.id, dueMS, remainder, m.Tenant, holder).Err()
		}))
	}
	// A batch that is the whole of a sequential run's last step ends the
	// run itself, with the result the finish message would assemble.
	var runResult json.RawMessage
	if rs.seq != nil && m.Step == len(rs.seq.Steps)-1 && m.Index == 0 && remainder == "" {
		if r, err := stepResult(m.Run, &rs.seq.Steps[m.Step], len(br.Outputs), []batchResult{br}); err == nil {
			runResult = runner.OrNull(r)
		}
	}
	return gaveBack(w.whileRefused(ctx, m, func() error {
		// The batch's times: queued when its message was added to the
		// stream (the entry's id, not a claim of the body), run from began.
		queued, _, _ := strings.Cut(d.id, "-")
		q, _ := strconv.ParseInt(queued, 10, 64)
		bt, _ := json.Marshal(BatchTime{Index: m.Index, Attempt: m.Attempt, Calls: len(br.Outputs), Failed: failed,
			Queued: q, Started: began.UnixMilli(), Finished: time.Now().UnixMilli()})
		return w.complete(ctx, rs, m, d, completion{result: res, calls: len(br.Outputs), failed: failed, cached: cached, finished: finJSON,
			remainder: remainder, due: dueMS, fuel: fuel, peak: peak, times: bt, holder: holder, sems: sems, runResult: runResult})
	}))
}

// completion is what the end of a batch stores (completeScript).
type completion struct {
	result        []byte // the batchResult
	calls, failed int
	cached        int    // calls whose result came from the cache
	finished      string // the step's step_finished event, its counts to be filled in
	remainder     string // the message of the batch's calls left to run, or ""
	due           string // when the remainder is due (Unix ms), or "": now
	fuel, peak    uint64
	times         []byte // the batch's BatchTime
	holder        string // of the concurrency slots the batch gives back (sems), or ""
	sems          []string
	runResult     json.RawMessage // the run's result, when the batch is all of its last step; or nil
}

// complete stores the end of message m's batch.
func (w *Worker) complete(ctx context.Context, rs *runState, m *message, d delivery, c completion) error {
	keys := append([]string{w.k.stepKey(m.Tenant, m.Run, m.Step), d.stream, w.k.eventsKey(m.Tenant, m.Run), w.k.delayedKey(m.Tenant), w.k.delayedIndex(m.Tenant),
		w.k.timesKey(m.Tenant, m.Run, m.Step), w.k.runKey(m.Tenant, m.Run)}, c.sems...)
	// What ending the run takes (ARGV[17] on) is made only for a batch
	// that may end it: the others, a map's hundreds, send it empty.
	final, topic, ended := "", "", ""
	if c.runResult != nil {
		final, topic = string(c.runResult), w.k.doneTopic(m.Tenant)
		ended = track.Event{Type: track.RunFinished, RunID: m.Run, Worker: w.cfg.Name, Status: track.Succeeded}.Encode()
	}
	args := []any{batchField(m.Index), c.result, w.next(rs, m), d.id, c.calls, c.failed, time.Now().UTC().Format(time.RFC3339Nano), c.finished,
		c.remainder, c.due, m.Tenant, c.fuel, c.peak, fmt.Sprintf("%d:%d", m.Index, m.Attempt), c.times, c.holder,
		final, c.calls, rs.spec.ResultTTL.Milliseconds(), topic, m.Run, ended, c.cached}
	if c.runResult != nil {
		for _, s := range w.k.tenantStreams(m.Tenant) {
			args = append(args, s)
		}
	}
	left, err := completeScript.Run(ctx, w.rdb, keys, args...).Int()
	if err == nil && left == -3 {
		w.forget(m.Tenant, m.Run) // the run ended
	}
	return err
}

// recordFailure keeps a call's final failure for `flowhost call --from`:
// its exact input, module and limits, under the run's keys, for as long
// as the run's state. A run keeps at most track.MaxFailedCalls, and none
// whose input is over track.MaxFailedInput; a call canceled because its
// run ended is not its own failure and is not kept.
func (w *Worker) recordFailure(ctx context.Context, rs *runState, m *message, elem int, task *host.Task, input []byte, lim host.Limits, attempts int, err error) {
	if !runner.OwnFailure(err) || len(input) > track.MaxFailedInput {
		return
	}
	c := track.FailedCall{Step: m.Step + 1, Element: -1, Label: rs.label(m.Step), SHA256: task.Module().SHA256, Task: task.Spec.Name,
		Input: input, Limits: lim, Attempts: attempts, Error: err.Error()}
	if rs.seq != nil {
		st := &rs.seq.Steps[m.Step]
		c.Module = st.Tasks[m.Task].Alias
		switch st.Kind {
		case pipeline.Map, pipeline.Filter:
			c.Element = elem
		case pipeline.Group:
			c.Element = m.Task
		}
	} else {
		c.Module = rs.df.Nodes[m.Step].Alias
	}
	key := w.k.failedKey(m.Tenant, m.Run)
	if n, err := w.rdb.HLen(ctx, key).Result(); err != nil || n >= track.MaxFailedCalls {
		return
	}
	b, _ := json.Marshal(c)
	_, werr := w.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, key, c.Key(), b)
		p.PExpire(ctx, key, 7*rs.spec.ResultTTL)
		return nil
	})
	w.wrote(ctx, "failed call", werr)
}

// yieldAfter is how long a batch runs before it yields its slot to
// another tenant's waiting message.
const yieldAfter = 10 * time.Millisecond

// nodeDone starts the dataflow nodes that became ready.
func (w *Worker) nodeDone(ctx context.Context, rs *runState, m *message, d delivery) error {
	node := rs.df.Nodes[m.Step]
	args := []any{d.id, len(rs.df.Nodes), w.send(message{Kind: kindFinish, Run: m.Run, Tenant: m.Tenant})}
	for _, dep := range node.Dependents {
		args = append(args, waitingField(dep.ID), w.send(message{Kind: kindStep, Run: m.Run, Tenant: m.Tenant, Step: dep.ID}))
	}
	return advanceScript.Run(ctx, w.rdb, []string{w.k.stepKey(m.Tenant, m.Run, m.Step), w.k.runKey(m.Tenant, m.Run), d.stream}, args...).Err()
}

// finish assembles the run's result and ends it.
func (w *Worker) finish(ctx context.Context, rs *runState, m *message, d delivery) error {
	var result json.RawMessage
	if rs.seq != nil {
		var err error
		if result, err = w.collect(ctx, rs, m.Tenant, m.Run, len(rs.seq.Steps)-1); err != nil {
			return err
		}
		result = runner.OrNull(result)
	} else {
		var err error
		result, err = runner.DataflowResult(rs.df, func(n *dag.Node) (map[string]json.RawMessage, error) {
			return w.nodeOutputs(ctx, rs, m.Tenant, m.Run, n)
		})
		if err != nil {
			return err
		}
	}
	w.end(ctx, m, d, track.Succeeded, string(result), "")
	return nil
}

// end ends a run (once) and acknowledges the message.
func (w *Worker) end(ctx context.Context, m *message, d delivery, status track.State, result, errText string) {
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
	ev := track.Event{Type: track.RunFinished, RunID: m.Run, Worker: w.cfg.Name, Status: status, Error: errText}.Encode()
	args := []any{string(status), result, errText, time.Now().UTC().Format(time.RFC3339Nano), ttl, w.k.doneTopic(m.Tenant), m.Run, d.id, d.stream, ev}
	for _, s := range w.k.tenantStreams(m.Tenant) {
		args = append(args, s)
	}
	err := w.whileRefused(ctx, m, func() error {
		return endScript.Run(ctx, w.rdb, []string{w.k.runKey(m.Tenant, m.Run), w.k.runsKey(m.Tenant), w.k.eventsKey(m.Tenant, m.Run)}, args...).Err()
	})
	if err != nil {
		w.log.Warn("cannot end run; the message will be delivered again", "run", m.Run, "err", err)
		return
	}
	if status != track.Succeeded {
		w.wrote(ctx, "cancel notice", w.rdb.Publish(ctx, w.k.cancelTopic(m.Tenant), m.Run).Err()) // stop the run's other calls everywhere
		go cancelChildren(context.Background(), w.rdb, w.k, m.Tenant, m.Run)                      // not in the worker's slot
	}
	w.forget(m.Tenant, m.Run)
}
