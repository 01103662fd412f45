package abi

import (
	"os"
	"regexp"
	"testing"
)

// TestDocumentedImports: docs/abi.md's import table lists every function
// of HostFuncs, each with its exact type, and nothing else.
func TestDocumentedImports(t *testing.T) {
	doc, err := os.ReadFile("../docs/abi.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| `([^`]*)` \\|").FindAllStringSubmatch(string(doc), -1)
	seen := map[string]bool{}
	for _, r := range rows {
		name, typ := r[1], r[2]
		ft, ok := HostFuncs[name]
		if !ok {
			t.Errorf("docs/abi.md documents %s, which the host does not provide", name)
			continue
		}
		if ft.String() != typ {
			t.Errorf("docs/abi.md gives %s the type %s; it is %s", name, typ, ft)
		}
		seen[name] = true
	}
	for name, ft := range HostFuncs {
		if !seen[name] {
			t.Errorf("docs/abi.md does not document %s %s", name, ft)
		}
	}
}
