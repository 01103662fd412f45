package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/jsonscan"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// This file holds the rules of a step, pure functions both drivers call:
// which calls a step makes and with what input (StepCalls, NodeInput),
// under what limits (StepLimits), how their outputs become the step's
// result (Collect, FilterKeep, DataflowResult), and how a failure is
// named (StepError, NodeError).

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

// limits are the limits of a step's calls under the runner's flow limits,
// grants and tenant policy.

// StepLimits are the limits of a step's (or dataflow task's) calls: the
// one rule (policy.Scope.Resolve) of both drivers.
func StepLimits(flow pipeline.Limits, grants pipeline.Grants, opts pipeline.Options, tenant *policy.Tenant) host.Limits {
	return policy.Scope{Step: opts.Limits, StepTimeout: opts.Timeout, Flow: flow, Grants: grants, Tenant: tenant}.Resolve()
}

// StepError is the failure of a sequential step: with the element of a
// map, filter or group, without one (-1) for a call or after step.
func StepError(runID string, st *dag.SeqStep, elem int, err error) *RunError {
	if st.Kind == pipeline.Call || st.Kind == pipeline.After {
		elem = -1
	}
	return &RunError{RunID: runID, Step: st.Index, Label: st.Label, Element: elem, Err: err}
}

// NodeError is the failure of a dataflow node.
func NodeError(runID string, node *dag.Node, err error) *RunError {
	return &RunError{RunID: runID, Label: node.Ref(), Element: -1, Err: err}
}

// Produced returns the outputs of a dataflow node that completed, or
// ErrSkipped for one that was skipped.
type Produced func(node *dag.Node) (map[string]json.RawMessage, error)

// output is produced as an outputOf.
func (p Produced) output(node *dag.Node, name string) (json.RawMessage, error) {
	outs, err := p(node)
	return outs[name], err
}

// outputOf returns output name of a dataflow node that completed, or
// ErrSkipped for one that was skipped: what Produced tells, an output at
// a time, of outputs kept in any form.
type outputOf func(node *dag.Node, name string) (json.RawMessage, error)

// ErrSkipped is what Produced returns for a node that did not run: its
// `when` did not hold, or it needed what a skipped node would have made.
var ErrSkipped = errors.New("the task was skipped")

// NodeInput binds a dataflow node's inputs: each from the node that
// produces it, else from the flow's inputs, else from its default, and
// builds the task's input object. An input whose producer was skipped
// takes its declared default; without one, the node is skipped too
// (ErrSkipped).
func NodeInput(plan *dag.DataflowPlan, node *dag.Node, task *host.Task, produced Produced) ([]byte, error) {
	return nodeInput(plan, node, task, produced.output)
}

// nodeInput is NodeInput, reading the producers' outputs with output.
func nodeInput(plan *dag.DataflowPlan, node *dag.Node, task *host.Task, output outputOf) ([]byte, error) {
	values := make(map[string]json.RawMessage, len(node.Inputs))
	for _, b := range node.Inputs {
		switch {
		case b.From != nil:
			v, err := output(b.From, b.Input)
			if errors.Is(err, ErrSkipped) {
				if in, _ := node.Task.Input(b.Input); in != nil && !in.Required() {
					continue // its default
				}
				return nil, err
			}
			if err != nil {
				return nil, err
			}
			values[b.Input] = v
		case b.Flow:
			values[b.Input] = plan.Inputs[b.Input]
		default:
			values[b.Input] = b.Default
		}
	}
	return task.Input(values)
}

// NodeRuns says whether a node whose input is bound runs: its `when`
// holds over the flow's inputs and its own input values (args).
func NodeRuns(plan *dag.DataflowPlan, node *dag.Node, input []byte) (bool, error) {
	if node.Cond == nil {
		return true, nil
	}
	return node.Cond.Bool(expr.Vars{"inputs": inputsObject(node.Cond, plan.Inputs), "args": input})
}

// StepRuns says whether a sequential step runs: it is in no case or in
// the case its branch chose (chosen reads a branch step's choice), and
// its `when` holds over the flow's inputs and the previous result.
func StepRuns(st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs, chosen func(branch int) (string, error)) (bool, error) {
	if st.Branch >= 0 {
		c, err := chosen(st.Branch)
		if err != nil || c != st.Case {
			return false, err
		}
	}
	if st.Cond == nil {
		return true, nil
	}
	return st.Cond.Bool(seqVars(st.Cond, st, prev, flow))
}

