package runner

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// TestConditions checks `when` and branches: which steps run, what a
// skipped step passes on, and how a skipped dataflow node's dependents
// fare (a default stands in for what it would have made; without one
// they are skipped too).
func TestConditions(t *testing.T) {
	big := []pipeline.Case{{Name: "big", When: "result.exists(v, v > 10)"}, {Name: "small"}}
	cases := []struct {
		name    string
		seq     *pipeline.Sequential
		df      *pipeline.Dataflow
		in      pipeline.Inputs
		want    string
		states  []track.State // each step's, in order
		choice  string        // the case the branch chose, when there is one
		called  map[string]int
		noCalls []string
	}{
		{name: "when holds", in: in("x", "[1,2,3]", "go", "true"),
			seq:  seq().Map("m.double", pipeline.Param("x"), pipeline.When("inputs.go")).CallNext("m.sum"),
			want: "12", states: []track.State{track.Succeeded, track.Succeeded}},
		{name: "when fails: the first map passes its input on", in: in("x", "[1,2,3]", "go", "false"),
			seq:  seq().Map("m.double", pipeline.Param("x"), pipeline.When("inputs.go")).CallNext("m.sum"),
			want: "6", states: []track.State{track.Skipped, track.Succeeded}, noCalls: []string{"double"}},
		{name: "when over the previous result", in: in("x", "[1,2,3]"),
			seq:  seq().Map("m.double", pipeline.Param("x")).Map("m.double", pipeline.When("size(result) > 5")).CallNext("m.sum"),
			want: "12", states: []track.State{track.Succeeded, track.Skipped, track.Succeeded}},
		{name: "a skipped last step's result is the one before", in: in("x", "[1,2,3]"),
			seq:  seq().Map("m.double", pipeline.Param("x")).CallNext("m.sum", pipeline.When("false")),
			want: "[2,4,6]", states: []track.State{track.Succeeded, track.Skipped}},
		{name: "branch: the first case that holds", in: in("x", "[1,2,30]"),
			seq: seq().Map("m.double", pipeline.Param("x")).Branch(big).
				CallNext("m.sum", pipeline.InCase("big")).
				Map("m.double", pipeline.InCase("small")).CallNext("m.sum", pipeline.InCase("small")),
			want: "66", states: []track.State{track.Succeeded, track.Succeeded, track.Succeeded, track.Skipped, track.Skipped}, choice: "big"},
		{name: "branch: the default", in: in("x", "[1,2,3]"),
			seq: seq().Map("m.double", pipeline.Param("x")).Branch(big).
				CallNext("m.sum", pipeline.InCase("big")).
				Map("m.double", pipeline.InCase("small")).CallNext("m.sum", pipeline.InCase("small")),
			want: "24", states: []track.State{track.Succeeded, track.Succeeded, track.Skipped, track.Succeeded, track.Succeeded}, choice: "small"},
		{name: "branch: no case holds, the steps after get the result before it", in: in("x", "[1,2,3]"),
			seq: seq().Map("m.double", pipeline.Param("x")).Branch([]pipeline.Case{{Name: "big", When: "result.exists(v, v > 10)"}}).
				Map("m.double", pipeline.InCase("big")).CallNext("m.sum"),
			want: "12", states: []track.State{track.Succeeded, track.Succeeded, track.Skipped, track.Succeeded}, choice: ""},
		{name: "a branch first: a case's first step reads the flow inputs", in: in("x", "[1,2,3]", "mode", `"double"`),
			seq: seq().Branch([]pipeline.Case{{Name: "d", When: `inputs.mode == "double"`}, {Name: "plain"}}).
				Map("m.double", pipeline.Param("x"), pipeline.InCase("d")).CallNext("m.five", pipeline.InCase("plain")),
			want: "[2,4,6]", states: []track.State{track.Succeeded, track.Succeeded, track.Skipped}, choice: "d"},
		{name: "dataflow: a skipped node's dependent takes its input's default", in: in("text", `"a b c"`),
			df: (&pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper", "m.report", "m.dash"}, Outputs: []string{"report"}}).
				Configure("m.dash", pipeline.When(`inputs.text.startsWith("+")`)),
			want: `{"report":"3-A B C"}`, called: map[string]int{"dash": 0, "report": 1}},
		{name: "dataflow: the node runs when its when holds", in: in("text", `"+a b c"`),
			df: (&pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper", "m.report", "m.dash"}, Outputs: []string{"report"}}).
				Configure("m.dash", pipeline.When(`inputs.text.startsWith("+")`)),
			want: `{"report":"3++A B C"}`, called: map[string]int{"dash": 1}},
		{name: "dataflow: without a default, dependents skip and outputs are null", in: in("text", `"a b c"`),
			df: (&pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper", "m.report"}, Outputs: []string{"report", "loud"}}).
				Configure("m.count", pipeline.When("size(args.words) > 5")),
			want: `{"report":null,"loud":"A B C"}`, called: map[string]int{"count": 0, "report": 0, "upper": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, Config{})
			out, err, st := l.run(context.Background(), c.seq, c.df, c.in)
			if err != nil || out != c.want {
				t.Fatalf("result %s, error %v; want %s", out, err, c.want)
			}
			for _, name := range c.noCalls {
				if n := l.broker.called(name); n != 0 {
					t.Errorf("%s called %d times", name, n)
				}
			}
			for name, n := range c.called {
				if got := l.broker.called(name); got != n {
					t.Errorf("%s called %d times, want %d", name, got, n)
				}
			}
			if c.states != nil {
				if len(st.Steps) != len(c.states) {
					t.Fatalf("%d steps, want %d", len(st.Steps), len(c.states))
				}
				for i, s := range st.Steps {
					if s.Status != c.states[i] {
						t.Errorf("step %d (%s) %s, want %s", i+1, s.Name, s.Status, c.states[i])
					}
					if c.seq != nil && c.seq.Steps[i].Kind == pipeline.Branch && s.Case != c.choice {
						t.Errorf("branch chose %q, want %q", s.Case, c.choice)
					}
				}
			}
		})
	}
}

// BenchmarkDecideStep is what deciding whether a step runs costs, once
// per step: a condition over a flow input, and one over the previous
// result, a 20,000-element array, which it decodes.
func BenchmarkDecideStep(b *testing.B) {
	l := newLab(&testing.T{}, Config{})
	var arr strings.Builder
	arr.WriteByte('[')
	for i := range 20000 {
		if i > 0 {
			arr.WriteByte(',')
		}
		arr.WriteString(strconv.Itoa(i))
	}
	arr.WriteByte(']')
	prev := json.RawMessage(arr.String())
	flow := in("x", arr.String(), "go", "true")
	for _, c := range []struct{ name, when string }{{"none", ""}, {"inputs", "inputs.go"}, {"result", "size(result) > 0"}} {
		plan, err := dag.PlanSequential(l.runner.Catalog(), seq().Map("m.double", pipeline.Param("x")).Map("m.double", pipeline.When(c.when)), flow)
		if err != nil {
			b.Fatal(err)
		}
		st := &plan.Steps[1]
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if runs, _, err := DecideStep(st, prev, flow, nil); err != nil || !runs {
					b.Fatal(runs, err)
				}
			}
		})
	}
}

