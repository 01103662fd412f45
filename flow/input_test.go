package flow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseInput(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good.json", `{"a": [1, 2]}`)
	deepFile := file("deep.json", strings.Repeat("[", 20000)+strings.Repeat("]", 20000))
	text := file("text.txt", "hello")
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`"`+strings.Repeat("x", MaxInputFile)+`"`), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		in, name, value string
		err             string
	}{
		{in: "text=hello", name: "text", value: `"hello"`},
		{in: "text=hello world", name: "text", value: `"hello world"`},
		{in: "text=", name: "text", value: `""`},
		{in: "text= hello", name: "text", value: `" hello"`},
		{in: "text=a=b", name: "text", value: `"a=b"`},
		{in: "n=12", name: "n", value: "12"},
		{in: "n=-1.5e3", name: "n", value: "-1.5e3"},
		{in: "n=01", name: "n", value: `"01"`}, // not a JSON number
		{in: "f=true", name: "f", value: "true"},
		{in: "f=null", name: "f", value: "null"},
		{in: "f=True", name: "f", value: `"True"`},
		{in: "x=[1,2,3]", name: "x", value: "[1,2,3]"},
		{in: "x= [1]", name: "x", value: " [1]"},
		{in: `x={"a":1}`, name: "x", value: `{"a":1}`},
		{in: `text="[draft]"`, name: "text", value: `"[draft]"`},
		{in: `text="@home"`, name: "text", value: `"@home"`},
		{in: "x=" + deep(64), name: "x", value: deep(64)},
		{in: "x=@" + good, name: "x", value: `{"a": [1, 2]}`},
		{in: "x=[1,2", err: `--input x: not valid JSON: unexpected end of JSON input (at byte 4) (a value beginning with '[' is read as JSON; to give a string, quote it as JSON)`},
		{in: `text="hello`, err: `--input text: not valid JSON`},
		{in: "x={a: 1}", err: `--input x: not valid JSON: invalid character 'a'`},
		{in: "x=" + deep(65), err: "--input x: nested more than 64 levels deep: at most 64 levels of arrays and objects are allowed"},
		// Go's decoder refuses 10,000 levels: this was taken as a string.
		{in: "x=" + deep(20000), err: "--input x: nested more than 64 levels deep"},
		{in: "x=@" + deepFile, err: "--input x: " + deepFile + ": nested more than 64 levels deep"},
		{in: "x=@" + text, err: "--input x: " + text + ": not valid JSON"},
		{in: "x=@" + filepath.Join(dir, "none.json"), err: "--input x: stat " + filepath.Join(dir, "none.json") + ": no such file or directory"},
		{in: "x=@" + dir, err: "--input x: " + dir + ": not a regular file: it is a directory"},
		{in: "x=@" + os.DevNull, err: "--input x: " + os.DevNull + ": not a regular file: it is a character device"},
		{in: "x=@" + big, err: "--input x: " + big + " is larger than 64 MiB, the most --input reads"},
		{in: "novalue", err: `--input "novalue": write NAME=JSON, NAME=TEXT or NAME=@FILE`},
		{in: "=1", err: `--input "=1": write NAME=JSON`},
	}
	for _, c := range cases {
		t.Run(c.in[:min(len(c.in), 40)], func(t *testing.T) {
			name, v, err := ParseInput(c.in)
			if c.err != "" {
				if err == nil || err.Error() != c.err && !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("error %.300v\nwant %q", err, c.err)
				}
				return
			}
			if err != nil || name != c.name || string(v) != c.value {
				t.Fatalf("= %q, %.100s, %v; want %q, %.100s", name, v, err, c.name, c.value)
			}
		})
	}
}
