package dag

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/pipeline"
)

func manifest(t testing.TB, js string) *abi.Manifest {
	t.Helper()
	m, err := abi.ParseManifest([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func catalog(t testing.TB) Catalog {
	return Catalog{
		"text": manifest(t, `{"abi":1,"name":"textkit","tasks":[
			{"name":"split","inputs":["text",{"name":"sep","default":" "}],"outputs":["words"]},
			{"name":"profile","inputs":["words"],"outputs":["vocab","total"]},
			{"name":"ratio","inputs":["vocab","total"],"outputs":["ratio"]},
			{"name":"report","inputs":["ratio","title"],"outputs":["report"]},
			{"name":"upper","inputs":["text"],"outputs":["upper"]},
			{"name":"twoargs","inputs":["a","b"],"outputs":["ab"]}]}`),
		"loop": manifest(t, `{"abi":1,"name":"loopy","tasks":[
			{"name":"a","inputs":["y"],"outputs":["x"]},
			{"name":"b","inputs":["x"],"outputs":["y"]},
			{"name":"dup","inputs":[],"outputs":["words"]}]}`),
	}
}

func inputs(kv ...string) pipeline.Inputs {
	in := pipeline.Inputs{}
	for i := 0; i < len(kv); i += 2 {
		in[kv[i]] = json.RawMessage(kv[i+1])
	}
	return in
}

func TestDataflowPlan(t *testing.T) {
	c := catalog(t)
	p := &pipeline.Dataflow{Name: "wordstats", Tasks: []string{"text.*"}, Outputs: []string{"report"}}
	plan, err := PlanDataflow(c, p, inputs("text", `"a b a"`, "title", `"T"`))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range plan.Nodes {
		order = append(order, n.Task.Name)
	}
	if got := strings.Join(order, ","); got != "split,profile,ratio,report" {
		t.Fatalf("order %s", got)
	}
	// upper and twoargs are not needed by report: pruned, so twoargs'
	// unbound inputs are no error.
	if len(plan.Pruned) != 2 {
		t.Fatalf("pruned %v", plan.Pruned)
	}
	ratio := plan.Nodes[2]
	if len(ratio.Deps) != 1 || ratio.Deps[0].Task.Name != "profile" || ratio.Inputs[0].From != ratio.Deps[0] {
		t.Fatalf("ratio deps %+v", ratio.Deps)
	}
	split := plan.Nodes[0]
	if !split.Inputs[0].Flow || string(split.Inputs[1].Default) != `" "` {
		t.Fatalf("split bindings %+v", split.Inputs)
	}
	var dot, mer bytes.Buffer
	g := plan.Graph()
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	if err := g.WriteMermaid(&mer); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`t0 -> t1 [label="words"];`, `in_text -> t0;`, `t3 -> out_report;`} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("DOT lacks %q:\n%s", want, dot.String())
		}
	}
	for _, want := range []string{"flowchart LR", `t1 -->|"vocab"| t2`, `out_report{{"report"}}`} {
		if !strings.Contains(mer.String(), want) {
			t.Errorf("Mermaid lacks %q:\n%s", want, mer.String())
		}
	}
}

