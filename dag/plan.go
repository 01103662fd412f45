package dag

import (
	"errors"
	"fmt"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/pipeline"
)

// Plan is a checked plan of either model: exactly one of Seq and DF is
// set. It is what both drivers run, built by Build alone: the command
// line, the Go API and a worker rebuilding a run from its stored spec all
// plan alike.
type Plan struct {
	Seq *SeqPlan
	DF  *DataflowPlan
}

// Build checks the pipeline (exactly one of seq and df) against the
// catalog and the flow inputs.
func Build(c Catalog, seq *pipeline.Sequential, df *pipeline.Dataflow, in pipeline.Inputs) (*Plan, error) {
	if n, bytes := exprBudget(seq, df); n > MaxExprs || bytes > MaxExprBytes {
		return nil, &Error{Msg: fmt.Sprintf("the flow holds %d expressions of %d bytes in all (sub-flows included): at most %d, of %d bytes", n, bytes, MaxExprs, MaxExprBytes)}
	}
	switch {
	case (seq == nil) == (df == nil):
		return nil, errors.New("a flow holds exactly one pipeline, sequential or dataflow")
	case seq != nil:
		p, err := PlanSequential(c, seq, in)
		if err != nil {
			return nil, err
		}
		return &Plan{Seq: p}, nil
	default:
		p, err := PlanDataflow(c, df, in)
		if err != nil {
			return nil, err
		}
		return &Plan{DF: p}, nil
	}
}

// Bounds of a flow's expressions (conditions, cases, keys, sub-flow
// inputs), sub-flows included: each is compiled whenever the flow is
// planned, which a worker does for every run a tenant submits.
const (
	MaxExprs     = 1000
	MaxExprBytes = 64 << 10
)

// exprBudget counts a pipeline's expressions and their bytes, its
// sub-flows' too, before any is compiled.
func exprBudget(seq *pipeline.Sequential, df *pipeline.Dataflow) (n, size int) {
	add := func(src string) {
		if src != "" {
			n++
			size += len(src)
		}
	}
	opts := func(o pipeline.Options) {
		add(o.When)
		if o.Concurrency != nil {
			add(o.Concurrency.Key)
		}
		if o.Rate != nil {
			add(o.Rate.Key)
		}
	}
	if df != nil {
		for _, o := range df.TaskOptions {
			opts(o)
		}
	}
	if seq == nil {
		return n, size
	}
	for _, st := range seq.Steps {
		opts(st.Options)
		for _, c := range st.Cases {
			add(c.When)
		}
		if st.Sub != nil {
			for _, src := range st.Sub.Inputs {
				add(src)
			}
			sn, ss := exprBudget(st.Sub.Sequential, st.Sub.Dataflow)
			n, size = n+sn, size+ss
		}
		if n > MaxExprs || size > MaxExprBytes {
			break
		}
	}
	return n, size
}

// StepInfo names one step (or dataflow node, in plan order) of a plan,
// for its status: its label, and whether it is a map or filter (which
// report done/total).
type StepInfo struct {
	Name    string `json:"name"`
	Fanning bool   `json:"fanning,omitempty"`
	// Deps are the nodes (1-based, in plan order) a dataflow node's
	// inputs come from; a sequential step follows the one before it.
	Deps []int `json:"deps,omitempty"`
}

// Steps lists the plan's steps, or its nodes in plan order.
func (p *Plan) Steps() []StepInfo {
	var out []StepInfo
	if p.Seq != nil {
		for _, st := range p.Seq.Steps {
			out = append(out, StepInfo{Name: st.Label, Fanning: st.Kind == pipeline.Map || st.Kind == pipeline.Filter})
		}
		return out
	}
	out = make([]StepInfo, 0, len(p.DF.Nodes))
	deps := 0
	for _, n := range p.DF.Nodes {
		deps += len(n.Deps)
	}
	ids := make([]int, 0, deps) // every node's deps, in one array
	for _, n := range p.DF.Nodes {
		from := len(ids)
		for _, d := range n.Deps {
			ids = append(ids, d.ID+1)
		}
		si := StepInfo{Name: n.Label}
		if len(n.Deps) > 0 {
			si.Deps = ids[from:len(ids):len(ids)]
		}
		out = append(out, si)
	}
	return out
}

// Name is the plan's name.
func (p *Plan) Name() string {
	if p.Seq != nil {
		return p.Seq.Name
	}
	return p.DF.Name
}

// InputsRead are the names of flow inputs the plan's tasks may read: an
// input of a task of the plan (a flow input of the same name binds it),
// a step's param, or a field of `inputs` a condition reads. pruned are those that only tasks a dataflow pruned
// (no requested output needs them) would read.
func (p *Plan) InputsRead() (read, pruned map[string]bool) {
	read, pruned = map[string]bool{}, map[string]bool{}
	add := func(set map[string]bool, t *abi.Task) {
		for _, in := range t.Inputs {
			set[in.Name] = true
		}
	}
	cond := func(c *expr.Program, in pipeline.Inputs) {
		if c == nil {
			return
		}
		fields, tested, whole := c.Reads("inputs")
		for _, f := range append(fields, tested...) {
			read[f] = true
		}
		if whole {
			for name := range in {
				read[name] = true
			}
		}
	}
	if p.Seq != nil {
		for _, st := range p.Seq.Steps {
			cond(st.Cond, p.Seq.Inputs)
			for _, c := range st.Cases {
				cond(c.Cond, p.Seq.Inputs)
			}
			if st.Sub != nil {
				for _, in := range st.Sub.Inputs {
					cond(in, p.Seq.Inputs)
				}
			}
			for _, t := range st.Tasks {
				add(read, t.Task)
				if t.Param != "" {
					read[t.Param] = true
				}
			}
		}
		return read, pruned
	}
	for _, n := range p.DF.Nodes {
		add(read, n.Task)
		cond(n.Cond, p.DF.Inputs)
	}
	for _, tr := range p.DF.Pruned {
		for _, in := range tr.Task.Inputs {
			if !read[in.Name] {
				pruned[in.Name] = true
			}
		}
	}
	return read, pruned
}
