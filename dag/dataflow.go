package dag

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/pipeline"
)

// Binding says where one input of a node comes from: another node's
// output, a flow input, or the input's default.
type Binding struct {
	Input string
	// From is the producing node, or nil.
	From *Node
	// Flow is set when a flow input provides the value.
	Flow bool
	// Default holds the declared default when nothing else provides it.
	Default json.RawMessage
}

// Node is one task of a dataflow plan.
type Node struct {
	ID int
	TaskRef
	// Label is TaskRef.Ref(), made once.
	Label   string
	Options pipeline.Options
	// Cond is the task's checked `when`, or nil.
	Cond *expr.Program
	// Throttle is the task's checked concurrency key and rate, or nil.
	Throttle *Throttle
	Inputs   []Binding
	// Deps are the nodes whose outputs this node consumes; Dependents the
	// nodes that consume this node's outputs. Both are sorted by ID, unique.
	Deps, Dependents []*Node
}

// DataflowPlan is a checked dataflow graph, pruned to what the requested
// outputs need, in a topological order.
type DataflowPlan struct {
	Name string
	// Nodes are in topological order; Node.ID is the index.
	Nodes []*Node
	// Outputs are the requested output names, each with its producer.
	Outputs  []string
	Producer map[string]*Node
	// Pruned are the selected tasks that do not run: no requested output needs them.
	Pruned []TaskRef
	// Inputs are the flow inputs the plan was checked against.
	Inputs pipeline.Inputs
}

