package flow

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

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

// FuzzParseDuration: no string panics ParseDuration; what it accepts is
// positive, at most pipeline.MaxDuration, and reads back from its own
// String form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5s", "250ms", "1m30s", "1.5h", "8760h", "8760h0m0.000000001s", "2100000h", "3000000h",
		"-1s", "0", "5", " 5s ", "1µs", "1us", "+3m", "1h1h1h", ".5s", "5.s", "", "soon", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 || d > pipeline.MaxDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside (0, %v]", s, d, pipeline.MaxDuration)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, but ParseDuration(%q) = %v, %v", s, d, d.String(), back, err)
		}
	})
}

// FuzzParseSize: no string panics ParseSize; what it accepts is at least
// one byte and fits an int64, reads back from its decimal form, and a
// plain integer reads exactly.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "64KiB", "16MiB", "1GB", "1.5 MiB", "2gib", "1TiB", "1_000", "0", "0.5", "",
		"12 parsecs", "9007199254740993", "9223372036854775807", "9223372036854775808", "8388608TiB", "8388607.99TiB", ".", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 1 || n > math.MaxInt64 {
			t.Fatalf("ParseSize(%q) = %d, outside [1, MaxInt64]", s, n)
		}
		dec := strconv.FormatUint(n, 10)
		if back, err := ParseSize(dec); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but ParseSize(%q) = %d, %v", s, n, dec, back, err)
		}
		if digits := strings.ReplaceAll(strings.TrimSpace(s), "_", ""); digits != "" && strings.Trim(digits, "0123456789") == "" {
			if exact, _ := strconv.ParseUint(digits, 10, 64); exact != n {
				t.Fatalf("ParseSize(%q) = %d, want exactly %d", s, n, exact)
			}
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