// TestExprBudget: a flow's expressions, sub-flows included, are bounded
// in number and bytes before any is compiled (a worker plans every run).
func TestExprBudget(t *testing.T) {
	l := newLab(t, Config{})
	p := seq()
	for range dag.MaxExprs + 1 {
		p.Map("m.double", pipeline.Param("x"), pipeline.When("true"))
	}
	if _, err := dag.PlanSequential(l.runner.Catalog(), p, in("x", "[1]")); err != nil {
		t.Fatal("PlanSequential itself is not bounded; Build is:", err)
	}
	_, err := dag.Build(l.runner.Catalog(), p, nil, in("x", "[1]"))
	if err == nil || !strings.Contains(err.Error(), "1001 expressions") {
		t.Fatalf("error %v", err)
	}
	big := &pipeline.SubFlow{Name: "big", Sequential: seq().Map("m.double", pipeline.Param("x"), pipeline.When(strings.Repeat("true && ", 9000)+"true")),
		Inputs: map[string]string{"x": "result"}}
	if _, err := dag.Build(l.runner.Catalog(), seq().Map("m.double", pipeline.Param("x")).Flow(big), nil, in("x", "[1]")); err == nil || !strings.Contains(err.Error(), "bytes in all (sub-flows included)") {
		t.Fatalf("a sub-flow's expressions: %v", err)
	}
}
