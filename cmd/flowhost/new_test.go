package main

import (
	"os"
	"testing"
)

// TestTemplatesMatchExamples: the ABI files a skeleton carries are the
// examples' own, byte for byte, so a fix to one is a fix to both.
func TestTemplatesMatchExamples(t *testing.T) {
	for tmpl, example := range map[string]string{
		"templates/c/extism.h":                            "../../plugins/examples/stats-c/extism.h",
		"templates/rust/src/extism.rs":                    "../../plugins/examples/rustkit-rust/src/extism.rs",
		"templates/rust/src/json.rs":                      "../../plugins/examples/rustkit-rust/src/json.rs",
		"templates/go/go.sum":                             "../../plugins/examples/textkit-go/go.sum",
		"templates/assemblyscript/assembly/tsconfig.json": "../../plugins/examples/jsonkit-as/assembly/tsconfig.json",
	} {
		a, err := templates.ReadFile(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(example)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("%s differs from %s: copy the example's", tmpl, example)
		}
	}
}