func TestDataflowDefaultOutputs(t *testing.T) {
	plan, err := PlanDataflow(catalog(t), &pipeline.Dataflow{Tasks: []string{"text.split", "text.profile"}}, inputs("text", `"x"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan.Outputs, ","); got != "vocab,total" {
		t.Fatalf("outputs %s", got)
	}
}

func TestDataflowRefusals(t *testing.T) {
	c := catalog(t)
	c["deep"] = deepDefault(t)
	c["typed"] = manifest(t, `{"abi":1,"name":"typed","tasks":[
		{"name":"name","inputs":[],"outputs":[{"name":"n","type":"string"}]},
		{"name":"count","inputs":[{"name":"n","type":"integer"}],"outputs":[{"name":"total","type":"number"}]}]}`)
	cases := []struct {
		name  string
		p     pipeline.Dataflow
		in    pipeline.Inputs
		want  string
		field string
	}{
		{"cycle", pipeline.Dataflow{Tasks: []string{"loop.a", "loop.b"}, Outputs: []string{"x"}}, nil,
			"the tasks form a cycle: loop.a → loop.b → loop.a", "tasks"},
		{"two producers", pipeline.Dataflow{Tasks: []string{"text.split", "loop.dup"}}, inputs("text", `""`),
			`two tasks produce "words": text.split and loop.dup`, "tasks"},
		{"unbound", pipeline.Dataflow{Tasks: []string{"text.*"}, Outputs: []string{"report"}}, inputs("text", `""`),
			`required input "title" of text.report is not bound`, "tasks"},
		{"unknown task", pipeline.Dataflow{Tasks: []string{"text.splt"}}, nil,
			`"text.splt": module textkit (text) has no task "splt"; did you mean "split"?`, "tasks"},
		{"unknown alias", pipeline.Dataflow{Tasks: []string{"txt.split"}}, nil,
			`"txt.split": no plugin is called "txt"; did you mean "text"?`, "tasks"},
		{"glob matches nothing", pipeline.Dataflow{Tasks: []string{"text.zz*"}}, nil,
			`"text.zz*" matches no task`, "tasks"},
		{"unknown output", pipeline.Dataflow{Tasks: []string{"text.split"}, Outputs: []string{"word"}}, inputs("text", `""`),
			`no selected task produces "word"; did you mean "words"?`, "outputs"},
		{"no tasks", pipeline.Dataflow{}, nil, "selects no task", "tasks"},
		{"deep input", pipeline.Dataflow{Tasks: []string{"text.split"}}, inputs("text", strings.Repeat("{\"a\":", 65)+"1"+strings.Repeat("}", 65)),
			"input text: nested more than 64 levels deep", "inputs"},
		{"deep default", pipeline.Dataflow{Tasks: []string{"deep.t"}}, inputs("a", "1"),
			`deep.t: the default of input "d": nested more than 64 levels deep`, "tasks"},
		{"deep arg", pipeline.Dataflow{Tasks: []string{"text.split"}, TaskOptions: map[string]pipeline.Options{"text.split": {Args: map[string]json.RawMessage{"sep": json.RawMessage("[" + strings.Repeat("[", 64) + strings.Repeat("]", 65))}}}}, inputs("text", `""`),
			"arg sep: nested more than 64 levels deep", "tasks"},
		{"timeout too long", pipeline.Dataflow{Tasks: []string{"text.split"}, TaskOptions: map[string]pipeline.Options{"text.split": {Timeout: 2100000 * time.Hour}}}, inputs("text", `""`),
			`[task."text.split"]: timeout: duration 2100000h0m0s is too long`, ""},
		{"unknown arg", pipeline.Dataflow{Tasks: []string{"text.split"}, TaskOptions: map[string]pipeline.Options{"text.split": {Args: map[string]json.RawMessage{"sepp": json.RawMessage(`","`)}}}}, inputs("text", `""`),
			`text.split has no input "sepp"; did you mean "sep"?`, "tasks"},
		{"arg of the wrong type", pipeline.Dataflow{Tasks: []string{"typed.count"}, TaskOptions: map[string]pipeline.Options{"typed.count": {Args: map[string]json.RawMessage{"n": json.RawMessage(`"3"`)}}}}, nil,
			`arg n of typed.count must be an integer, not "3"`, "tasks"},
		{"flow input of the wrong type", pipeline.Dataflow{Tasks: []string{"typed.count"}}, inputs("n", `2.5`),
			`the flow input "n", bound to the input of typed.count, must be an integer, not 2.5`, "inputs"},
		{"binding of the wrong type", pipeline.Dataflow{Tasks: []string{"typed.name", "typed.count"}, Outputs: []string{"total"}}, nil,
			`input "n" of typed.count is integer, but typed.name's output "n", bound to it, is string: no value is both`, "tasks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanDataflow(c, &tc.p, tc.in)
			de, ok := err.(*Error)
			if !ok {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if !strings.Contains(de.Msg, tc.want) || de.Field != tc.field {
				t.Fatalf("err %q field %q\nwant %q field %q", de.Msg, de.Field, tc.want, tc.field)
			}
		})
	}
}

func TestSequentialPlan(t *testing.T) {
	c := catalog(t)
	p := pipeline.New(nil).
		CallNext("text.split").
		Map("text.upper").
		CallNext("text.twoargs", pipeline.Arg("a", 1)).
		Group([]string{"text.upper", "text.split"}, pipeline.Param("text"))
	plan, err := PlanSequential(c, p, inputs("text", `"a b"`))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps[0].Tasks[0].Param != "" || plan.Steps[1].Tasks[0].Param != "text" || plan.Steps[2].Tasks[0].Param != "b" {
		t.Fatalf("params %q %q %q", plan.Steps[0].Tasks[0].Param, plan.Steps[1].Tasks[0].Param, plan.Steps[2].Tasks[0].Param)
	}
	var dot bytes.Buffer
	if err := plan.Graph().WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dot.String(), `label="map text.upper [each]"`) {
		t.Fatalf("DOT:\n%s", dot.String())
	}
}

