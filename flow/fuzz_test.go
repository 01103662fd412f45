package flow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowhost/flowhost/pipeline"
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

// FuzzParseInput: no --input value panics ParseInput; what it accepts is
// valid JSON within pipeline.MaxDepth, a string value holds the text as
// written, and NAME=VALUE written back from the result reads the same.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{"text=hello", "text=", "text= hello", "n=12", "n=-1.5e3", "n=01", "f=true", "f=null", "f=True",
		"x=[1,2,3]", "x= [1]", `x={"a":1}`, `text="[draft]"`, `text="@home"`, "x=[1,2", `text="hello`, "x={a: 1}",
		"x=" + strings.Repeat("[", 64) + strings.Repeat("]", 64), "x=" + strings.Repeat("[", 65) + strings.Repeat("]", 65),
		"novalue", "=1", "a=b=c", "x=\xff", "x=\"\\u00e9\"", "x=<&>", "x=\t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		if strings.Contains(kv, "=@") {
			return // a file to read: not this target's business
		}
		name, v, err := ParseInput(kv)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--input ") {
				t.Fatalf("ParseInput(%q): error %q does not name the flag", kv, err)
			}
			return
		}
		if name == "" || strings.Contains(name, "=") {
			t.Fatalf("ParseInput(%q): name %q", kv, name)
		}
		if err := pipeline.CheckJSON(v); err != nil {
			t.Fatalf("ParseInput(%q) = %q: %v", kv, v, err)
		}
		value := kv[len(name)+1:]
		if lead := strings.TrimLeft(value, " \t\r\n"); (lead == "" || !strings.ContainsRune(`{["`, rune(lead[0]))) && !json.Valid([]byte(value)) && utf8.ValidString(value) {
			var s string
			if err := json.Unmarshal(v, &s); err != nil || s != value {
				t.Fatalf("ParseInput(%q) = %s, not the string as written", kv, v)
			}
		}
		name2, v2, err := ParseInput(name + "=" + string(v))
		if err != nil || name2 != name || string(v2) != string(v) {
			t.Fatalf("ParseInput(%q) = %q, %s; written back: %q, %s, %v", kv, name, v, name2, v2, err)
		}
	})
}
