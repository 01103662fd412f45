package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/track"
)

// ExecDataflow runs a checked dataflow plan: every node starts as soon as
// the last of its producers completes; independent nodes run in parallel.
func (r *Runner) ExecDataflow(ctx context.Context, runID string, plan *dag.DataflowPlan) (json.RawMessage, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logs := NewLogBudget()
	r.obs.Event(r.started(runID, plan.Name, (&dag.Plan{DF: plan}).Steps()))
	if err := r.permit(); err != nil {
		err = Refused(err)
		r.obs.Event(RunFinishedEvent(runID, err))
		return nil, err
	}
	d := &dataflowRun{r: r, ctx: ctx, cancel: cancel, runID: runID, plan: plan, logs: logs,
		nodes: make([]dfNode, len(plan.Nodes)), left: len(plan.Nodes), finished: make(chan struct{})}
	for _, node := range plan.Nodes {
		n := &d.nodes[node.ID]
		n.node, n.waiting = node, len(node.Deps)
	}
	for _, node := range plan.Nodes {
		if len(node.Deps) == 0 {
			d.start(&d.nodes[node.ID])
		}
	}
	select {
	case <-d.finished:
	case <-ctx.Done():
		d.end(&RunError{RunID: runID, Label: plan.Name, Element: -1, Err: context.Cause(ctx)})
	}
	d.wg.Wait()
	if d.err != nil {
		r.obs.Event(RunFinishedEvent(runID, d.err))
		return nil, d.err
	}
	result, err := dataflowResult(plan, d.output)
	r.obs.Event(RunFinishedEvent(runID, err))
	return result, err
}

// dataflowRun is a run of a dataflow plan under way: its nodes, and how
// it ends.
type dataflowRun struct {
	r      *Runner
	ctx    context.Context
	cancel context.CancelFunc
	runID  string
	plan   *dag.DataflowPlan
	logs   *host.LogBudget
	// nodes are the plan's, by Node.ID: one allocation for the run.
	nodes []dfNode
	wg    sync.WaitGroup // the calls started

	mu   sync.Mutex
	left int // nodes not yet complete
	// free are the call states of the nodes that finished, for those to
	// come: a run holds as many as it had nodes in flight at once.
	free []*nodeCall

	once     sync.Once
	err      error // the run's failure, once finished is closed
	finished chan struct{}
}

// dfNode is a node of a dataflow run.
type dfNode struct {
	node    *dag.Node
	task    *host.Task
	waiting int // producers not yet complete; under run.mu
	// outs are the node's outputs, by its task's declared outputs, once
	// it completed (one holds a task's only one); nil while it has not,
	// or when it was skipped. Written under run.mu before any consumer
	// starts, they are read without it.
	outs []json.RawMessage
	one  [1]json.RawMessage
}

// nodeCall is the call of a node in flight, its callOwner.
type nodeCall struct {
	run  *dataflowRun
	node *dfNode
	call oneCall
}

// callFor is a call state for node n: one a finished node gave back, or
// a new one.
func (d *dataflowRun) callFor(n *dfNode) *nodeCall {
	d.mu.Lock()
	var c *nodeCall
	if k := len(d.free) - 1; k >= 0 {
		c, d.free = d.free[k], d.free[:k]
	}
	d.mu.Unlock()
	if c == nil {
		c = &nodeCall{run: d}
	}
	c.node = n
	return c
}

// nodeEvent is the base event of node's events in run runID.
func nodeEvent(runID string, node *dag.Node) track.Event {
	return track.Event{RunID: runID, Step: node.ID + 1, Name: node.Label, Total: 1}
}

// end records the run's outcome, once: the first real failure wins, and
// only then are the other nodes canceled.
func (d *dataflowRun) end(err error) {
	d.once.Do(func() {
		d.err = err
		if err != nil {
			d.cancel()
		}
		close(d.finished)
	})
}

// fail ends the run with node's failure. A node canceled because the run
// is ending failed on another's account: that one's failure is the run's.
func (d *dataflowRun) fail(node *dag.Node, err error) {
	err = NodeError(d.runID, node, err)
	if OwnFailure(err) {
		d.r.obs.Event(StepFailedEvent(nodeEvent(d.runID, node), err))
	}
	d.end(err)
}

