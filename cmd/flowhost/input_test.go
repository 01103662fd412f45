package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeepInputs: a value nested past 64 levels is refused the same way
// wherever it enters (--input, a file, [inputs], args): exit code 2, the
// input named, the limit said, nothing run. Before, it was taken as a
// string, refused as "not valid JSON", or failed the run with exit code 1.
func TestDeepInputs(t *testing.T) {
	dir := t.TempDir()
	textkit, err := filepath.Abs("../../plugins/examples/textkit-go/textkit.wasm")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	head := "[plugins]\ntext = " + strconvQuote(textkit) + "\n"
	plain := write("plain.toml", head+"[inputs]\ntext = \"a b\"\n[[step]]\ncall = \"text.split\"\n")
	deepInput := write("input.toml", head+"[inputs.text]\nk"+strings.Repeat(".k", 63)+" = [1]\n[[step]]\ncall = \"text.split\"\n")
	deepArg := write("arg.toml", head+"[inputs]\ntext = \"a b\"\n[[step]]\ncall = \"text.split\"\n[step.args.sep]\nk"+strings.Repeat(".k", 63)+" = [1]\n")
	deepFile := write("deep.json", deep(20000))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"--input past the limit", []string{"run", plain, "--input", "text=" + deep(65)}, "--input text: nested more than 64 levels deep: at most 64 levels of arrays and objects are allowed"},
		{"--input past Go's limit", []string{"run", plain, "--input", "text=" + deep(20000)}, "--input text: nested more than 64 levels deep"},
		{"--input file", []string{"run", plain, "--input", "text=@" + deepFile}, "--input text: " + deepFile + ": nested more than 64 levels deep"},
		{"--input not JSON", []string{"run", plain, "--input", "text=[1,2"}, "--input text: not valid JSON"},
		{"graph --input", []string{"graph", plain, "--input", "text=" + deep(65)}, "--input text: nested more than 64 levels deep"},
		{"[inputs]", []string{"run", deepInput}, deepInput + ":3:1: input text: nested more than 64 levels deep"},
		{"args", []string{"run", deepArg}, deepArg + ":5:1: arg sep: nested more than 64 levels deep"},
		{"[inputs] --json", []string{"run", "--json", deepInput}, `"error":"` + deepInput + `:3:1: input text: nested more than 64 levels deep`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"--cache-dir", "off"}, c.args...), &out, &errb)
			if code != exitInvalid || !strings.Contains(errb.String()+out.String(), c.want) {
				t.Fatalf("exit %d, stdout %.300q, stderr %.300q\nwant exit 2 and %q", code, out.String(), errb.String(), c.want)
			}
		})
	}
}

func strconvQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
