package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/internal/testmod"
)

// TestEmbedWarns: embed writes a legal manifest, and says what in it is
// likely a mistake: an unknown key (with the key meant), an output named
// like an input, an import a flow would refuse.
func TestEmbedWarns(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.wasm")
	os.WriteFile(raw, testmod.WATText(t, `(module
		(import "env" "now" (func (result i64)))
		(memory (export "memory") 1)
		(func (export "t") (result i32) (i32.const 0)))`), 0o644)
	man := filepath.Join(dir, "manifest.json")
	os.WriteFile(man, []byte(`{"abi":1,"name":"m","tasks":[{"name":"t","input":["x"],"inputs":["x"],"outputs":["x"]}]}`), 0o644)
	r := flowhost(t, "embed", "-m", man, "-o", filepath.Join(dir, "m.wasm"), raw)
	if r.code != 0 {
		t.Fatalf("embed: %d %s", r.code, r.stderr)
	}
	for _, want := range []string{
		`warning: ` + man + `: task "t": unknown key "input" is ignored; did you mean "inputs"?`,
		`task "t": output "x" has the name of one of its inputs`,
		`warning: ` + raw + `: import refused: env.now`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestTypedTasks: a typed input is checked before the call and a typed
// output after it, on every path (call, a map's elements, a flow's
// args), a dataflow binding whose types cannot match is refused before
// anything runs, and every error names the task, the input or output,
// and what it was given.
func TestTypedTasks(t *testing.T) {
	dir := t.TempDir()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	// A task that says "x" where its manifest promises an integer.
	liar := filepath.Join(dir, "liar.wasm")
	os.WriteFile(liar, testmod.WithManifest(t, testmod.WATText(t, `(module
		(import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
		(import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
		(import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
		(memory (export "memory") 1)
		(func (export "name") (result i32) (local $o i64)
			(local.set $o (call $alloc (i64.const 3)))
			(call $store_u8 (local.get $o) (i32.const 34))
			(call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 120))
			(call $store_u8 (i64.add (local.get $o) (i64.const 2)) (i32.const 34))
			(call $output_set (local.get $o) (i64.const 3))
			(i32.const 0))
		(func (export "count") (result i32) (i32.const 0)))`),
		`{"abi":1,"name":"liar","tasks":[{"name":"name","inputs":[],"outputs":[{"name":"n","type":"integer"}]},
		  {"name":"count","inputs":[{"name":"n","type":"string"}],"outputs":[{"name":"total","type":"number"}]}]}`), 0o644)

	if r := flowhost(t, "call", stats, "square", "-i", `x="7"`); r.code != 1 || !strings.Contains(r.stderr, `stats.square: bad input: input "x" must be a number, not "7"`) {
		t.Fatalf("call, a bad input: %d %s", r.code, r.stderr)
	}
	if r := flowhost(t, "call", liar, "name"); r.code != 1 || !strings.Contains(r.stderr, `liar.name: bad output: output "n" must be an integer, not "x"`) {
		t.Fatalf("call, a bad output: %d %s", r.code, r.stderr)
	}
	// write writes a flow: top-level keys, the plugins, then tables.
	write := func(top, tables string) string {
		p := filepath.Join(dir, "flow.toml")
		os.WriteFile(p, []byte(top+"[plugins]\nstats = "+strconvQuote(stats)+"\nliar = \"liar.wasm\"\n"+tables), 0o644)
		return p
	}
	out, r := runJSONOut(t, write("", "[inputs]\nx = [1, \"two\", 3]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n"))
	if out.Status != "failed" || !strings.Contains(*out.Error, `element 1: stats.square: bad input: input "x" must be a number, not "two"`) {
		t.Fatalf("a map element of the wrong type: %s %s", r.stdout, r.stderr)
	}
	for _, c := range []struct{ top, tables, want string }{
		{"", "[[step]]\ncall = \"stats.is_even\"\nargs = { x = 2.5 }\n", `arg x of stats.is_even must be an integer, not 2.5`},
		{"mode = \"dataflow\"\ntasks = [\"liar.*\"]\noutputs = [\"total\"]\n", "",
			`input "n" of liar.count is string, but liar.name's output "n", bound to it, is integer: no value is both`},
	} {
		r := flowhost(t, "run", write(c.top, c.tables))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "flow.toml:") {
			t.Errorf("%q: exit %d, stderr %q; want 2, file:line and %q", c.top+c.tables, r.code, r.stderr, c.want)
		}
	}
}

// TestUnreadInputs: a flow input, or an --input, that no task of the flow
// reads is refused with the name meant; one that only tasks a dataflow
// prunes would read is a warning.
func TestUnreadInputs(t *testing.T) {
	seq := writeFlow(t, "[inputs]\ntxt = \"a b\"\n[[step]]\ncall = \"text.split\"\nargs = { text = \"x\" }\n")
	if r := flowhost(t, "run", seq); r.code != 2 || !strings.Contains(r.stderr, `flow.toml:5:1: input "txt": no task of the flow reads it; did you mean "text"?`) {
		t.Errorf("an unread flow input: %d %s", r.code, r.stderr)
	}
	ok := writeFlow(t, "[[step]]\ncall = \"text.split\"\n")
	if r := flowhost(t, "run", ok, "--input", "text=a b", "--input", "sepp=,"); r.code != 2 || !strings.Contains(r.stderr, `--input sepp: no task of the flow reads an input "sepp"; did you mean "sep"?`) {
		t.Errorf("an unread --input: %d %s", r.code, r.stderr)
	}
	// A dataflow whose requested output needs split only: is_long, which
	// reads "word", is pruned.
	dir := filepath.Dir(writeFlow(t, ""))
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	df := filepath.Join(dir, "df.toml")
	os.WriteFile(df, []byte("mode = \"dataflow\"\ntasks = [\"text.split\", \"text.is_long\"]\noutputs = [\"words\"]\n[plugins]\ntext = "+strconvQuote(textkit)+"\n"), 0o644)
	r := flowhost(t, "run", df, "--input", "text=a b", "--input", "word=abc")
	if r.code != 0 || !strings.Contains(r.stderr, `warning: `+df+`: input "word" is read only by tasks this run does not need`) {
		t.Errorf("an input only a pruned task reads: %d %s", r.code, r.stderr)
	}
	if r := flowhost(t, "run", df, "--input", "text=a b"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("a flow whose inputs are all read: %d %s", r.code, r.stderr)
	}
}

// TestUnreachableBroker: a broker that cannot be reached is one line on
// stderr, whatever the command, not the Redis client's retries.
func TestUnreachableBroker(t *testing.T) {
	url := "redis://127.0.0.1:1/0" // nothing listens on port 1
	for _, args := range [][]string{
		{"run", "--broker", url, "flow.toml"},
		{"status", "1a2b3c", "--broker", url},
		{"worker", "--broker", url},
		{"call", "--from", "1a2b3c", "1", "--broker", url},
	} {
		r := flowhost(t, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "connection refused") || strings.Contains(r.stderr, "pool.go") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
	}
	// With --log-level debug, the client's own lines are there to see.
	if r := flowhost(t, "--log-level", "debug", "status", "1a2b3c", "--broker", url); !strings.Contains(r.stderr, "redis client:") {
		t.Errorf("debug: %s", r.stderr)
	}
}

// TestConditionErrors: a bad condition or branch is a flow error with
// file:line, before anything runs (exit code 2).
func TestConditionErrors(t *testing.T) {
	// writeFlow's plugins take lines 1 to 3: the body starts at line 4.
	cases := []struct{ body, want string }{
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\nwhen = \"size(reslt) > 1\"\n",
			`flow.toml:8:1: step 1: when: col 6: undeclared reference to 'reslt' (did you mean 'result'?)`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\nwhen = \"inputs.txt == 'a'\"\n",
			`flow.toml:8:1: step 1: when: "inputs.txt == 'a'" reads inputs.txt, but the flow has no input "txt"; did you mean "text"?`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\nwhen = \"1 + 1\"\n",
			`flow.toml:8:1: step 1: when: "1 + 1" is a number, not a boolean (true or false)`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n[[step]]\ncase = \"big\"\ncall = \"text.profile\"\n",
			`flow.toml:9:1: step 2: case "big": no branch step comes before this step's case`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nbranch = [{ case = \"other\" }, { case = \"big\", when = \"size(result) > 2\" }]\n",
			`flow.toml:9:1: step 2: case "other" has no when, so it is the default: it must come last`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nbranch = [{ case = \"big\", when = \"size(result) > 2\" }]\n[[step]]\ncase = \"bgi\"\ncall = \"text.profile\"\n",
			`flow.toml:11:1: step 3: case "bgi" is not a case of the branch of step 2; did you mean "big"?`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nbranch = [{ case = \"big\", when = \"result +\" }]\n",
			`flow.toml:9:1: step 2: case "big": when: col 9: Syntax error`},
		{"[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nbranch = [{ case = \"big\", whn = \"true\" }]\n",
			`flow.toml:9:1: unknown key "whn" in a branch's case; did you mean "when"?`},
	}
	for _, c := range cases {
		r := flowhost(t, "run", writeFlow(t, c.body))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("flow:\n%s\nexit %d, stderr %s\nwant %s", c.body, r.code, r.stderr, c.want)
		}
	}
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	df := filepath.Join(t.TempDir(), "df.toml")
	os.WriteFile(df, []byte("tasks = [\"text.split\"]\n[plugins]\ntext = "+strconvQuote(textkit)+"\n[inputs]\ntext = \"a\"\n[task.\"text.split\"]\nwhen = \"args.txt != ''\"\n"), 0o644)
	want := `df.toml:7:1: [task."text.split"] when: "args.txt != ''" reads args.txt, but text.split has no input "txt"; did you mean "text"?`
	if r := flowhost(t, "run", df); r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("a dataflow task's when: exit %d, stderr %s\nwant %s", r.code, r.stderr, want)
	}
}

// TestSubFlowErrors: a sub-flow that cannot run is a flow error with
// file:line before anything runs: a cycle of flows, an input the child
// does not read, a child that does not load, inputs without flow.
func TestSubFlowErrors(t *testing.T) {
	dir := t.TempDir()
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	plugins := "[plugins]\ntext = " + strconvQuote(textkit) + "\n"
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	write("child.toml", "name = \"child\"\n[inputs]\ntext = \"a\"\n"+plugins+"[[step]]\ncall = \"text.split\"\n")
	write("a.toml", plugins+"[[step]]\nflow = \"b.toml\"\n")
	write("b.toml", plugins+"[[step]]\nflow = \"a.toml\"\n")
	write("broken.toml", plugins+"[[step]]\ncall = \"text.splt\"\n")
	cases := []struct{ flow, want string }{
		{write("p1.toml", plugins+"[[step]]\nflow = \"a.toml\"\n"), `p1.toml:4:1: step 1: sub-flow: ` + dir + `/a.toml:4:1: step 1: sub-flow: ` + dir + `/b.toml:4:1: step 1: sub-flow: the flows form a cycle: a.toml → b.toml → a.toml`},
		{write("p2.toml", plugins+"[inputs]\ntext = \"a b\"\n[[step]]\nflow = \"child.toml\"\ninputs = { txt = \"inputs.text\" }\n"), `p2.toml:7:1: step 1: sub-flow child reads no input "txt"`},
		{write("p3.toml", plugins+"[[step]]\nflow = \"child.toml\"\ninputs = { text = \"inputs.txt\" }\n"), `p3.toml:5:1: step 1: sub-flow child, input text: "inputs.txt" reads inputs.txt, but the flow has no input "txt"`},
		{write("p4.toml", plugins+"[[step]]\nflow = \"broken.toml\"\n"), `p4.toml:4:1: step 1: sub-flow broken: step 1: "s1:text.splt": module textkit (s1:text) has no task "splt"; did you mean "split"?`},
		{write("p5.toml", plugins+"[[step]]\nflow = \"missing.toml\"\n"), `p5.toml:4:1: step 1: sub-flow: open ` + dir + `/missing.toml: no such file or directory`},
		{write("p6.toml", plugins+"[[step]]\ncall = \"text.split\"\ninputs = { text = \"'x'\" }\n"), `p6.toml:5:1: step 1: inputs = { … } gives a sub-flow's inputs: it goes with flow = "…"`},
	}
	for _, c := range cases {
		if r := flowhost(t, "run", c.flow); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d\n%s\nwant %s", filepath.Base(c.flow), r.code, r.stderr, c.want)
		}
	}
}
