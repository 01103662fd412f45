package abi_test

import (
	"os"
	"testing"

	"github.com/flowhost/flowhost/abi"
)

// FuzzParseManifest: no manifest, however malformed, may panic; a manifest
// that parses is valid.
func FuzzParseManifest(f *testing.F) {
	for _, p := range []string{
		"../plugins/examples/textkit-go/manifest.json",
		"../plugins/examples/stats-c/manifest.json",
		"../host/testdata/hostile.json",
	} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"abi":1,"name":"x","tasks":[{"name":"t","inputs":["a",{"name":"b","default":1}],"output":"o"}]}`))
	f.Add([]byte(`{"abi":1,"name":"x","tasks":[{"name":"t","output":"a","outputs":["b"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := abi.ParseManifest(b)
		if err != nil {
			return
		}
		if m.ABI != abi.Version || len(m.Tasks) == 0 {
			t.Fatalf("accepted an invalid manifest: %+v", m)
		}
		for _, task := range m.Tasks {
			if task.Export == "" || len(task.Outputs) == 0 {
				t.Fatalf("accepted task %+v", task)
			}
		}
	})
}

// FuzzParseModule: the section walker and the custom-section writer never
// panic, and a section written is read back.
func FuzzParseModule(f *testing.F) {
	for _, p := range []string{"../plugins/examples/mathwat/mathwat.wasm", "../plugins/examples/stats-c/stats.wasm"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x05\x01x123"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := abi.ParseModule(b)
		if err != nil {
			return
		}
		_ = abi.CheckImports(m)
		for _, e := range m.Exports {
			m.ExportedFunc(e.Name)
		}
		out, err := abi.AppendCustomSection(b, abi.SectionName, []byte("{}"))
		if err != nil {
			return
		}
		m2, err := abi.ParseModule(out)
		if err != nil {
			t.Fatalf("a module with an appended section does not parse: %v", err)
		}
		if sec, ok := m2.Section(abi.SectionName); !ok || string(sec) != "{}" {
			t.Fatalf("section not read back: %q", sec)
		}
	})
}