// DecideStep is what a sequential step does before any call: whether it
// runs (StepRuns) and, for a branch that runs, the case it chooses.
func DecideStep(st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs, chosen func(branch int) (string, error)) (runs bool, choice string, err error) {
	if runs, err = StepRuns(st, prev, flow, chosen); err != nil || !runs || st.Kind != pipeline.Branch {
		return runs, "", err
	}
	choice, err = BranchCase(st, prev, flow)
	return true, choice, err
}

// BranchCase is the case a branch step chooses: the first whose `when`
// holds, or the default; "" when none does.
func BranchCase(st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs) (string, error) {
	for _, c := range st.Cases {
		if c.Cond == nil {
			return c.Name, nil
		}
		ok, err := c.Cond.Bool(seqVars(c.Cond, st, prev, flow))
		if err != nil {
			return "", fmt.Errorf("case %s: %w", c.Name, err)
		}
		if ok {
			return c.Name, nil
		}
	}
	return "", nil
}

// Passed is the result a step that made no call (skipped, or a branch)
// passes on: the previous step's; when no step before it made one, the
// flow input a first map or filter would have run over, else nil (no
// result: the run's is null).
func Passed(st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs) json.RawMessage {
	if prev == nil && st.First && (st.Kind == pipeline.Map || st.Kind == pipeline.Filter) && len(st.Tasks) > 0 {
		return flow[st.Tasks[0].Param]
	}
	return prev
}

// SubInputs are the inputs of a flow step's child: its own inputs, with
// the step's expressions over the parent's inputs and the previous
// result over them.
func SubInputs(st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs) (pipeline.Inputs, error) {
	in := pipeline.Inputs{}
	for k, v := range st.Sub.Flow.Defaults {
		in[k] = v
	}
	for name, p := range st.Sub.Inputs {
		v, err := p.JSON(seqVars(p, st, prev, flow))
		if err != nil {
			return nil, fmt.Errorf("sub-flow %s, input %s: %w", st.Sub.Flow.Name, name, err)
		}
		in[name] = v
	}
	return in, nil
}

// SubError is a flow step's failure: its child run's.
func SubError(st *dag.SeqStep, child string, err error) error {
	return fmt.Errorf("sub-flow %s (run %s): %w", st.Sub.Flow.Name, child, err)
}

// OrNull is v, or null when there is no value.
func OrNull(v json.RawMessage) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

func seqVars(p *expr.Program, st *dag.SeqStep, prev json.RawMessage, flow pipeline.Inputs) expr.Vars {
	result := json.RawMessage("null")
	if !st.First && prev != nil {
		result = prev
	}
	return expr.Vars{"inputs": inputsObject(p, flow), "result": result}
}

// inputsObject is the flow's inputs as one object, when p reads them:
// only the fields it reads, unless it uses the object whole.
func inputsObject(p *expr.Program, flow pipeline.Inputs) json.RawMessage {
	if !p.Uses("inputs") {
		return nil
	}
	fields, tested, whole := p.Reads("inputs")
	if !whole {
		some := make(map[string]json.RawMessage, len(fields)+len(tested))
		for _, f := range append(fields, tested...) {
			if v, ok := flow[f]; ok {
				some[f] = v
			}
		}
		flow = some
	}
	b, _ := json.Marshal(map[string]json.RawMessage(flow))
	return b
}

// DataflowResult is a dataflow run's result: an object of the requested
// outputs, in the plan's order; an output whose producer was skipped is
// null.
func DataflowResult(plan *dag.DataflowPlan, produced Produced) (json.RawMessage, error) {
	return dataflowResult(plan, produced.output)
}

