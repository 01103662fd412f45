package abi

import (
	"encoding/json"
	"strings"
	"testing"
)

func schema(t testing.TB, js string) *Schema {
	t.Helper()
	var s Schema
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.validate("test", 0); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestSchemaCheck(t *testing.T) {
	for _, c := range []struct {
		schema, value string
		err           string // "" for a match
	}{
		{`{"type":"string"}`, `"a"`, ""},
		{`{"type":"string"}`, `42`, `must be a string, not 42`},
		{`{"type":"number"}`, `-1.5e3`, ""},
		{`{"type":"number"}`, `"1"`, `must be a number, not "1"`},
		{`{"type":"integer"}`, `3`, ""},
		{`{"type":"integer"}`, `3.0`, ""},
		{`{"type":"integer"}`, `3.5`, `must be an integer, not 3.5`},
		{`{"type":"boolean"}`, `false`, ""},
		{`{"type":"boolean"}`, `null`, `must be a boolean, not null`},
		{`{"type":"boolean","nullable":true}`, `null`, ""},
		{`{"type":"null"}`, `null`, ""},
		{`{"type":"array","items":{"type":"number"}}`, `[1, 2.5]`, ""},
		{`{"type":"array","items":{"type":"number"}}`, `[1, "x"]`, `[1] must be a number, not "x"`},
		{`{"type":"array","items":{"type":"array","items":{"type":"integer"}}}`, `[[1],[2,0.5]]`, `[1][1] must be an integer, not 0.5`},
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, `{"a":"x","b":1}`, ""},
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, `{"a":1}`, `.a must be a string, not 1`},
		{`{"type":"object"}`, `[1]`, `must be an object, not [1]`},
		{`{"enum":["red","green"]}`, `"green"`, ""},
		{`{"enum":["red","green"]}`, `"blue"`, `must be "red" or "green", not "blue"`},
		{`{"enum":[1,2]}`, `2.0`, ""},
		{`{"type":"uuid"}`, `42`, ""}, // a type of a newer host: not checked
		{`{}`, `{"any":"thing"}`, ""},
	} {
		err := schema(t, c.schema).Check([]byte(c.value))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s on %s: %v", c.schema, c.value, err)
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%s on %s: %v; want %q", c.schema, c.value, err, c.err)
		}
	}
}

func TestCanMatch(t *testing.T) {
	for _, c := range []struct {
		out, in string
		ok      bool
	}{
		{`{"type":"integer"}`, `{"type":"number"}`, true},
		{`{"type":"number"}`, `{"type":"integer"}`, true},
		{`{"type":"string"}`, `{"type":"number"}`, false},
		{`{}`, `{"type":"number"}`, true},
		{`{"type":"array","items":{"type":"string"}}`, `{"type":"array","items":{"type":"number"}}`, false},
		{`{"type":"array","items":{"type":"string"}}`, `{"type":"array"}`, true},
		{`{"type":"string","nullable":true}`, `{"type":"number","nullable":true}`, true},
	} {
		if got := CanMatch(schema(t, c.out), schema(t, c.in)); got != c.ok {
			t.Errorf("CanMatch(%s, %s) = %v", c.out, c.in, got)
		}
	}
}

func TestTypedManifest(t *testing.T) {
	m, err := ParseManifest([]byte(`{"abi":1,"name":"m","tasks":[{"name":"t",
		"inputs":[{"name":"xs","type":"array","items":{"type":"number"}},{"name":"mode","enum":["a","b"],"default":"a"}],
		"outputs":["plain",{"name":"n","type":"integer","description":"a count"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	task := m.Tasks[0]
	if task.Outputs[0] != "plain" || task.Outputs[1] != "n" || task.OutputType("n").Type != "integer" || task.OutputType("plain") != nil {
		t.Fatalf("outputs %v, types %v", task.Outputs, task.OutputTypes)
	}
	if got := task.Inputs[0].Schema.String(); got != "array of number" {
		t.Fatalf("xs is %s", got)
	}
	for js, want := range map[string]string{
		`{"name":"t","inputs":[{"name":"x","type":"string","items":{}}],"outputs":["o"]}`:                                                                                     `input "x": "items" applies to "type": "array"`,
		`{"name":"t","inputs":[{"name":"x","type":"integer","default":"1"}],"outputs":["o"]}`:                                                                                 `input "x": the default must be an integer, not "1"`,
		`{"name":"t","inputs":[],"outputs":["o"],"output_types":{"p":{"type":"string"}}}`:                                                                                     `output_types names "p", which is not an output`,
		`{"name":"t","inputs":[],"outputs":[{"name":"o","type":"object","items":{}}]}`:                                                                                        `output "o": "items" applies to "type": "array"`,
		`{"name":"t","inputs":[{"name":"x","type":"array","items":` + strings.Repeat(`{"type":"array","items":`, 20) + `{}` + strings.Repeat("}", 20) + `}],"outputs":["o"]}`: "nests deeper than 16 levels",
	} {
		_, err := ParseManifest([]byte(`{"abi":1,"name":"m","tasks":[` + js + `]}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", js, err, want)
		}
	}
}

// FuzzSchemaCheck: any type a manifest declares, on any value a flow or
// a tenant gives, is checked without a panic.
func FuzzSchemaCheck(f *testing.F) {
	f.Add([]byte(`{"type":"array","items":{"type":"integer"}}`), []byte(`[1,2.5]`))
	f.Add([]byte(`{"enum":[1,"a",null],"nullable":true}`), []byte(`"a"`))
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"string"}}}`), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, schemaJSON, value []byte) {
		var s Schema
		if json.Unmarshal(schemaJSON, &s) != nil || s.validate("fuzz", 0) != nil || !json.Valid(value) {
			return
		}
		err := s.Check(value)
		_ = s.String()
		if err != nil && !strings.Contains(err.Error(), "must be") {
			t.Fatalf("an error that names no type: %v", err)
		}
	})
}