// deepDefault is a module whose task t declares a default nested 65 deep.
func deepDefault(t testing.TB) *abi.Manifest {
	return manifest(t, `{"abi":1,"name":"deep","tasks":[{"name":"t","inputs":["a",{"name":"d","default":`+
		strings.Repeat("[", 65)+strings.Repeat("]", 65)+`}],"outputs":["deep"]}]}`)
}

func TestSequentialRefusals(t *testing.T) {
	c := catalog(t)
	c["deep"] = deepDefault(t)
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	cases := []struct {
		name string
		p    *pipeline.Sequential
		in   pipeline.Inputs
		want string
		step int
		key  string
	}{
		{"param not an input", pipeline.New(nil).CallNext("text.split").Map("text.upper", pipeline.Param("txt")), inputs("text", `""`),
			`param "txt" is not an input of text.upper; did you mean "text"? (inputs: text)`, 2, "param"},
		{"ambiguous param", pipeline.New(nil).CallNext("text.split").CallNext("text.twoargs"), inputs("text", `""`),
			"set param to one of a, b", 2, "call"},
		{"unknown task", pipeline.New(nil).CallNext("text.spilt"), nil, `has no task "spilt"; did you mean "split"?`, 1, "call"},
		{"unknown arg", pipeline.New(nil).CallNext("text.split", pipeline.Arg("sepp", ",")), inputs("text", `""`),
			`text.split has no input "sepp"; did you mean "sep"?`, 1, "args"},
		{"unbound first", pipeline.New(nil).CallNext("text.split"), nil, `required input "text" of text.split is not bound`, 1, "call"},
		{"map over missing input", pipeline.New(nil).Map("text.upper"), nil, `runs over the flow input "text", which the flow does not give`, 1, "param"},
		{"unbound after", pipeline.New(nil).CallNext("text.split").CallAfter("text.report", pipeline.Arg("ratio", 1)), inputs("text", `""`),
			`required input "title" of text.report is not bound`, 2, "after"},
		{"no steps", pipeline.New(nil), nil, "no step", 0, ""},
		{"timeout too long", pipeline.New(nil).CallNext("text.split", pipeline.Timeout(2100000*time.Hour)), inputs("text", `""`),
			"timeout: duration 2100000h0m0s is too long: at most 8760h (365 days)", 1, "timeout"},
		{"limit too long", pipeline.New(nil).CallNext("text.split", pipeline.WithLimits(pipeline.Limits{Timeout: math.MaxInt64})), inputs("text", `""`),
			"is too long", 1, "timeout"},
		{"negative timeout", pipeline.New(nil).CallNext("text.split", pipeline.Timeout(-time.Second)), inputs("text", `""`),
			"must be positive", 1, "timeout"},
		{"max_parallel too large", pipeline.New(nil).Map("text.upper", pipeline.MaxParallel(1<<62)), inputs("text", `[]`),
			"max_parallel must be between 1 and 65536", 1, "max_parallel"},
		{"retries too many", pipeline.New(nil).CallNext("text.split", pipeline.Retries(1<<40)), inputs("text", `""`),
			"retries must be between 0 and 100", 1, "retries"},
		{"deep input", pipeline.New(nil).CallNext("text.split"), inputs("text", deep),
			"input text: nested more than 64 levels deep: at most 64 levels of arrays and objects are allowed", 0, ""},
		{"invalid input", pipeline.New(nil).CallNext("text.split"), inputs("text", `[1,`),
			"input text: not valid JSON", 0, ""},
		{"deep arg", pipeline.New(nil).CallNext("text.split", pipeline.Arg("sep", json.RawMessage(deep))), inputs("text", `""`),
			"arg sep: nested more than 64 levels deep", 1, "args"},
		{"deep default", pipeline.New(nil).CallNext("deep.t"), inputs("a", `1`),
			`deep.t: the default of input "d": nested more than 64 levels deep`, 1, "call"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanSequential(c, tc.p, tc.in)
			de, ok := err.(*Error)
			if !ok {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if !strings.Contains(de.Msg, tc.want) || de.Step != tc.step || de.Key != tc.key {
				t.Fatalf("err %q step %d key %q\nwant %q step %d key %q", de.Msg, de.Step, de.Key, tc.want, tc.step, tc.key)
			}
		})
	}
}
