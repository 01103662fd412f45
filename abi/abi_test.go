package abi_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/internal/testmod"
)

func TestParseManifest(t *testing.T) {
	m, err := abi.ParseManifest([]byte(`{
		"abi": 1, "name": "textkit", "version": "1.0.0", "future_key": {"ignored": true},
		"tasks": [
			{"name": "split", "inputs": ["text", {"name": "sep", "default": " ", "type": "string"}], "outputs": ["words"]},
			{"name": "profile", "export": "prof", "inputs": ["words"], "output": "vocab"}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	split, _ := m.Task("split")
	if split.Export != "split" || !split.Inputs[0].Required() || split.Inputs[1].Required() || string(split.Inputs[1].Default) != `" "` {
		t.Fatalf("split %+v", split)
	}
	prof, _ := m.Task("profile")
	if prof.Export != "prof" || len(prof.Outputs) != 1 || prof.Outputs[0] != "vocab" {
		t.Fatalf("profile %+v", prof)
	}
}

func TestParseManifestErrors(t *testing.T) {
	cases := []struct{ name, json, want string }{
		{"syntax", "{\n  \"abi\": 1,\n  \"name\": \"x\"\n  \"tasks\": []\n}", "line 4, column 3 (byte 30): invalid character '\"' after object key:value pair"},
		{"type", `{"abi": "one"}`, `line 1, column 14 (byte 13): abi: expected int, found JSON string`},
		{"truncated", `{"abi": 1`, "the JSON ends early"},
		{"trailing", `{"abi":1,"name":"x","tasks":[{"name":"t","outputs":["o"]}]} {}`, "unexpected data after the manifest object"},
		{"abi missing", `{"name":"x"}`, `"abi" is missing`},
		{"bad name", `{"abi":1,"name":"a b","tasks":[]}`, `module "name" "a b" is not a valid name`},
		{"no tasks", `{"abi":1,"name":"x","tasks":[]}`, "declares no task"},
		{"duplicate task", `{"abi":1,"name":"x","tasks":[{"name":"t","outputs":["o"]},{"name":"t","outputs":["o"]}]}`, `task "t" is declared twice`},
		{"no outputs", `{"abi":1,"name":"x","tasks":[{"name":"t","inputs":[]}]}`, `task "t" declares no output`},
		{"both output keys", `{"abi":1,"name":"x","tasks":[{"name":"t","output":"a","outputs":["b"]}]}`, `both "output" and "outputs"`},
		{"reserved export", `{"abi":1,"name":"x","tasks":[{"name":"t","export":"_start","outputs":["o"]}]}`, `export "_start" is reserved`},
		{"bad input name", `{"abi":1,"name":"x","tasks":[{"name":"t","inputs":["1x"],"outputs":["o"]}]}`, `input name "1x" is not an identifier`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := abi.ParseManifest([]byte(c.json))
			if !errors.Is(err, abi.ErrBadManifest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestParseModule(t *testing.T) {
	wasm := testmod.WAT(t, "../host/testdata/hostile.wat")
	m, err := abi.ParseModule(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Imports) != 11 || m.Imports[0].Module != abi.ExtismEnv || m.Imports[0].Name != "input_length" {
		t.Fatalf("imports %+v", m.Imports)
	}
	if ft, ok := m.ExportedFunc("echo"); !ok || ft.String() != "() -> i32" {
		t.Fatalf("echo: %v %v", ft, ok)
	}
	if _, ok := m.ExportedFunc("memory"); ok {
		t.Fatal("memory reported as a function")
	}
	if err := abi.CheckImports(m); err != nil {
		t.Fatal(err)
	}
	// A custom section is appended, then replaced, never duplicated.
	w1, err := abi.AppendCustomSection(wasm, abi.SectionName, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := abi.AppendCustomSection(w1, abi.SectionName, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := abi.ParseModule(w2)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range m2.Custom {
		if c.Name == abi.SectionName {
			n++
		}
	}
	if sec, _ := m2.Section(abi.SectionName); string(sec) != "two" || n != 1 {
		t.Fatalf("section %q, %d copies", sec, n)
	}
}

func TestCheckImportsSignature(t *testing.T) {
	// alloc imported with the wrong type.
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 5, 1, 0x60, 1, 0x7f, 0, // type 0: (i32) -> ()
		2, 0x19, 1, 15, 'e', 'x', 't', 'i', 's', 'm', ':', 'h', 'o', 's', 't', '/', 'e', 'n', 'v', 5, 'a', 'l', 'l', 'o', 'c', 0, 0}
	m, err := abi.ParseModule(wasm)
	if err != nil {
		t.Fatal(err)
	}
	err = abi.CheckImports(m)
	if !errors.Is(err, abi.ErrImportRefused) || !strings.Contains(err.Error(), "extism:host/env.alloc has type (i32) -> (); the ABI defines (i64) -> i64") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseModuleShape(t *testing.T) {
	m, err := abi.ParseModule(testmod.WAT(t, "testdata/shape.wat"))
	if err != nil {
		t.Fatal(err)
	}
	wantMem := []abi.Limits{{Min: 3, Max: 10, HasMax: true}}
	wantTables := []abi.Limits{{Min: 5}, {Min: 2, Max: 100, HasMax: true}}
	wantData := []abi.DataSegment{
		{Offset: 16, ConstOffset: true, Len: 3},
		{Offset: 0xffffff00, ConstOffset: true, Len: 1}, // i32.const -256: an unsigned offset
		{Len: 2}, // global.get: left to the runtime
		{Len: 1}, // an extended constant: likewise
	}
	if fmt.Sprint(m.Memories) != fmt.Sprint(wantMem) || fmt.Sprint(m.Tables) != fmt.Sprint(wantTables) || fmt.Sprint(m.Data) != fmt.Sprint(wantData) {
		t.Fatalf("memories %+v tables %+v data %+v\nwant %+v %+v %+v", m.Memories, m.Tables, m.Data, wantMem, wantTables, wantData)
	}
	if m.HasStart {
		t.Fatal("HasStart for a module without a start function")
	}
	if s, err := abi.ParseModule(testmod.WATText(t, `(module (func $s) (start $s))`)); err != nil || !s.HasStart {
		t.Fatalf("a module with a start function: HasStart %v, %v", s != nil && s.HasStart, err)
	}
	if end := m.Data[1].End(); end != 0xffffff01 {
		t.Fatalf("End = %#x", end)
	}
}