// PlanDataflow builds the graph of a dataflow pipeline from the tasks'
// manifests: each input is bound by name to the task that produces it,
// else to a flow input, else to its default. Only the tasks the requested
// outputs need are kept, and only they must have their inputs bound.
func PlanDataflow(c Catalog, p *pipeline.Dataflow, in pipeline.Inputs) (*DataflowPlan, error) {
	if len(p.Tasks) == 0 {
		return nil, &Error{Field: "tasks", Msg: "the pipeline selects no task"}
	}
	if err := pipeline.CheckInputs(in); err != nil {
		return nil, &Error{Field: "inputs", Msg: err.Error()}
	}
	// Select tasks; a task selected twice (by name and by a glob) is one node.
	var sel []TaskRef
	seen := map[string]bool{}
	tasks := newLookup(c)
	for _, ref := range p.Tasks {
		trs, msg := tasks.expand(ref)
		if msg != "" {
			return nil, &Error{Ref: ref, Field: "tasks", Msg: msg}
		}
		for _, tr := range trs {
			if !seen[tr.Ref()] {
				seen[tr.Ref()] = true
				sel = append(sel, tr)
			}
		}
	}
	for ref, o := range p.TaskOptions {
		if !seen[ref] {
			return nil, &Error{Ref: ref, Msg: fmt.Sprintf("[task.%q] configures a task that tasks = [...] does not select", ref)}
		}
		if _, msg := checkOptions(o); msg != "" {
			return nil, &Error{Ref: ref, Msg: fmt.Sprintf("[task.%q]: %s", ref, msg)}
		}
		if o.Case != "" {
			return nil, &Error{Ref: ref, Key: "case", Msg: fmt.Sprintf("[task.%q]: case belongs to sequential flows (a dataflow task runs by its when)", ref)}
		}
	}
	// Producers.
	producer := map[string]int{}
	for i, tr := range sel {
		for _, out := range tr.Task.Outputs {
			if j, ok := producer[out]; ok {
				return nil, &Error{Ref: tr.Ref(), Field: "tasks", Msg: fmt.Sprintf("two tasks produce %q: %s and %s; select only one of them", out, sel[j].Ref(), tr.Ref())}
			}
			producer[out] = i
		}
	}
	// Requested outputs: default, every output no selected task consumes.
	outputs := p.Outputs
	if len(outputs) == 0 {
		consumed := map[string]bool{}
		for _, tr := range sel {
			for _, inp := range tr.Task.Inputs {
				if _, ok := producer[inp.Name]; ok {
					consumed[inp.Name] = true
				}
			}
		}
		for _, tr := range sel {
			for _, out := range tr.Task.Outputs {
				if !consumed[out] {
					outputs = append(outputs, out)
				}
			}
		}
		if len(outputs) == 0 {
			return nil, &Error{Field: "outputs", Msg: "every output is consumed by another task, so there is no final output: name the outputs to compute with outputs = [...]"}
		}
	}
	all := make([]string, 0, len(producer))
	for name := range producer {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, o := range outputs {
		if _, ok := producer[o]; !ok {
			return nil, &Error{Field: "outputs", Msg: fmt.Sprintf("no selected task produces %q%s (outputs: %s)", o, suggest(o, all), strings.Join(all, ", "))}
		}
	}
	// Keep what the outputs need: walk back from their producers. A cycle
	// is found on the way, with its path.
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(sel))
	var order []int // post-order: dependencies first
	var path []int
	var visit func(i int) *Error
	visit = func(i int) *Error {
		switch state[i] {
		case done:
			return nil
		case onPath:
			start := 0
			for k, j := range path {
				if j == i {
					start = k
				}
			}
			var cyc []string
			for _, j := range path[start:] {
				cyc = append(cyc, sel[j].Ref())
			}
			cyc = append(cyc, sel[i].Ref())
			return &Error{Ref: sel[i].Ref(), Field: "tasks", Msg: "the tasks form a cycle: " + strings.Join(cyc, " → ")}
		}
		state[i] = onPath
		path = append(path, i)
		for _, inp := range sel[i].Task.Inputs {
			if j, ok := producer[inp.Name]; ok {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		order = append(order, i)
		return nil
	}
	for _, o := range outputs {
		if err := visit(producer[o]); err != nil {
			return nil, err
		}
	}
	plan := &DataflowPlan{Name: p.Name, Outputs: outputs, Producer: map[string]*Node{}, Inputs: in}
	nodeOf := map[int]*Node{}
	for _, i := range order {
		ref := sel[i].Ref()
		n := &Node{ID: len(plan.Nodes), TaskRef: sel[i], Label: ref, Options: p.TaskOptions[ref]}
		if _, msg := checkValues(n.TaskRef, n.Options.Args); msg != "" {
			return nil, &Error{Ref: n.Ref(), Field: "tasks", Msg: msg}
		}
		if n.Options.When != "" {
			cond, err := compileCond(n.Options.When, DataflowVars, in, &n.TaskRef)
			if err != nil {
				return nil, &Error{Ref: n.Ref(), Key: "when", Msg: fmt.Sprintf("[task.%q] when: %v", n.Ref(), err)}
			}
			n.Cond = cond
		}
		th, thKey, err := planThrottle(n.Options, in, []TaskRef{n.TaskRef})
		if err != nil {
			return nil, &Error{Ref: n.Ref(), Key: thKey, Msg: fmt.Sprintf("[task.%q] %v", n.Ref(), err)}
		}
		n.Throttle = th
		nodeOf[i] = n
		plan.Nodes = append(plan.Nodes, n)
	}
	for _, i := range order {
		n := nodeOf[i]
		deps := map[*Node]bool{}
		for _, inp := range n.Task.Inputs {
			b := Binding{Input: inp.Name}
			if v, ok := n.Options.Args[inp.Name]; ok {
				b.Default = v // a constant arg beats every binding
			} else if j, ok := producer[inp.Name]; ok {
				b.From = nodeOf[j]
				deps[b.From] = true
				if out := b.From.Task.OutputType(inp.Name); !abi.CanMatch(out, &inp.Schema) {
					return nil, &Error{Ref: n.Ref(), Field: "tasks", Msg: fmt.Sprintf("input %q of %s is %s, but %s's output %q, bound to it, is %s: no value is both",
						inp.Name, n.Ref(), inp.Schema.String(), b.From.Ref(), inp.Name, out.String())}
				}
			} else if v, ok := in[inp.Name]; ok {
				b.Flow = true
				if err := inp.Schema.Check(v); err != nil && !IsPlaceholder(v) {
					return nil, &Error{Ref: n.Ref(), Field: "inputs", Msg: fmt.Sprintf("the flow input %q, bound to the input of %s, %v", inp.Name, n.Ref(), err)}
				}
			} else if !inp.Required() {
				b.Default = inp.Default
			} else {
				return nil, &Error{Ref: n.Ref(), Field: "tasks", Msg: fmt.Sprintf("required input %q of %s is not bound: no selected task produces it and the flow gives no input of that name (add it to [inputs] or pass --input %s=…)", inp.Name, n.Ref(), inp.Name)}
			}
			n.Inputs = append(n.Inputs, b)
		}
		for d := range deps {
			n.Deps = append(n.Deps, d)
			d.Dependents = append(d.Dependents, n)
		}
	}
	for _, n := range plan.Nodes {
		sortNodes(n.Deps)
		sortNodes(n.Dependents)
	}
	for _, o := range outputs {
		plan.Producer[o] = nodeOf[producer[o]]
	}
	for i, tr := range sel {
		if _, ok := nodeOf[i]; !ok {
			plan.Pruned = append(plan.Pruned, tr)
		}
	}
	return plan, nil
}

func sortNodes(ns []*Node) {
	sort.Slice(ns, func(a, b int) bool { return ns[a].ID < ns[b].ID })
}
