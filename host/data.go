package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/flowhost/flowhost/internal/jsonscan"
)

// Input builds a task's input object from named values (docs/abi.md): it
// fills in declared defaults and refuses unknown names and missing
// required inputs.
func (t *Task) Input(values map[string]json.RawMessage) ([]byte, error) {
	for name := range values {
		if _, ok := t.Spec.Input(name); !ok {
			return nil, t.inputErr("the task has no input %q (inputs: %s)", name, t.inputNames())
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, in := range t.Spec.Inputs {
		v, ok := values[in.Name]
		if !ok {
			if in.Required() {
				return nil, t.inputErr("missing required input %q", in.Name)
			}
			v = in.Default
		}
		if !json.Valid(v) {
			return nil, t.inputErr("input %q is not valid JSON", in.Name)
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		writeName(&b, in.Name)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeName writes name as a JSON string: as it is, quoted, when it
// needs no escape (every name a manifest declares in practice).
func writeName(b *bytes.Buffer, name string) {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(name)
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(name)
	b.WriteByte('"')
}

// CheckInput checks the members of an input object against the types
// the manifest declares for them (abi.Schema), before the task runs: a
// mismatch fails the call as bad input, naming the input and what it was
// given. An input object that is not JSON is left to the task.
func (t *Task) CheckInput(input []byte) error {
	if !t.typedIn {
		return nil
	}
	err := jsonscan.Object(input, func(name, v []byte) error {
		for i := range t.Spec.Inputs {
			if in := &t.Spec.Inputs[i]; in.Name == string(name) {
				if err := in.Schema.Check(v); err != nil {
					return t.inputErr("input %q %v", in.Name, err)
				}
				return nil
			}
		}
		return nil
	})
	if _, bad := err.(*TaskError); bad {
		return err
	}
	return nil
}

// checkOutputType checks one output's value against its declared type.
func (t *Task) checkOutputType(name string, v []byte) error {
	if err := t.Spec.OutputType(name).Check(v); err != nil {
		return &TaskError{Kind: KindBadOutput, Module: t.mod.Name, Task: t.Spec.Name, Msg: fmt.Sprintf("output %q %v", name, err)}
	}
	return nil
}

func (t *Task) inputNames() string {
	names := make([]string, len(t.Spec.Inputs))
	for i, in := range t.Spec.Inputs {
		names[i] = in.Name
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (t *Task) inputErr(format string, args ...any) error {
	return &TaskError{Kind: KindBadInput, Module: t.mod.Name, Task: t.Spec.Name, Msg: fmt.Sprintf(format, args...)}
}

// CheckOutput enforces the ABI's rule for outputs (docs/abi.md): the output is JSON, and for a task with
// several outputs, an object holding each of them.
func (t *Task) CheckOutput(out []byte) error {
	bad := func(format string, args ...any) error {
		return &TaskError{Kind: KindBadOutput, Module: t.mod.Name, Task: t.Spec.Name, Msg: fmt.Sprintf(format, args...)}
	}
	if len(out) == 0 {
		return bad("the task set no output")
	}
	if !json.Valid(out) {
		return bad("output is not valid JSON: %s", preview(out))
	}
	if len(t.Spec.Outputs) <= 1 {
		if t.typedOut {
			return t.checkOutputType(t.Spec.Outputs[0], out)
		}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(out, &obj); err != nil {
		return bad("the task declares outputs %s, so its output must be a JSON object; got %s", strings.Join(t.Spec.Outputs, ", "), preview(out))
	}
	for _, name := range t.Spec.Outputs {
		v, ok := obj[name]
		if !ok {
			return bad("output lacks declared output %q: %s", name, preview(out))
		}
		if t.typedOut {
			if err := t.checkOutputType(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Outputs splits a task's output into its named outputs.
func (t *Task) Outputs(out []byte) (map[string]json.RawMessage, error) {
	if len(t.Spec.Outputs) == 1 {
		return map[string]json.RawMessage{t.Spec.Outputs[0]: out}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(out, &obj); err != nil {
		return nil, err
	}
	res := make(map[string]json.RawMessage, len(t.Spec.Outputs))
	for _, name := range t.Spec.Outputs {
		res[name] = obj[name]
	}
	return res, nil
}

func preview(b []byte) string {
	const max = 80
	if len(b) > max {
		return fmt.Sprintf("%q… (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}