// start binds a node's inputs and starts its call, or skips it.
func (d *dataflowRun) start(n *dfNode) {
	node := n.node
	task, err := d.r.task(node.TaskRef)
	if err != nil {
		d.fail(node, err)
		return
	}
	n.task = task
	input, err := nodeInput(d.plan, node, task, d.output)
	runs := err == nil
	if runs {
		runs, err = NodeRuns(d.plan, node, input)
	}
	if errors.Is(err, ErrSkipped) {
		err = nil
	}
	if err != nil {
		d.fail(node, err)
		return
	}
	if !runs {
		d.r.obs.Event(StepSkippedEvent(nodeEvent(d.runID, node)))
		d.settle(n, nil)
		return
	}
	st := nodeEvent(d.runID, node)
	st.Type, st.Time = track.StepStarted, now()
	d.r.obs.Event(st)
	spec := unitSpec{logs: d.logs, runID: d.runID, label: node.Label, opts: node.Options, step: node.ID + 1,
		throttle: node.Throttle, flow: d.plan.Inputs, limits: d.r.limits(node.Options)}
	d.wg.Add(1)
	c := d.callFor(n)
	c.call.start(d.r, d.ctx, &spec, Call{task, input}, c)
}

// retried reports a retry of the node's call.
func (c *nodeCall) retried(attempt int, err error) {
	c.run.r.obs.Event(StepRetriedEvent(nodeEvent(c.run.runID, c.node.node), 0, attempt, err))
}

// finished completes the node with its call's outcome, and gives the
// call state back.
func (c *nodeCall) finished(res *fanResult) {
	d, n := c.run, c.node
	defer d.wg.Done()
	err, out, e := res.err, res.outputs[0], nodeEvent(d.runID, n.node)
	e.Cached, e.Fuel, e.PeakMemory = res.cached, res.fuel, res.peak
	d.mu.Lock()
	d.free = append(d.free, c) // res is read: c may run another node's call
	d.mu.Unlock()
	if err != nil {
		d.fail(n.node, err)
		return
	}
	outs, err := nodeOutputs(n.task, out, &n.one)
	if err != nil {
		d.fail(n.node, err)
		return
	}
	e.Type, e.Time, e.Done = track.StepFinished, now(), 1
	d.r.obs.Event(e)
	d.settle(n, outs)
}

// settle records a node's outputs (nil: it was skipped) and starts the
// dependents that became ready.
func (d *dataflowRun) settle(n *dfNode, outs []json.RawMessage) {
	var few [8]*dfNode
	ready := few[:0]
	d.mu.Lock()
	n.outs = outs
	d.left--
	for _, dep := range n.node.Dependents {
		m := &d.nodes[dep.ID]
		if m.waiting--; m.waiting == 0 {
			ready = append(ready, m)
		}
	}
	done := d.left == 0
	d.mu.Unlock()
	if d.ctx.Err() == nil {
		for _, m := range ready {
			d.start(m)
		}
	}
	if done {
		d.end(nil)
	}
}

// output is output name of node, which settled (outputOf).
func (d *dataflowRun) output(node *dag.Node, name string) (json.RawMessage, error) {
	n := &d.nodes[node.ID]
	if n.outs == nil {
		return nil, ErrSkipped
	}
	if k := slices.Index(n.task.Spec.Outputs, name); k >= 0 {
		return n.outs[k], nil
	}
	return nil, nil
}

// nodeOutputs splits a node's output into its task's declared outputs,
// in their order (host.Task.Outputs): a task of one output is its whole
// output, kept in one; a task of none has none, but not nil.
func nodeOutputs(t *host.Task, out []byte, one *[1]json.RawMessage) ([]json.RawMessage, error) {
	names := t.Spec.Outputs
	if len(names) == 1 {
		one[0] = out
		return one[:], nil
	}
	byName, err := t.Outputs(out)
	if err != nil {
		return nil, err
	}
	outs := make([]json.RawMessage, len(names))
	for k, name := range names {
		outs[k] = byName[name]
	}
	return outs, nil
}