// dataflowResult is DataflowResult, reading the producers' outputs with
// output.
func dataflowResult(plan *dag.DataflowPlan, output outputOf) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, o := range plan.Outputs {
		v, err := output(plan.Producer[o], o)
		if errors.Is(err, ErrSkipped) {
			v, err = json.RawMessage("null"), nil
		}
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(o)
		b.Write(key)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
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
			if elems, err = jsonscan.Array(src); err != nil {
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
// errors) are left out. A filter's output that is not a boolean fails
// the step, as a *RunError naming its element.
func Collect(runID string, st *dag.SeqStep, outputs [][]byte, errs []error, elems []json.RawMessage) (json.RawMessage, error) {
	switch st.Kind {
	case pipeline.Call, pipeline.After, pipeline.Flow:
		return outputs[0], nil
	case pipeline.Filter:
		var keep [][]byte
		for i, out := range outputs {
			if errs != nil && errs[i] != nil {
				continue
			}
			ok, err := FilterKeep(out)
			if err != nil {
				return nil, StepError(runID, st, i, err)
			}
			if ok {
				keep = append(keep, elems[i])
			}
		}
		return JSONArray(keep, nil), nil
	default: // map, group: the outputs in order
		return JSONArray(outputs, errs), nil
	}
}

// FilterKeep is the rule of a filter task's output: true keeps the
// element, false drops it, anything else fails the step.
func FilterKeep(out []byte) (bool, error) {
	switch string(bytes.TrimSpace(out)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("a filter task must return true or false, not %s", preview(out))
}

// JSONArray joins JSON values into an array, leaving out those whose
// error is set.
func JSONArray(values [][]byte, errs []error) json.RawMessage {
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

// The events of a step and a run, built alike by both drivers from the
// step's base event (its run, step, name and kind).

// RunStartedEvent starts a run of tenant with these steps.
func RunStartedEvent(runID, tenant, name string, steps []dag.StepInfo) track.Event {
	return ChildStartedEvent(runID, tenant, name, steps, "", 0)
}

// ChildStartedEvent is RunStartedEvent of a sub-flow's run, started by
// parent's step (1-based; "" and 0 for a run of its own).
func ChildStartedEvent(runID, tenant, name string, steps []dag.StepInfo, parent string, step int) track.Event {
	e := track.Event{Type: track.RunStarted, RunID: runID, Time: now(), Name: name, Tenant: tenant, Steps: len(steps), Parent: parent, ParentStep: step}
	deps := false
	if len(steps) > 0 {
		e.StepNames = make([]string, 0, len(steps))
	}
	for _, s := range steps {
		e.StepNames = append(e.StepNames, s.Name)
		deps = deps || len(s.Deps) > 0
	}
	if deps {
		e.StepDeps = make([][]int, 0, len(steps))
		for _, s := range steps {
			e.StepDeps = append(e.StepDeps, s.Deps)
		}
	}
	return e
}

// StepSkippedEvent is a step (or node) its `when` or its branch left out.
func StepSkippedEvent(step track.Event) track.Event {
	e := step
	e.Type, e.Time, e.Total, e.Done, e.Failed = track.StepSkipped, now(), 0, 0, 0
	return e
}

// BranchEvent ends a branch step, with the case it chose.
func BranchEvent(step track.Event, chosen string) track.Event {
	e := step
	e.Type, e.Time, e.Case = track.StepFinished, now(), chosen
	return e
}

// StepRetriedEvent is a call scheduled again after err: its attempt
// (from 1) and, for a map, filter or group, its element.
func StepRetriedEvent(step track.Event, index, attempt int, err error) track.Event {
	e := step
	e.Type, e.Time, e.Attempt, e.Err, e.Error = track.StepRetried, now(), attempt, err, err.Error()
	e.Total, e.Done, e.Failed = 0, 0, 0
	if fans(step.Kind) {
		e.Element = track.Elem(index)
	}
	return e
}

// StepFailedEvent ends a step that failed its run with err: one more
// failed call (or the step itself, when it failed before or after its
// calls), and its element. Its counts are not repeated: they depend on
// how far the other calls got, which no two runs agree on.
func StepFailedEvent(step track.Event, err error) track.Event {
	e := step
	e.Type, e.Time, e.Err, e.Error, e.Failed = track.StepFailed, now(), err, err.Error(), 1
	e.Total, e.Done = 0, 0
	var re *RunError
	if errors.As(err, &re) && re.Element >= 0 {
		e.Element = track.Elem(re.Element)
	}
	return e
}

// Refused is the failure of a run its tenant's policy refuses (a grant or
// a module it may not have), before any task runs.
func Refused(err error) error { return fmt.Errorf("the tenant's policy refuses the run: %w", err) }

// OwnFailure reports whether err is a step's own failure, one that gets a
// step_failed event: a call canceled because its run was ending (another
// step failed, or the run was cancelled) failed on another's account.
func OwnFailure(err error) bool { return host.KindOf(err) != host.KindCanceled }

// RunFinishedEvent ends a run: succeeded when err is nil, else failed, or
// cancelled when it was stopped on purpose.
func RunFinishedEvent(runID string, err error) track.Event {
	e := track.Event{Type: track.RunFinished, RunID: runID, Time: now(), Status: track.Succeeded}
	if err != nil {
		e.Status, e.Err, e.Error = RunState(err), err, err.Error()
	}
	return e
}

// RunState is the final state of a run that failed with err.
func RunState(err error) track.State {
	if errors.Is(err, context.Canceled) || host.KindOf(err) == host.KindCanceled {
		return track.Cancelled
	}
	return track.Failed
}

// fans reports whether a step of kind has elements (one call each).
func fans(kind pipeline.Kind) bool {
	return kind == pipeline.Map || kind == pipeline.Filter || kind == pipeline.Group
}
