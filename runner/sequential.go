package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// ExecSequential runs a checked sequential plan: each step on the
// previous step's result, map and filter elements in parallel.
func (r *Runner) ExecSequential(ctx context.Context, runID string, plan *dag.SeqPlan) (json.RawMessage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.obs.Event(r.started(runID, plan.Name, (&dag.Plan{Seq: plan}).Steps()))
	if err := r.permit(); err != nil {
		err = Refused(err)
		r.obs.Event(RunFinishedEvent(runID, err))
		return nil, err
	}
	var prev json.RawMessage
	logs := NewLogBudget()
	chosen := map[int]string{} // the case of each branch step, by index
	for i := range plan.Steps {
		st := &plan.Steps[i]
		ev := track.Event{RunID: runID, Step: st.Index, Name: st.Label, Kind: st.Kind}
		runs, choice, err := DecideStep(st, prev, plan.Inputs, func(b int) (string, error) { return chosen[b], nil })
		switch {
		case err != nil:
			err := StepError(runID, st, -1, err)
			r.obs.Event(StepFailedEvent(ev, err))
			r.obs.Event(RunFinishedEvent(runID, err))
			return nil, err
		case !runs:
			prev = Passed(st, prev, plan.Inputs)
			r.obs.Event(StepSkippedEvent(ev))
			continue
		case st.Kind == pipeline.Branch:
			prev = Passed(st, prev, plan.Inputs)
			chosen[i] = choice
			r.obs.Event(BranchEvent(ev, choice))
			continue
		}
		if !st.First {
			prev = OrNull(prev)
		}
		if st.Kind == pipeline.Flow {
			res, err := r.execSub(ctx, runID, st, prev, plan.Inputs)
			if err != nil {
				r.obs.Event(RunFinishedEvent(runID, err))
				return nil, err
			}
			prev = res
			continue
		}
		res, err := r.execStep(ctx, cancel, runID, st, prev, st.First, plan.Inputs, logs)
		if err != nil {
			r.obs.Event(RunFinishedEvent(runID, err))
			return nil, err
		}
		prev = res
	}
	r.obs.Event(RunFinishedEvent(runID, nil))
	return OrNull(prev), nil
}

func now() time.Time { return time.Now().UTC() }

// execSub runs a flow step: its child flow, as a run of its own on the
// same broker, cancelled with this run (ctx); its failure is the step's.
func (r *Runner) execSub(ctx context.Context, runID string, st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs) (json.RawMessage, error) {
	ev := track.Event{RunID: runID, Step: st.Index, Name: st.Label, Kind: st.Kind, Total: 1}
	fail := func(err error) (json.RawMessage, error) {
		err = StepError(runID, st, -1, err)
		if OwnFailure(err) {
			e := StepFailedEvent(ev, err)
			e.Child = "" // the step's failure, as both drivers report it
			r.obs.Event(e)
		}
		return nil, err
	}
	in, err := SubInputs(st, prev, flow)
	if err != nil {
		return fail(err)
	}
	plan, err := dag.Build(r.Catalog(), st.Sub.Flow.Sequential, st.Sub.Flow.Dataflow, in)
	if err != nil {
		return fail(fmt.Errorf("sub-flow %s: %w", st.Sub.Flow.Name, err))
	}
	child := NewRunID()
	ev.Child = child
	started := ev
	started.Type, started.Time = track.StepStarted, now()
	r.obs.Event(started)
	v, err := r.child(runID, st.Index, st.Sub.Flow).Exec(ctx, child, plan)
	if err != nil {
		if ctx.Err() != nil { // this run was cancelled: the child with it
			return nil, &RunError{RunID: runID, Step: st.Index, Label: st.Label, Element: -1, Err: context.Cause(ctx)}
		}
		return fail(SubError(st, child, err))
	}
	if r.onChildResult != nil {
		r.onChildResult(child, v)
	}
	done := ev
	done.Type, done.Time, done.Done = track.StepFinished, now(), 1
	r.obs.Event(done)
	return v, nil
}

func (r *Runner) execStep(ctx context.Context, cancel context.CancelFunc, runID string, st *dag.SeqStep, prev json.RawMessage, first bool, flow pipeline.Inputs, logs *host.LogBudget) (json.RawMessage, error) {
	ev := track.Event{RunID: runID, Step: st.Index, Name: st.Label, Kind: st.Kind}
	calls, elems, err := StepCalls(st, r.task, prev, first, flow)
	if err != nil {
		err := StepError(runID, st, -1, err)
		r.obs.Event(StepFailedEvent(ev, err))
		return nil, err
	}
	total := len(calls)
	ev.Total = total
	start := ev
	start.Type, start.Time = track.StepStarted, now()
	r.obs.Event(start)

	spec := fanSpec{unitSpec: unitSpec{logs: logs, runID: runID, label: st.Label, kind: st.Kind, opts: st.Options, limits: r.limits(st.Options), step: st.Index,
		throttle: st.Throttle, flow: flow}, calls: calls,
		onProgress: func(done, failed int) {
			e := ev
			e.Type, e.Time, e.Done, e.Failed = track.StepProgress, now(), done, failed
			r.obs.Event(e)
		},
		onRetry: func(index, attempt int, err error) {
			r.obs.Event(StepRetriedEvent(ev, index, attempt, err))
		},
	}
	if st.Kind == pipeline.Filter {
		spec.check = func(out []byte) error { _, err := FilterKeep(out); return err }
	}
	ch := make(chan *fanResult, 1)
	r.startFanout(ctx, spec, func(res *fanResult) { ch <- res })
	res := <-ch

	skipped := 0
	for _, err := range res.errs {
		if err != nil {
			skipped++
		}
	}
	if res.err != nil {
		cancel() // the step's other calls: its failure is res.err, whatever they report
		err := StepError(runID, st, res.index, res.err)
		if OwnFailure(err) {
			r.obs.Event(StepFailedEvent(ev, err))
		}
		return nil, err
	}
	out, err := Collect(runID, st, res.outputs, res.errs, elems)
	if err != nil {
		r.obs.Event(StepFailedEvent(ev, err))
		return nil, err
	}
	e := ev
	e.Type, e.Time, e.Done, e.Failed, e.Cached, e.Fuel, e.PeakMemory = track.StepFinished, now(), total, skipped, res.cached, res.fuel, res.peak
	r.obs.Event(e)
	return out, nil
}
