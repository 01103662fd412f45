package runner

import (
	"context"
	"encoding/json"
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
	r.obs.Event(RunStartedEvent(runID, r.tenant, plan.Name, (&dag.Plan{Seq: plan}).Steps()))
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

	spec := fanSpec{logs: logs, runID: runID, label: st.Label, kind: st.Kind, opts: st.Options, calls: calls, limits: r.limits(st.Options), step: st.Index,
		throttle: st.Throttle, flow: flow,
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
