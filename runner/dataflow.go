package runner

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/track"
)

// ExecDataflow runs a checked dataflow plan: every node starts as soon as
// the last of its producers completes; independent nodes run in parallel.
func (r *Runner) ExecDataflow(ctx context.Context, runID string, plan *dag.DataflowPlan) (json.RawMessage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(plan.Nodes)
	logs := NewLogBudget()
	r.obs.Event(r.started(runID, plan.Name, (&dag.Plan{DF: plan}).Steps()))
	if err := r.permit(); err != nil {
		err = Refused(err)
		r.obs.Event(RunFinishedEvent(runID, err))
		return nil, err
	}

	var (
		mu       sync.Mutex
		waiting  = make([]int, n) // producers not yet complete
		outputs  = make([]map[string]json.RawMessage, n)
		left     = n
		firstErr error
		wg       sync.WaitGroup
		finished = make(chan struct{})
		once     sync.Once
	)
	// end records the run's outcome, once: the first real failure wins,
	// and only then are the other nodes canceled.
	end := func(err error) {
		once.Do(func() {
			firstErr = err
			if err != nil {
				cancel()
			}
			close(finished)
		})
	}
	produced := func(node *dag.Node) (map[string]json.RawMessage, error) {
		mu.Lock()
		defer mu.Unlock()
		if outputs[node.ID] == nil {
			return nil, ErrSkipped
		}
		return outputs[node.ID], nil
	}
	for _, node := range plan.Nodes {
		waiting[node.ID] = len(node.Deps)
	}

	var start func(node *dag.Node)
	var settle func(node *dag.Node, outs map[string]json.RawMessage)
	start = func(node *dag.Node) {
		ev := track.Event{RunID: runID, Step: node.ID + 1, Name: node.Label, Total: 1}
		fail := func(err error) {
			err = NodeError(runID, node, err)
			// A node canceled because the run is ending failed on
			// another's account: that one's failure is the run's.
			if OwnFailure(err) {
				r.obs.Event(StepFailedEvent(ev, err))
			}
			end(err)
		}
		task, err := r.task(node.TaskRef)
		if err != nil {
			fail(err)
			return
		}
		input, err := NodeInput(plan, node, task, produced)
		runs := err == nil
		if runs {
			runs, err = NodeRuns(plan, node, input)
		}
		if errors.Is(err, ErrSkipped) {
			err = nil
		}
		if err != nil {
			fail(err)
			return
		}
		if !runs {
			r.obs.Event(StepSkippedEvent(ev))
			settle(node, nil)
			return
		}
		st := ev
		st.Type, st.Time = track.StepStarted, now()
		r.obs.Event(st)
		spec := fanSpec{logs: logs, runID: runID, label: node.Label, opts: node.Options, calls: []Call{{task, input}}, step: node.ID + 1,
			throttle: node.Throttle, flow: plan.Inputs,
			limits: r.limits(node.Options),
			onRetry: func(index, attempt int, err error) {
				r.obs.Event(StepRetriedEvent(ev, index, attempt, err))
			}}
		spec.opts.MaxParallel = 1
		wg.Add(1)
		r.startFanout(ctx, spec, func(res *fanResult) {
			defer wg.Done()
			if res.err != nil {
				fail(res.err)
				return
			}
			outs, err := task.Outputs(res.outputs[0])
			if err != nil {
				fail(err)
				return
			}
			e := ev
			e.Type, e.Time, e.Done, e.Cached, e.Fuel, e.PeakMemory = track.StepFinished, now(), 1, res.cached, res.fuel, res.peak
			r.obs.Event(e)
			if outs == nil {
				outs = map[string]json.RawMessage{}
			}
			settle(node, outs)
		})
	}
	// settle records a node's outputs (nil: it was skipped) and starts
	// the dependents that became ready.
	settle = func(node *dag.Node, outs map[string]json.RawMessage) {
		var ready []*dag.Node
		mu.Lock()
		outputs[node.ID] = outs
		left--
		for _, d := range node.Dependents {
			waiting[d.ID]--
			if waiting[d.ID] == 0 {
				ready = append(ready, d)
			}
		}
		done := left == 0
		mu.Unlock()
		if ctx.Err() == nil {
			for _, d := range ready {
				start(d)
			}
		}
		if done {
			end(nil)
		}
	}
	for _, node := range plan.Nodes {
		if len(node.Deps) == 0 {
			start(node)
		}
	}
	select {
	case <-finished:
	case <-ctx.Done():
		end(&RunError{RunID: runID, Label: plan.Name, Element: -1, Err: context.Cause(ctx)})
	}
	wg.Wait()
	if firstErr != nil {
		r.obs.Event(RunFinishedEvent(runID, firstErr))
		return nil, firstErr
	}
	result, err := DataflowResult(plan, produced)
	r.obs.Event(RunFinishedEvent(runID, err))
	return result, err
}
