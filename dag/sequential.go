package dag

import (
	"fmt"
	"sort"
	"strings"

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
	pipeline.Options
}

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
	for i, st := range p.Steps {
		n := i + 1
		first := i == 0
		step := SeqStep{Index: n, Kind: st.Kind, Label: st.Label(), Options: st.Options}
		if key, msg := checkOptions(st.Options); msg != "" {
			return nil, &Error{Step: n, Key: key, Msg: msg}
		}
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
			param, err := chooseParam(tr, st, first, in)
			if err != nil {
				err.Step = n
				return nil, err
			}
			if first && (st.Kind == pipeline.Map || st.Kind == pipeline.Filter) {
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
		plan.Steps = append(plan.Steps, step)
	}
	return plan, nil
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
