package tomlcheck

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/flowhost/flowhost/pipeline"
)

// FuzzCheckNesting: a source CheckNesting lets through decodes, when it
// decodes, into values no deeper than its limits allow: 64 levels of
// arrays and inline tables, and 64 dotted parts in a table name and in a
// key (so the scan misses no bracket the decoder reads).
func FuzzCheckNesting(f *testing.F) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	for _, s := range []string{"x = [1, [2]]", "x = " + deep, `x = "` + deep + `"`, "x = '" + deep + "'", `x = ["\\", ` + deep + "]",
		`x = ["""a"""", ` + deep + "]", `x = ['''a''''', ` + deep + "]", "# " + deep + "\nx = 1", "x = \"\"\"\n" + deep + "\n\"\"\"",
		"[a.b.c]\nd.e = {f = [{g = 1}]}", "[[a.b]]\nc = 1", `"a.b" = 1`, "x = {a = 1, b.c = [2]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if CheckNesting(src) != nil {
			return
		}
		var v map[string]any
		if _, err := toml.Decode(string(src), &v); err != nil {
			return
		}
		if d := depth(v); d > 3*pipeline.MaxDepth+1 {
			t.Fatalf("CheckNesting passed a source that decodes %d levels deep", d)
		}
	})
}

// depth is how deep maps and slices nest in v.
func depth(v any) int {
	deepest := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			deepest = max(deepest, depth(e))
		}
	case []any:
		for _, e := range x {
			deepest = max(deepest, depth(e))
		}
	case []map[string]any:
		for _, e := range x {
			deepest = max(deepest, depth(e))
		}
	default:
		return 0
	}
	return deepest + 1
}
