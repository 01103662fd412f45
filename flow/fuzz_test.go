package flow

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no flow file may panic the parser, and every error it
// returns names the file.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("../examples/flows/*.toml")
	paths = append(paths, "../flow.toml")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[plugins]\nx = { path = \"a\", sha256 = \"\" }\n[[step]]\ncall = \"x.y\"\n"))
	f.Add([]byte("tasks = [\"a.*\"]\n[plugins]\na = \"m.wasm\"\n[task.\"a.b\"]\nretries = 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := Parse("fuzz.toml", b)
		if err != nil {
			if e, ok := err.(*Error); ok && e.File != "fuzz.toml" {
				t.Fatalf("error names %q", e.File)
			}
			return
		}
		if (fl.Sequential == nil) == (fl.Dataflow == nil) {
			t.Fatalf("mode %q with sequential %v and dataflow %v", fl.Mode, fl.Sequential != nil, fl.Dataflow != nil)
		}
	})
}
