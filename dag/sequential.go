package dag

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/internal/text"
	"github.com/flowhost/flowhost/pipeline"
)

// SeqTask is one task of a step, with the input that receives the
// previous step's result ("" when it receives none).
type SeqTask struct {
	TaskRef
	Param string
}

// SeqStep is a checked step.
type SeqStep struct {
	Index int // 1-based
	Kind  pipeline.Kind
	Label string
	Tasks []SeqTask
	// First is set when no step before this one produces a result (each
	// is a branch): it reads the flow inputs, as the first step does.
	First bool
	// Cond is the step's checked `when`, or nil.
	Cond *expr.Program
	// Cases are a branch step's checked cases, in order.
	Cases []SeqCase
	// Branch is the index (0-based) of the branch step whose case this
	// step belongs to, or -1.
	Branch int
	// Throttle is the step's checked concurrency key and rate, or nil.
	Throttle *Throttle
	// Sub is a flow step's checked sub-flow.
	Sub *SeqSub
	pipeline.Options
}

// SeqSub is a flow step's checked sub-flow: the child's inputs, as
// checked expressions, and its plan as checked at load time, with each
// mapped input unknown (Placeholder). At run time the child is planned
// again with the values.
type SeqSub struct {
	Flow   *pipeline.SubFlow
	Inputs map[string]*expr.Program
	Plan   *Plan
}

// Placeholder stands for a flow input whose value is known only at run
// time (a sub-flow's mapped input) while its plan is checked at load
// time: checks of the value itself are left for then.
var Placeholder = json.RawMessage("null \t ")

// IsPlaceholder reports whether v is Placeholder.
func IsPlaceholder(v json.RawMessage) bool { return string(v) == string(Placeholder) }

// SeqCase is one checked case of a branch; Cond is nil for the default.
type SeqCase struct {
	Name string
	Cond *expr.Program
}

// SeqVars are the variables of a sequential step's expressions: the
// flow's inputs, as an object, and the previous step's result.
var SeqVars = []string{"inputs", "result"}

// DataflowVars are the variables of a dataflow task's `when`: the flow's
// inputs and the task's own input values, each an object.
var DataflowVars = []string{"inputs", "args"}

// SeqPlan is a checked sequential pipeline.
type SeqPlan struct {
	Name  string
	Steps []SeqStep
	// Inputs are the flow inputs the plan was checked against.
	Inputs pipeline.Inputs
}

// PlanSequential checks a sequential pipeline against the catalog and the
// flow inputs: every task exists, every param is an input, every required
// input is bound by the previous result, args, a flow input or a default.
func PlanSequential(c Catalog, p *pipeline.Sequential, in pipeline.Inputs) (*SeqPlan, error) {
	if len(p.Steps) == 0 {
		return nil, &Error{Msg: "the pipeline has no step"}
	}
	if err := pipeline.CheckInputs(in); err != nil {
		return nil, &Error{Field: "inputs", Msg: err.Error()}
	}
	plan := &SeqPlan{Name: p.Name, Inputs: in, Steps: make([]SeqStep, 0, len(p.Steps))}
	tasks := newLookup(c)
	first := true        // no step so far produces a result
	branch := -1         // the branch whose cases the steps may be in
	branchFirst := false // first, at that branch
	for i, st := range p.Steps {
		n := i + 1
		if st.Case != "" && branch >= 0 && p.Steps[i-1].Case != st.Case {
			first = branchFirst // a case's first step follows the branch
		}
		step := SeqStep{Index: n, Kind: st.Kind, Label: st.Label(), Options: st.Options, First: first, Branch: -1}
		if key, msg := checkOptions(st.Options); msg != "" {
			return nil, &Error{Step: n, Key: key, Msg: msg}
		}
		if st.When != "" {
			cond, err := compileCond(st.When, SeqVars, in, nil)
			if err != nil {
				return nil, &Error{Step: n, Key: "when", Msg: "when: " + err.Error()}
			}
			step.Cond = cond
		}
		if err := placeInBranch(plan, &step, &branch); err != nil {
			return nil, err
		}
		if st.Kind == pipeline.Branch {
			if err := planBranch(&step, st, in); err != nil {
				return nil, err
			}
			branchFirst = first
			plan.Steps = append(plan.Steps, step)
			continue
		}
		if st.Kind == pipeline.Flow {
			if err := planSub(c, &step, st, in); err != nil {
				return nil, err
			}
			first = false
			plan.Steps = append(plan.Steps, step)
			continue
		}
		first = false
		key := string(st.Kind)
		for _, ref := range st.Tasks {
			tr, msg := tasks.resolve(ref)
			if msg != "" {
				return nil, &Error{Step: n, Key: key, Msg: msg}
			}
			if k, msg := checkValues(tr, st.Args); msg != "" {
				if k == "" {
					k = key
				}
				return nil, &Error{Step: n, Key: k, Msg: msg}
			}
			param, err := chooseParam(tr, st, step.First, in)
			if err != nil {
				err.Step = n
				return nil, err
			}
			if step.First && (st.Kind == pipeline.Map || st.Kind == pipeline.Filter) {
				if _, ok := in[param]; !ok {
					return nil, &Error{Step: n, Key: "param", Field: "inputs",
						Msg: fmt.Sprintf("%s runs over the flow input %q, which the flow does not give (add it to [inputs] or pass --input %s=[...])", step.Label, param, param)}
				}
			}
			// Every required input must be bound.
			for _, inp := range tr.Task.Inputs {
				if !inp.Required() || inp.Name == param {
					continue
				}
				if _, ok := st.Args[inp.Name]; ok {
					continue
				}
				if _, ok := in[inp.Name]; ok {
					continue
				}
				return nil, &Error{Step: n, Key: key, Msg: fmt.Sprintf("required input %q of %s is not bound: give it in args or as a flow input", inp.Name, tr.Ref())}
			}
			step.Tasks = append(step.Tasks, SeqTask{TaskRef: tr, Param: param})
		}
		refs := make([]TaskRef, len(step.Tasks))
		for k, t := range step.Tasks {
			refs[k] = t.TaskRef
		}
		th, thKey, err := planThrottle(st.Options, in, refs)
		if err != nil {
			return nil, &Error{Step: n, Key: thKey, Msg: err.Error()}
		}
		step.Throttle = th
		plan.Steps = append(plan.Steps, step)
	}
	return plan, nil
}

