package abi

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/flowhost/flowhost/internal/text"
)

// The keys a manifest's objects may have: any other is ignored (so that
// a newer manifest loads on an older host), and Warnings names it.
var (
	manifestKeys = []string{"abi", "name", "version", "description", "tasks"}
	taskKeys     = []string{"name", "export", "description", "inputs", "outputs", "output", "output_types"}
	inputKeys    = []string{"name", "default", "description", "type", "items", "properties", "enum", "nullable"}
	outputKeys   = []string{"name", "description", "type", "items", "properties", "enum", "nullable"}
)

// Warnings lists what is legal in the manifest data (already parsed as m)
// but likely a mistake: a key flowhost does not know ("input" for
// "inputs"), an output named like an input of the same task, a type
// flowhost does not check. `flowhost embed` prints them.
func Warnings(data []byte, m *Manifest) []string {
	var ws []string
	unknown := func(where string, obj json.RawMessage, known []string) {
		var keys map[string]json.RawMessage
		if json.Unmarshal(obj, &keys) != nil {
			return
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !slices.Contains(known, k) {
				ws = append(ws, fmt.Sprintf("%s: unknown key %q is ignored%s", where, k, text.Suggest(k, known)))
			}
		}
	}
	unknown("the manifest", data, manifestKeys)
	var tasks []json.RawMessage
	var top struct {
		Tasks []json.RawMessage `json:"tasks"`
	}
	if json.Unmarshal(data, &top) == nil {
		tasks = top.Tasks
	}
	for i, tj := range tasks {
		if i >= len(m.Tasks) {
			break
		}
		t := &m.Tasks[i]
		where := fmt.Sprintf("task %q", t.Name)
		unknown(where, tj, taskKeys)
		var parts struct {
			Inputs  []json.RawMessage `json:"inputs"`
			Outputs []json.RawMessage `json:"outputs"`
		}
		if json.Unmarshal(tj, &parts) == nil {
			for j, ij := range parts.Inputs {
				if len(ij) > 0 && ij[0] == '{' && j < len(t.Inputs) {
					unknown(fmt.Sprintf("%s input %q", where, t.Inputs[j].Name), ij, inputKeys)
				}
			}
			for j, oj := range parts.Outputs {
				if len(oj) > 0 && oj[0] == '{' && j < len(t.Outputs) {
					unknown(fmt.Sprintf("%s output %q", where, t.Outputs[j]), oj, outputKeys)
				}
			}
		}
		for _, o := range t.Outputs {
			if _, ok := t.Input(o); ok {
				ws = append(ws, fmt.Sprintf("%s: output %q has the name of one of its inputs: in a dataflow, the task would be bound to its own output", where, o))
			}
			if !t.OutputType(o).Known() {
				ws = append(ws, fmt.Sprintf("%s output %q: type %q is not one flowhost checks (string, number, integer, boolean, array, object, null): not checked", where, o, t.OutputType(o).Type))
			}
		}
		for _, in := range t.Inputs {
			if !in.Schema.Known() {
				ws = append(ws, fmt.Sprintf("%s input %q: type %q is not one flowhost checks (string, number, integer, boolean, array, object, null): not checked", where, in.Name, in.Type))
			}
		}
	}
	return ws
}
