package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowhost/flowhost/host"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/pipeline"
)

// ExecSequential runs a checked sequential plan: each step on the
// previous step's result, map and filter elements in parallel.
func (r *Runner) ExecSequential(ctx context.Context, runID string, plan *dag.SeqPlan) (json.RawMessage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.obs.Event(Event{Type: RunStarted, RunID: runID, Time: time.Now(), Steps: len(plan.Steps), Label: plan.Name})
	var prev json.RawMessage
	logs := newLogBudget()
	for i := range plan.Steps {
		res, err := r.execStep(ctx, cancel, runID, &plan.Steps[i], prev, i == 0, plan.Inputs, logs)
		if err != nil {
			r.obs.Event(Event{Type: RunFinished, RunID: runID, Time: time.Now(), Err: err})
			return nil, err
		}
		prev = res
	}
	r.obs.Event(Event{Type: RunFinished, RunID: runID, Time: time.Now()})
	return prev, nil
}

func (r *Runner) execStep(ctx context.Context, cancel context.CancelFunc, runID string, st *dag.SeqStep, prev json.RawMessage, first bool, flow pipeline.Inputs, logs *host.LogBudget) (json.RawMessage, error) {
	stepErr := func(elem int, err error) error {
		return &RunError{RunID: runID, Step: st.Index, Label: st.Label, Element: elem, Err: err}
	}
	calls, elems, err := StepCalls(st, r.task, prev, first, flow)
	if err != nil {
		return nil, stepErr(-1, err)
	}
	total := len(calls)
	ev := Event{RunID: runID, Step: st.Index, Label: st.Label, Kind: st.Kind, Total: total}
	start := time.Now()
	ev.Type, ev.Time = StepStarted, start
	r.obs.Event(ev)

	spec := fanSpec{logs: logs, runID: runID, label: st.Label, calls: calls, limits: r.hostLimits(st.Options.Limits),
		retries: st.Retries, maxParallel: st.MaxParallel, skipErrors: st.SkipErrors,
		onProgress: func(done, failed int) {
			e := ev
			e.Type, e.Time, e.Done, e.Failed = StepProgress, time.Now(), done, failed
			r.obs.Event(e)
		},
		onRetry: func(index, attempt int, err error) {
			e := ev
			e.Type, e.Time, e.Element, e.Attempt, e.Err = StepRetried, time.Now(), index, attempt, err
			r.obs.Event(e)
		},
	}
	if st.Timeout > 0 {
		spec.limits.Timeout = clampTimeout(st.Timeout)
	}
	ch := make(chan *fanResult, 1)
	r.startFanout(ctx, spec, func(res *fanResult) { ch <- res })
	res := <-ch

	finish := func(err error) {
		e := ev
		e.Type, e.Time, e.Err = StepFinished, time.Now(), err
		if res.err != nil {
			e.Failed++ // the call that failed the step
		}
		if res.errs != nil {
			for _, err := range res.errs {
				if err != nil {
					e.Failed++
				}
			}
		}
		e.Done = total
		r.obs.Event(e)
	}
	if res.err != nil {
		cancel() // the step's other calls: its failure is res.err, whatever they report
		elem := res.index
		if st.Kind == pipeline.Call || st.Kind == pipeline.After {
			elem = -1
		}
		err := stepErr(elem, res.err)
		finish(err)
		return nil, err
	}
	out, err := Collect(st, res.outputs, res.errs, elems)
	if err != nil {
		err = stepErr(-1, err)
	}
	finish(err)
	return out, err
}

// MaxStepInput bounds the bytes of all the inputs of one step's calls:
// args are copied into every call of a map, so a small flow could
// otherwise make a host build gigabytes of inputs.
const MaxStepInput = 64 << 20

// StepCalls lists the calls of a sequential step: one per element for a
// map or filter (over prev, or over the flow input named by the param
// for a first step), one per task otherwise. task resolves references;
// elems are the elements a filter keeps or drops.
func StepCalls(st *dag.SeqStep, task func(dag.TaskRef) (*host.Task, error), prev json.RawMessage, first bool, flow pipeline.Inputs) (calls []Call, elems []json.RawMessage, err error) {
	for _, t := range st.Tasks {
		ht, err := task(t.TaskRef)
		if err != nil {
			return nil, nil, err
		}
		tp, err := newTemplate(ht, t.Param, st.Args, flow)
		if err != nil {
			return nil, nil, err
		}
		switch st.Kind {
		case pipeline.Map, pipeline.Filter:
			src := prev
			if first {
				src = flow[t.Param]
			}
			if err := json.Unmarshal(src, &elems); err != nil {
				what := "the previous step's result"
				if first {
					what = fmt.Sprintf("the flow input %q", t.Param)
				}
				return nil, nil, fmt.Errorf("%s %s must be a JSON array, not %s", st.Kind, what, preview(src))
			}
			calls = make([]Call, len(elems))
			size := 0
			for i, e := range elems {
				calls[i] = Call{Task: ht, Input: tp.build(e)}
				if size += len(calls[i].Input); size > MaxStepInput {
					return nil, nil, fmt.Errorf("the inputs of the step's %d calls add up to more than %d MiB (at call %d); pass large constants as one flow input, not as args copied into every call",
						len(elems), MaxStepInput>>20, i)
				}
			}
		default: // call, after, group: one call per task
			calls = append(calls, Call{Task: ht, Input: tp.build(prev)})
		}
	}
	return calls, elems, nil
}

// Collect assembles a step's result from its calls' outputs: the output
// of a call or after step, the array of outputs of a map or group, the
// kept elements of a filter. Calls whose errs entry is set (skipped
// errors) are left out.
func Collect(st *dag.SeqStep, outputs [][]byte, errs []error, elems []json.RawMessage) (json.RawMessage, error) {
	switch st.Kind {
	case pipeline.Call, pipeline.After:
		return outputs[0], nil
	case pipeline.Filter:
		var keep [][]byte
		for i, out := range outputs {
			if errs != nil && errs[i] != nil {
				continue
			}
			switch string(bytes.TrimSpace(out)) {
			case "true":
				keep = append(keep, elems[i])
			case "false":
			default:
				return nil, fmt.Errorf("element %d: a filter task must return true or false, not %s", i, preview(out))
			}
		}
		return jsonArray(keep, nil), nil
	default: // map, group: the outputs in order
		return jsonArray(outputs, errs), nil
	}
}

// jsonArray joins JSON values into an array, leaving out those whose
// error is set.
func jsonArray(values [][]byte, errs []error) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for i, v := range values {
		if errs != nil && errs[i] != nil {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.Write(v)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func preview(b []byte) string {
	const max = 60
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return "nothing"
	}
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