// placeInBranch checks step's case against the branch open before it
// (*branch, the branch step's index, or -1) and opens or closes one.
func placeInBranch(plan *SeqPlan, step *SeqStep, branch *int) error {
	n := step.Index
	if step.Case == "" {
		*branch = -1
		if step.Kind == pipeline.Branch {
			*branch = n - 1
		}
		return nil
	}
	if *branch < 0 {
		return &Error{Step: n, Key: "case", Msg: fmt.Sprintf("case %q: no branch step comes before this step's case (a branch's cases follow it, and the first step in no case ends it)", step.Case)}
	}
	if step.Kind == pipeline.Branch {
		return &Error{Step: n, Key: "branch", Msg: "branches do not nest: a branch step cannot be in a case of another (run a sub-flow instead)"}
	}
	b := &plan.Steps[*branch]
	var names []string
	for _, c := range b.Cases {
		if c.Name == step.Case {
			step.Branch = *branch
			return nil
		}
		names = append(names, c.Name)
	}
	return &Error{Step: n, Key: "case", Msg: fmt.Sprintf("case %q is not a case of the branch of step %d%s (cases: %s)", step.Case, *branch+1, suggest(step.Case, names), strings.Join(names, ", "))}
}

// planSub checks a flow step: its child's inputs (expressions over the
// parent's inputs and result, each an input the child reads) and the
// child's plan.
func planSub(c Catalog, step *SeqStep, st pipeline.Step, in pipeline.Inputs) error {
	n := step.Index
	bad := func(key, format string, args ...any) error {
		return &Error{Step: n, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	sub := st.Sub
	if sub == nil || (sub.Sequential == nil) == (sub.Dataflow == nil) {
		return bad("flow", "a flow step runs one flow, sequential or dataflow")
	}
	if len(st.Tasks) > 0 || st.Param != "" || len(st.Args) > 0 || st.Concurrency != nil || st.Rate != nil || st.SkipErrors {
		return bad("flow", "a flow step takes only name, when, case, retries, timeout and inputs: its tasks are the sub-flow's")
	}
	step.Sub = &SeqSub{Flow: sub, Inputs: map[string]*expr.Program{}}
	childIn := pipeline.Inputs{}
	for k, v := range sub.Defaults {
		childIn[k] = v
	}
	names := make([]string, 0, len(sub.Inputs))
	for name := range sub.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := expr.Compile(sub.Inputs[name], SeqVars, expr.Any)
		if err == nil {
			err = checkReads(p, sub.Inputs[name], in, nil)
		}
		if err != nil {
			return bad("inputs", "sub-flow %s, input %s: %v", sub.Name, name, err)
		}
		step.Sub.Inputs[name] = p
		childIn[name] = Placeholder
	}
	plan, err := Build(c, sub.Sequential, sub.Dataflow, childIn)
	if err != nil {
		return bad("flow", "sub-flow %s: %v", sub.Name, err)
	}
	read, _ := plan.InputsRead()
	for _, name := range names {
		if !read[name] {
			return bad("inputs", "sub-flow %s reads no input %q", sub.Name, name)
		}
	}
	step.Sub.Plan = plan
	return nil
}

// planBranch checks a branch step's cases and compiles their conditions.
func planBranch(step *SeqStep, st pipeline.Step, in pipeline.Inputs) error {
	n := step.Index
	bad := func(format string, args ...any) error {
		return &Error{Step: n, Key: "branch", Msg: fmt.Sprintf(format, args...)}
	}
	if len(st.Tasks) > 0 {
		return bad("a branch step runs no task of its own (its cases' steps do)")
	}
	o := st.Options
	if o.Param != "" || len(o.Args) > 0 || o.Retries > 0 || o.Timeout > 0 || o.SkipErrors || o.MaxParallel > 0 || o.Concurrency != nil || o.Rate != nil {
		return bad("a branch step takes only name, when and branch: it runs no task")
	}
	if len(st.Cases) == 0 {
		return bad("branch = [] lists no case")
	}
	seen := map[string]bool{}
	for i, c := range st.Cases {
		if !pipeline.ValidName(c.Name) {
			return bad("case %d: %q is not a valid case name (letters, digits and '_')", i+1, c.Name)
		}
		if seen[c.Name] {
			return bad("case %q is listed twice", c.Name)
		}
		seen[c.Name] = true
		sc := SeqCase{Name: c.Name}
		if c.When == "" {
			if i != len(st.Cases)-1 {
				return bad("case %q has no when, so it is the default: it must come last (the cases after it could never be chosen)", c.Name)
			}
		} else {
			cond, err := compileCond(c.When, SeqVars, in, nil)
			if err != nil {
				return bad("case %q: when: %v", c.Name, err)
			}
			sc.Cond = cond
		}
		step.Cases = append(step.Cases, sc)
	}
	return nil
}

// compileCond compiles a condition and checks what it reads (checkReads).
func compileCond(src string, vars []string, in pipeline.Inputs, tr *TaskRef) (*expr.Program, error) {
	cond, err := expr.Compile(src, vars, expr.Bool)
	if err != nil {
		return nil, err
	}
	return cond, checkReads(cond, src, in, tr)
}

// checkReads checks the fields an expression reads of `inputs` against
// the flow's inputs, and of `args` against the task's (tr, when there is
// one): a misspelt name is an error at load time, not a failure at run
// time. A field has() only tests for may be absent.
func checkReads(cond *expr.Program, src string, in pipeline.Inputs, tr *TaskRef) error {
	fields, _, _ := cond.Reads("inputs")
	for _, f := range fields {
		if _, ok := in[f]; !ok {
			names := make([]string, 0, len(in))
			for name := range in {
				names = append(names, name)
			}
			sort.Strings(names)
			return fmt.Errorf("%q reads inputs.%s, but the flow has no input %q%s (inputs: %s; test for an optional one with has(inputs.%s))",
				src, f, f, suggest(f, names), text.OrNone(names), f)
		}
	}
	if tr != nil {
		fields, _, _ := cond.Reads("args")
		for _, f := range fields {
			if _, ok := tr.Task.Input(f); !ok {
				return fmt.Errorf("%q reads args.%s, but %s has no input %q%s (inputs: %s)", src, f, tr.Ref(), f, suggest(f, inputList(*tr)), inputNames(tr.Task))
			}
		}
	}
	return nil
}

// chooseParam decides which input of tr receives the previous result.
func chooseParam(tr TaskRef, st pipeline.Step, first bool, in pipeline.Inputs) (string, *Error) {
	kind := st.Kind
	if kind == pipeline.After || (first && (kind == pipeline.Call || kind == pipeline.Group)) {
		// No previous result: inputs come from args and the flow inputs.
		if st.Param != "" && kind == pipeline.After {
			return "", &Error{Key: "param", Msg: "an after step receives no previous result, so it takes no param"}
		}
		if st.Param != "" {
			if _, ok := tr.Task.Input(st.Param); !ok {
				return "", &Error{Key: "param", Msg: fmt.Sprintf("param %q is not an input of %s%s (inputs: %s)", st.Param, tr.Ref(), suggest(st.Param, inputList(tr)), inputNames(tr.Task))}
			}
		}
		return "", nil
	}
	if st.Param != "" {
		if _, ok := tr.Task.Input(st.Param); !ok {
			return "", &Error{Key: "param", Msg: fmt.Sprintf("param %q is not an input of %s%s (inputs: %s)", st.Param, tr.Ref(), suggest(st.Param, inputList(tr)), inputNames(tr.Task))}
		}
		if _, ok := st.Args[st.Param]; ok {
			return "", &Error{Key: "args", Msg: fmt.Sprintf("input %q is both the param and an arg", st.Param)}
		}
		return st.Param, nil
	}
	var free []string
	for _, inp := range tr.Task.Inputs {
		if _, ok := st.Args[inp.Name]; ok {
			continue
		}
		if inp.Required() {
			free = append(free, inp.Name)
		}
	}
	switch {
	case len(free) == 1:
		return free[0], nil
	case len(free) == 0 && len(tr.Task.Inputs) == 1 && st.Args[tr.Task.Inputs[0].Name] == nil:
		return tr.Task.Inputs[0].Name, nil
	case len(free) == 0:
		return "", &Error{Key: string(kind), Msg: fmt.Sprintf("cannot tell which input of %s receives the previous result: every required input is set by args; set param", tr.Ref())}
	}
	sort.Strings(free)
	return "", &Error{Key: string(kind), Msg: fmt.Sprintf("cannot tell which input of %s receives the previous result: set param to one of %s", tr.Ref(), strings.Join(free, ", "))}
}

func inputList(tr TaskRef) []string {
	names := make([]string, len(tr.Task.Inputs))
	for i, in := range tr.Task.Inputs {
		names[i] = in.Name
	}
	return names
}
