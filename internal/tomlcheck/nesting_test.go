package tomlcheck

import (
	"strings"
	"testing"
)

func TestCheckNesting(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	dotted := func(n int) string { return "k" + strings.Repeat(".k", n-1) }
	cases := []struct {
		name, src string
		want      string // "" for no error
	}{
		{"flat", "a = 1\n[t]\nb = [1, [2, 3]]\n", ""},
		{"at the limit", "x = " + deep(64) + "\n", ""},
		{"past the limit", "x = " + deep(65) + "\n", "1:69: arrays and inline tables nested more than 64 deep: at most 64 levels are allowed"},
		{"5,000,000 deep", "x = " + deep(5_000_000) + "\n", "1:69: arrays and inline tables nested more than 64 deep"},
		{"unclosed", "x = " + strings.Repeat("[", 100), "1:69:"},
		{"on a later line", "a = 1\n\nx = [\n" + strings.Repeat(" [\n", 70), "67:2:"},
		{"inline tables", "x = " + strings.Repeat("{a = ", 65) + "1" + strings.Repeat("}", 65) + "\n", "1:325: arrays and inline tables nested"},
		{"arrays in inline tables", "x = " + strings.Repeat("{a = [", 33) + strings.Repeat("]}", 33) + "\n", "1:197:"},
		{"brackets in strings", `x = "` + strings.Repeat("[", 100) + `"` + "\n", ""},
		{"brackets in literal strings", `x = '` + strings.Repeat("[", 100) + `\'` + "\n", ""},
		{"escaped quote", `x = "\"` + strings.Repeat("[", 100) + `"` + "\n", ""},
		{"backslash at the end", `x = ["\\", ` + deep(70) + "]\n", "1:75:"},
		{"brackets in multi-line strings", "x = \"\"\"\n" + strings.Repeat("[", 100) + "\n\"\"\"\n", ""},
		{"brackets in multi-line literals", "x = '''\n" + strings.Repeat("[", 100) + "\n'''\n", ""},
		{"a quote ending a multi-line string", `x = ["""a"""", ` + deep(70) + "]\n", "1:79:"},
		{"two quotes ending a multi-line string", `x = ['''a''''', ` + deep(70) + "]\n", "1:80:"},
		{"brackets in comments", "# " + strings.Repeat("[", 100) + "\nx = 1 # " + strings.Repeat("{", 100) + "\n", ""},
		{"a one-line string ends with its line", "x = \"a\n" + "y = " + deep(70) + "\n", "2:69:"},
		{"a string in a key", `"` + strings.Repeat("[", 100) + `" = 1` + "\n", ""},
		{"key at the limit", dotted(64) + " = 1\n", ""},
		{"key past the limit", "a = 1\n" + dotted(65) + " = 1\n", "2:1: a key or table name of more than 64 dotted parts: at most 64 are allowed"},
		{"a million parts", dotted(1_000_000) + " = 1\n", "1:1: a key or table name of more than 64 dotted parts"},
		{"quoted dots", `"` + strings.Repeat(".", 100) + `" = 1` + "\n", ""},
		{"header past the limit", "[" + dotted(65) + "]\n", "1:1: a key or table name"},
		{"array header past the limit", "[[" + dotted(65) + "]]\n", "1:1: a key or table name"},
		{"inline key past the limit", "x = { " + dotted(65) + " = 1 }\n", "1:6: a key or table name"},
		{"inline key after a comma", "x = { a = 1, " + dotted(65) + " = 1 }\n", "1:13: a key or table name"},
		{"dots in values", "x = [1.5, 2.5, 1979-05-27T07:32:00.999]\n" + "y = " + strings.Repeat("1.", 100) + "\n", ""},
		{"steps", strings.Repeat("[[step]]\ncall = \"a.b\"\nargs = { x = [[1]] }\n", 1000), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckNesting([]byte(c.src))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
