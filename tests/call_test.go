package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

// callOut is `flowhost call --json`'s output.
type callOut struct {
	Task   string          `json:"task"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
	Kind   string          `json:"kind"`
	Stats  *struct {
		DurationMS float64 `json:"duration_ms"`
		Fuel       uint64  `json:"fuel"`
		Memory     uint64  `json:"memory_bytes"`
		Output     int     `json:"output_bytes"`
	} `json:"stats"`
}

// TestCall: `flowhost call` runs one task as a flow would, and reports
// its output or its typed failure with run's exit codes.
func TestCall(t *testing.T) {
	dir := t.TempDir()
	for name, files := range map[string][2]string{
		"flaky.wasm":   {"tests/testdata/flaky.wat", "tests/testdata/flaky.json"},
		"bigmem.wasm":  {"tests/testdata/bigmem.wat", "tests/testdata/bigmem.json"},
		"wasi.wasm":    {"host/testdata/wasi_read.wat", "host/testdata/wasi_read.json"},
		"hostile.wasm": {"host/testdata/hostile.wat", "host/testdata/hostile.json"},
	} {
		os.WriteFile(filepath.Join(dir, name), testmod.Module(t, "../"+files[0], "../"+files[1]), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "shared", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "shared", "etc", "passwd"), []byte("x"), 0o644)
	stats, text := "plugins/examples/stats-c/stats.wasm", "plugins/examples/textkit-go/textkit.wasm"
	mod := func(name string) string { return filepath.Join(dir, name) }
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		output string // with status succeeded
		kind   string // with status failed
		errHas string
	}{
		{name: "success", args: []string{stats, "square", "-i", "x=7"}, output: `49`},
		{name: "defaults", args: []string{text, "is_long", "-i", "word=flowhost"}, output: `true`},
		{name: "task error", args: []string{text, "fail_if", "-i", "flag=true", "-i", "message=no good"}, code: 1, kind: "task error", errHas: "textkit.fail_if: no good"},
		{name: "timeout", args: []string{mod("flaky.wasm"), "spin", "--timeout", "200ms"}, code: 1, kind: "timeout", errHas: "did not finish within 200ms"},
		{name: "fuel", args: []string{stats, "square", "-i", "x=7", "--fuel", "10"}, code: 1, kind: "fuel exhausted", errHas: "budget of 10 units"},
		{name: "memory", args: []string{mod("bigmem.wasm"), "run", "--memory", "1MiB"}, code: 1, kind: "memory limit", errHas: "the memory limit is 1048576 bytes"},
		{name: "max output", args: []string{text, "upper", "-i", "text=" + strings.Repeat("a", 100), "--max-output", "10"}, code: 1, kind: "output too large"},
		{name: "trap", args: []string{mod("hostile.wasm"), "trap"}, code: 1, kind: "trap"},
		{name: "stack overflow", args: []string{mod("hostile.wasm"), "recurse"}, code: 1, kind: "stack overflow"},
		{name: "bad output", args: []string{mod("hostile.wasm"), "bad_json"}, code: 1, kind: "bad output", errHas: "not valid JSON"},
		{name: "bad input", args: []string{stats, "square", "-i", `x="seven"`}, code: 1, kind: "bad input", errHas: `input "x" must be a number, not "seven"`},
		{name: "denied", args: []string{mod("hostile.wasm"), "http"}, code: 1, kind: "denied", errHas: "granted no HTTP hosts"},
		{name: "grown memory", args: []string{mod("hostile.wasm"), "grow", "--memory", "2MiB"}, code: 1, kind: "memory limit"},
		{name: "no grant", args: []string{mod("wasi.wasm"), "read"}, output: `4`}, // ENOENT: nothing is there
		{name: "files grant", args: []string{mod("wasi.wasm"), "read", "--grant", "files=/data:" + filepath.Join(dir, "shared")}, output: `0`},
		{name: "env grant", args: []string{mod("wasi.wasm"), "env", "--grant", "env=A=1", "--grant", "env=B=2"}, output: `2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := flowhost(t, append([]string{"call", "--json"}, c.args...)...)
			var out callOut
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s\n%s", err, r.stdout, r.stderr)
			}
			if r.code != c.code {
				t.Fatalf("exit %d, want %d: %s %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.code == 0 && (out.Status != "succeeded" || string(out.Output) != c.output) {
				t.Fatalf("got %s, want output %s", r.stdout, c.output)
			}
			if c.code != 0 && (out.Status != "failed" || out.Kind != c.kind || !strings.Contains(out.Error, c.errHas) || string(out.Output) != "null") {
				t.Fatalf("got %s, want a %q failure with %q", r.stdout, c.kind, c.errHas)
			}
		})
	}
	// The same call burns the same fuel, whatever ran before.
	var fuel []uint64
	for range 2 {
		r := flowhost(t, "call", "--json", "--stats", stats, "describe", "-i", "values=[3,1,4,1,5]")
		var out callOut
		if json.Unmarshal([]byte(r.stdout), &out); out.Stats == nil || out.Stats.Fuel == 0 || out.Stats.Memory == 0 || out.Stats.Output != len(out.Output) {
			t.Fatalf("stats: %s", r.stdout)
		}
		fuel = append(fuel, out.Stats.Fuel)
	}
	if fuel[0] != fuel[1] {
		t.Fatalf("the same call burned %d then %d units", fuel[0], fuel[1])
	}
	// Without --json: the output on stdout, the stats on stderr.
	if r := flowhost(t, "call", "--stats", stats, "square", "-i", "x=3"); r.code != 0 || strings.TrimSpace(r.stdout) != "9" || !strings.Contains(r.stderr, "fuel ") {
		t.Fatalf("human output: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestCallInvalid: a call that cannot start exits 2 with an error that
// names the culprit.
func TestCallInvalid(t *testing.T) {
	stats := "plugins/examples/stats-c/stats.wasm"
	for _, c := range []struct {
		args   []string
		errHas string
	}{
		{[]string{stats, "squar"}, `has no task "squar"; did you mean "square"?`},
		{[]string{stats, "square", "-i", "y=1"}, `the task has no input "y" (inputs: x)`},
		{[]string{stats, "square"}, `missing required input "x"`},
		{[]string{stats, "square", "-i", "x=[1"}, "x"},
		{[]string{"missing.wasm", "square"}, "missing.wasm"},
		{[]string{stats, "square", "-i", "x=1", "--grant", "file=/d:."}, `unknown grant "file"; did you mean "files"?`},
		{[]string{stats, "square", "-i", "x=1", "--grant", "files=/d:/no/such/dir"}, "grant files"},
		{[]string{stats, "square", "-i", "x=1", "--grant", "http=a/b"}, "grant http"},
		{[]string{stats, "square", "-i", "x=1", "--memory", "lots"}, `invalid size "lots"`},
	} {
		r := flowhost(t, append([]string{"call"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.errHas) {
			t.Errorf("call %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.errHas)
		}
	}
}

// TestCallFrom: a failed map element of a run, in-process and on Redis,
// runs again on this machine from what the run recorded (the exact
// module, input and limits) and fails the same way: the same error text,
// the same fuel. The module file is changed after the run, so a call
// that read the flow's plugin again would not fail at all.
func TestCallFrom(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	big := make([]int, 2000)
	for i := range big {
		big[i] = i
	}
	xs, _ := json.Marshal([][]int{{1, 2}, {3}, big, {4, 5}})
	for _, where := range []string{"in-process", "redis"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			stats := filepath.Join(dir, "stats.wasm")
			orig, _ := os.ReadFile("../plugins/examples/stats-c/stats.wasm")
			os.WriteFile(stats, orig, 0o644)
			flow := filepath.Join(dir, "flow.toml")
			os.WriteFile(flow, []byte("[plugins]\nstats = \"stats.wasm\"\n[inputs]\nvalues = "+string(xs)+
				"\n[limits]\nfuel = 1000000\n[[step]]\nmap = \"stats.describe\"\nparam = \"values\"\n[[step]]\ncall = \"stats.sum\"\n"), 0o644)
			var args []string
			if where == "redis" {
				args = []string{"--broker", srv.URL()}
			}
			out, r := runJSONOut(t, append(args, flow)...)
			want := "stats.describe: fuel exhausted: the call used up its budget of 1000000 units"
			if out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "element 2: "+want) {
				t.Fatalf("the run: %s %s", r.stdout, r.stderr)
			}
			// The plugin's file is another module now.
			os.WriteFile(stats, testmod.WAT(t, "../bench/testdata/one.wat"), 0o644)
			for _, elem := range []string{"2", ""} { // the step's one failed call: its element may be left out
				r := flowhost(t, append([]string{"call", "--json", "--stats", "--from", out.RunID, "1", elem}, args...)...)
				var c callOut
				if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || r.code != 1 || c.Status != "failed" || c.Error != want ||
					c.Kind != "fuel exhausted" || c.Stats == nil || c.Stats.Fuel != 1000000 {
					t.Fatalf("call --from %s 1 %s: exit %d %s %s", out.RunID, elem, r.code, r.stdout, r.stderr)
				}
			}
			// A larger budget on the command line: the call succeeds.
			r = flowhost(t, append([]string{"call", "--from", out.RunID, "1", "2", "--fuel", "100000000"}, args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, `"count": 2000`) || !strings.Contains(r.stderr, "element 2 of") {
				t.Fatalf("with more fuel: exit %d %s %s", r.code, r.stdout, r.stderr)
			}
			// What was not recorded is refused, naming what was.
			for _, c := range [][]string{{"1", "1"}, {"2"}, {"3"}} {
				r := flowhost(t, append(append([]string{"call", "--from", out.RunID}, c...), args...)...)
				if r.code != 2 || !strings.Contains(r.stderr, "its failed calls: step 1 element 2") {
					t.Errorf("call --from %v: exit %d %s", c, r.code, r.stderr)
				}
			}
		})
	}
	if r := flowhost(t, "call", "--from", "1a2b3c", "1"); r.code != 2 || !strings.Contains(r.stderr, "no in-process run 1a2b3c") {
		t.Fatalf("an unknown run: %d %s", r.code, r.stderr)
	}
}
