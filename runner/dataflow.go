package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/flowhost/flowhost/dag"
)

// ExecDataflow runs a checked dataflow plan: every node starts as soon as
// the last of its producers completes; independent nodes run in parallel.
func (r *Runner) ExecDataflow(ctx context.Context, runID string, plan *dag.DataflowPlan) (json.RawMessage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(plan.Nodes)
	logs := newLogBudget()
	r.obs.Event(Event{Type: RunStarted, RunID: runID, Time: time.Now(), Steps: n, Label: plan.Name})

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
	end := func(err error) {
		once.Do(func() {
			firstErr = err
			if err != nil {
				cancel()
			}
			close(finished)
		})
	}
	for _, node := range plan.Nodes {
		waiting[node.ID] = len(node.Deps)
	}

	var start func(node *dag.Node)
	start = func(node *dag.Node) {
		label := node.Ref()
		ev := Event{RunID: runID, Step: node.ID + 1, Label: label, Total: 1}
		fail := func(err error) {
			err = &RunError{RunID: runID, Label: label, Element: -1, Err: err}
			e := ev
			e.Type, e.Time, e.Err, e.Failed = StepFinished, time.Now(), err, 1
			r.obs.Event(e)
			end(err)
		}
		task, err := r.task(node.TaskRef)
		if err != nil {
			fail(err)
			return
		}
		values := make(map[string]json.RawMessage, len(node.Inputs))
		mu.Lock()
		for _, b := range node.Inputs {
			switch {
			case b.From != nil:
				values[b.Input] = outputs[b.From.ID][b.Input]
			case b.Flow:
				values[b.Input] = plan.Inputs[b.Input]
			default:
				values[b.Input] = b.Default
			}
		}
		mu.Unlock()
		input, err := task.Input(values)
		if err != nil {
			fail(err)
			return
		}
		ev.Type, ev.Time = StepStarted, time.Now()
		r.obs.Event(ev)
		spec := fanSpec{logs: logs, runID: runID, label: label, calls: []Call{{task, input}},
			limits: r.hostLimits(node.Options.Limits), retries: node.Options.Retries, maxParallel: 1,
			onRetry: func(index, attempt int, err error) {
				e := ev
				e.Type, e.Time, e.Attempt, e.Err = StepRetried, time.Now(), attempt, err
				r.obs.Event(e)
			}}
		if node.Options.Timeout > 0 {
			spec.limits.Timeout = clampTimeout(node.Options.Timeout)
		}
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
			e.Type, e.Time, e.Done = StepFinished, time.Now(), 1
			r.obs.Event(e)
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
		})
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
		r.obs.Event(Event{Type: RunFinished, RunID: runID, Time: time.Now(), Err: firstErr})
		return nil, firstErr
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, o := range plan.Outputs {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(o)
		b.Write(key)
		b.WriteByte(':')
		b.Write(outputs[plan.Producer[o].ID][o])
	}
	b.WriteByte('}')
	r.obs.Event(Event{Type: RunFinished, RunID: runID, Time: time.Now()})
	return b.Bytes(), nil
}
