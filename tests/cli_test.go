// Package tests runs the built flowhost command on real modules and flows
// and checks what a user sees: results, exit codes, JSON shapes, errors.
package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

var (
	bin      string // the flowhost binary under test
	cacheDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowhost-e2e-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "flowhost")
	cacheDir = filepath.Join(dir, "cache")
	build := exec.Command("go", "build", "-o", bin, "../cmd/flowhost")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build flowhost: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// flowhost runs the binary from the repository root.
func flowhost(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cacheDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, "goroutine ") || strings.Contains(s, "panic:") {
			t.Fatalf("flowhost %v printed a Go panic:\n%s", args, s)
		}
	}
	return r
}

type runJSON struct {
	RunID  string          `json:"run_id"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

// runJSONOut runs `flowhost run --json` and decodes stdout, which must be
// exactly one JSON object with exactly the documented keys.
func runJSONOut(t *testing.T, args ...string) (runJSON, result) {
	t.Helper()
	r := flowhost(t, append([]string{"run", "--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", r.stdout)
	}
	for k := range raw {
		switch k {
		case "run_id", "status", "result", "error":
		default:
			t.Fatalf("unexpected key %q in %s", k, r.stdout)
		}
	}
	var out runJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.RunID == "" {
		t.Fatalf("no run_id: %s", r.stdout)
	}
	switch out.Status {
	case "succeeded":
		if out.Error != nil || r.code != 0 {
			t.Fatalf("succeeded with error %v, exit %d", out.Error, r.code)
		}
	case "failed":
		if out.Error == nil || *out.Error == "" || string(out.Result) != "null" || r.code == 0 {
			t.Fatalf("failed run: error %v result %s exit %d", out.Error, out.Result, r.code)
		}
	default:
		t.Fatalf("status %q", out.Status)
	}
	return out, r
}

func TestExampleFlows(t *testing.T) {
	cases := []struct {
		flow string
		args []string
		want string
	}{
		{"flow.toml", nil, `[{"vocab":7,"total":7},["FLOWHOST","WORKFLOWS","SANDBOXED","WEBASSEMBLY","WRITTEN","LANGUAGE","TARGETS"]]`},
		{"examples/flows/numbers.toml", nil, `[220,{"count":5,"mean":44,"stddev":34.59479729670345}]`},
		{"examples/flows/numbers.toml", []string{"--input", "x=[2,3,4]"}, `[20,{"count":2,"mean":10,"stddev":6}]`},
		{"examples/flows/after.toml", nil, `"hello-flowhost"`},
		{"examples/flows/after.toml", []string{"-i", "text=Plain Text Input"}, `"plain-text-input"`},
		{"examples/flows/skip-errors.toml", nil, `[false,false,false]`},
		{"examples/flows/skip-errors.toml", []string{"--input", "flag=[]"}, `[]`},
		{"examples/flows/wordstats.toml", nil, `{"report":"report: 11 words, 82% distinct"}`},
		{"examples/flows/wordstats.toml", []string{"--input", "text=@tests/testdata/text.json"}, `{"report":"report: 6 words, 67% distinct"}`},
		{"examples/flows/outputs.toml", nil, `{"vocab":4,"total":6,"slug":"to-be-or-not-to-be","stddev":2,"mean":5}`},
		{"examples/flows/conditions.toml", nil, `{"count":10,"mean":38.5,"stddev":32.41990129534635}`},
		{"examples/flows/conditions.toml", []string{"--input", "square=false"}, `55`},
		{"examples/flows/conditions.toml", []string{"--input", "x=[1,2]"}, `5`},
		{"examples/flows/scheduled.toml", nil, `{"count":8,"mean":5,"stddev":2}`},
		{"examples/flows/throttled.toml", nil, `385`},
		{"examples/flows/subflow.toml", nil, `true`},
		{"examples/flows/subflow-child.toml", nil, `14`},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.flow)+strings.Join(c.args, "_"), func(t *testing.T) {
			out, r := runJSONOut(t, append(c.args, c.flow)...)
			if out.Status != "succeeded" {
				t.Fatalf("status %s: %s\n%s", out.Status, *out.Error, r.stderr)
			}
			if string(out.Result) != c.want {
				t.Fatalf("result %s\nwant   %s", out.Result, c.want)
			}
		})
	}
}

// writeFlow writes a flow using the test module flaky.wasm into a temp dir.
func writeFlow(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	wasm := testmod.Module(t, "testdata/flaky.wat", "testdata/flaky.json")
	if err := os.WriteFile(filepath.Join(dir, "flaky.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	src := "[plugins]\nflaky = \"flaky.wasm\"\ntext = " + strconvQuote(textkit) + "\n" + body
	path := filepath.Join(dir, "flow.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestFailures(t *testing.T) {
	cases := []struct {
		name, flow string
		code       int
		status     string
		errHas     []string
		stderrHas  string
	}{
		{"task error", "[[step]]\ncall = \"text.fail_if\"\nargs = { flag = true, message = \"it broke\" }\n", 1, "failed",
			[]string{"step 1 (call text.fail_if)", "textkit.fail_if: it broke"}, ""},
		{"retry then succeed", "[[step]]\ncall = \"flaky.flaky\"\nretries = 2\nstate = \"keep\"\n", 0, "succeeded", nil, "retry 1 after: flaky.flaky: flaky: the first call fails"},
		{"no retry", "[[step]]\ncall = \"flaky.flaky\"\n", 1, "failed", []string{"flaky.flaky: flaky: the first call fails"}, ""},
		{"timeout", "[limits]\ntimeout = \"300ms\"\n[[step]]\ncall = \"flaky.spin\"\n", 1, "failed",
			[]string{"step 1 (call flaky.spin)", "timeout: did not finish within 300ms"}, ""},
		{"step timeout wins", "[limits]\ntimeout = \"30s\"\n[[step]]\ncall = \"flaky.spin\"\ntimeout = \"200ms\"\n", 1, "failed",
			[]string{"timeout: did not finish within 200ms"}, ""},
		{"map element failure", "[inputs]\nflag = [false, false, true]\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\n", 1, "failed",
			[]string{"step 1 (map text.fail_if), element 2", "fail_if: flag is true"}, ""},
		{"not an array", "[inputs]\nflag = 3\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\n", 1, "failed",
			[]string{`map the flow input "flag" must be a JSON array, not 3`}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, r := runJSONOut(t, writeFlow(t, c.flow))
			if out.Status != c.status || r.code != c.code {
				t.Fatalf("status %s exit %d, want %s %d: %s", out.Status, r.code, c.status, c.code, r.stdout)
			}
			for _, s := range c.errHas {
				if !strings.Contains(*out.Error, s) {
					t.Errorf("error %q lacks %q", *out.Error, s)
				}
			}
			if !strings.Contains(r.stderr, c.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", c.stderrHas, r.stderr)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		name string
		args []string
		has  string
	}{
		{"unknown key", []string{"run", writeFlow(t, "[[step]]\ncal = \"text.split\"\n")}, `flow.toml:5:1: unknown key "cal" in a [[step]]; did you mean "call"?`},
		{"unknown task", []string{"run", writeFlow(t, "[inputs]\ntext = \"x\"\n[[step]]\ncall = \"text.splt\"\n")}, `flow.toml:7:1: step 1: "text.splt": module textkit (text) has no task "splt"; did you mean "split"?`},
		{"bad param", []string{"run", writeFlow(t, "[inputs]\ntext = \"a b\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nmap = \"text.upper\"\nparam = \"txt\"\n")}, `flow.toml:10:1: step 2: param "txt" is not an input of text.upper`},
		{"no steps", []string{"graph", "--format", "dot", writeFlow(t, "")}, "no [[step]]"},
		{"bad input flag", []string{"run", "--input", "novalue", "flow.toml"}, `--input "novalue": write NAME=JSON`},
		{"missing flow", []string{"run", "nope.toml"}, "nope.toml: no such file or directory"},
		{"bad module", []string{"inspect", "README.md"}, "not a WebAssembly module"},
		{"pinned module changed", []string{"run", pinned(t)}, "but the flow pins"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := flowhost(t, c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, c.has) {
				t.Fatalf("stderr %q lacks %q", r.stderr, c.has)
			}
		})
	}
	// With --json an invalid flow still prints one JSON object, and exits 2.
	out, r := runJSONOut(t, writeFlow(t, "[[step]]\ncal = \"text.split\"\n"))
	if out.Status != "failed" || r.code != 2 || !strings.Contains(*out.Error, `unknown key "cal"`) {
		t.Fatalf("status %s exit %d error %v", out.Status, r.code, out.Error)
	}
}

// pinned writes a flow that pins textkit to a sha256 it does not have.
func pinned(t *testing.T) string {
	dir := t.TempDir()
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	src := "[plugins]\ntext = { path = " + strconvQuote(textkit) + ", sha256 = \"" + strings.Repeat("ab", 32) + "\" }\n" +
		"[inputs]\ntext = \"x\"\n[[step]]\ncall = \"text.split\"\n"
	p := filepath.Join(dir, "flow.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGraph(t *testing.T) {
	r := flowhost(t, "graph", "examples/flows/wordstats.toml")
	if r.code != 0 || !strings.Contains(r.stdout, "digraph") || !strings.Contains(r.stdout, `label="word_count"`) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = flowhost(t, "graph", "--format", "mermaid", "flow.toml")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "flowchart LR") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The workflow controls, drawn.
	for _, c := range []struct {
		flow string
		want []string
	}{
		{"examples/flows/conditions.toml", []string{`s1_0["map stats.square [each] [when inputs.square]"]`, `s2{"route"}`,
			`s2 -->|"large: result.exists(v, v > 50)"| s3_0`, `s2 -->|"small"| s4_0`, `s2 --> result`}},
		{"examples/flows/subflow.toml", []string{`s2[["flow sum-of-squares (subflow-child.toml)"]]`, `s1_0 --> s2`, `s2 -->|"x"| s3_0`}},
		{"examples/flows/throttled.toml", []string{`[≤2 per args.x % 2] [20/s]`}},
		{"examples/flows/scheduled.toml", []string{`trigger(["schedule: cron */15 * * * * (Europe/Paris)"])`, `trigger --> s1_0`}},
	} {
		r := flowhost(t, "graph", "--format", "mermaid", c.flow)
		for _, w := range c.want {
			if r.code != 0 || !strings.Contains(r.stdout, w) {
				t.Errorf("%s: exit %d, the graph lacks %s:\n%s%s", c.flow, r.code, w, r.stdout, r.stderr)
			}
		}
	}
}

func TestHumanOutput(t *testing.T) {
	r := flowhost(t, "run", "flow.toml")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the result JSON: %v\n%s", err, r.stdout)
	}
	for _, s := range []string{"[2/4] filter text.is_long: started, 14 elements", "STEP", "4 profile", "succeeded in"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

// TestGrants runs a flow whose [grants] give its task a directory and an
// environment variable; without them the same task sees neither.
func TestGrants(t *testing.T) {
	dir := t.TempDir()
	wasm := testmod.Module(t, "../host/testdata/wasi_read.wat", "../host/testdata/wasi_read.json")
	os.WriteFile(filepath.Join(dir, "wasi.wasm"), wasm, 0o644)
	os.MkdirAll(filepath.Join(dir, "shared", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "shared", "etc", "passwd"), []byte("x"), 0o644)
	for _, c := range []struct{ grants, task, want string }{
		{"[grants]\nfiles = { \"/data\" = \"shared\" }\n", "read", "0"},
		{"", "read", "4"}, // ENOENT: nothing is there
		{"[grants]\nenv = { A = \"1\", B = \"2\", C = \"3\" }\n", "env", "3"},
		{"", "env", "0"},
	} {
		flow := filepath.Join(dir, "flow.toml")
		os.WriteFile(flow, []byte("[plugins]\nw = \"wasi.wasm\"\n"+c.grants+"[[step]]\ncall = \"w."+c.task+"\"\n"), 0o644)
		out, r := runJSONOut(t, flow)
		if out.Status != "succeeded" || string(out.Result) != c.want {
			t.Errorf("%s with %q: %s %s; want %s", c.task, c.grants, r.stdout, r.stderr, c.want)
		}
	}
	flow := filepath.Join(dir, "flow.toml")
	os.WriteFile(flow, []byte("[plugins]\nw = \"wasi.wasm\"\n[grants]\nfiles = { \"/data\" = \"missing\" }\n[[step]]\ncall = \"w.read\"\n"), 0o644)
	if r := flowhost(t, "run", flow); r.code != 2 || !strings.Contains(r.stderr, "grant files") {
		t.Fatalf("missing granted dir: %d %s", r.code, r.stderr)
	}
}

// TestRunMetrics: an in-process run serves its metrics while it runs.
func TestRunMetrics(t *testing.T) {
	flow := writeFlow(t, "[[step]]\ncall = \"flaky.spin\"\ntimeout = \"2s\"\n")
	p := start(t, "run", "--metrics-addr", "127.0.0.1:0", flow)
	re := regexp.MustCompile(`serving metrics at (http://\S+/metrics)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no metrics URL:\n%s", p.output())
	}
	got := scrape(t, url)
	for _, name := range []string{"flowhost_modules_loaded", "flowhost_cache_entries", "flowhost_cache_bytes", "flowhost_cache_evictions_total"} {
		if _, ok := got[name]; !ok {
			t.Fatalf("no %s in the run's metrics", name)
		}
	}
	p.cmd.Wait()
}

// TestFailedStepSummary: the step that failed the run says why on its
// line, and its summary row counts the call that failed it.
func TestFailedStepSummary(t *testing.T) {
	r := flowhost(t, "run", "examples/flows/numbers.toml", "--input", `x=[1,2,"a"]`)
	if r.code != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, re := range []string{
		`filter stats\.is_even: FAILED in [0-9.]+[µm]?s: element 2: stats\.is_even: bad input: input "x" must be an integer, not "a"`,
		`(?m)^1 filter stats\.is_even\s+3\s+0\s+1\s+0\s`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("stderr does not match %s:\n%s", re, r.stderr)
		}
	}
}

// TestGrantsOnWorkers: a relative files grant names the folder beside the
// flow, for a worker started anywhere, because it is resolved when the
// run is submitted.
func TestGrantsOnWorkers(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wasi.wasm"), testmod.Module(t, "../host/testdata/wasi_read.wat", "../host/testdata/wasi_read.json"), 0o644)
	os.MkdirAll(filepath.Join(dir, "shared", "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "shared", "etc", "passwd"), []byte("x"), 0o644)
	flow := filepath.Join(dir, "flow.toml")
	os.WriteFile(flow, []byte("[plugins]\nw = \"wasi.wasm\"\n[grants]\nfiles = { \"/data\" = \"shared\" }\n[[step]]\ncall = \"w.read\"\n"), 0o644)
	srv := redistest.Start(t)
	w := &proc{cmd: exec.Command(bin, "worker", "--broker", srv.URL(), "--name", "elsewhere")}
	w.cmd.Dir = t.TempDir() // not the flow's folder, not the submitter's
	w.cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cacheDir)
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	root, _ := filepath.Abs("..") // where the submitter runs
	rel, err := filepath.Rel(root, flow)
	if err != nil {
		t.Fatal(err)
	}
	out, r := runJSONOut(t, "--broker", srv.URL(), rel) // a relative flow path, so a relative grant
	if out.Status != "succeeded" || string(out.Result) != "0" {
		t.Fatalf("on a worker elsewhere: %s %s\n%s", r.stdout, r.stderr, w.output())
	}
	// A worker that does not have the granted folder fails the run, naming
	// the grant and itself.
	w.cmd.Process.Kill()
	w.cmd.Wait()
	id := submit(t, srv, flow)
	if err := os.RemoveAll(filepath.Join(dir, "shared")); err != nil {
		t.Fatal(err)
	}
	worker(t, srv, "without-it")
	r = flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != "failed" || out.Error == nil ||
		!strings.Contains(*out.Error, "worker without-it cannot provide the run's grants: grant files") || !strings.Contains(*out.Error, "shared") {
		t.Fatalf("a worker without the granted folder: %s %s", r.stdout, r.stderr)
	}
}

// TestRunPolicy: an in-process run under a tenant is clamped by the
// tenant's policy, as a worker clamps it.
func TestRunPolicy(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "worker.toml")
	os.WriteFile(policyFile, []byte("[tenants.acme]\nfuel = 1000000\n"), 0o644)
	flow := writeFlow(t, "[limits]\nfuel = 1000000000\n[[step]]\ncall = \"flaky.spin\"\ntimeout = \"20s\"\n")
	out, r := runJSONOut(t, "--tenant", "acme", "--policy", policyFile, flow)
	if r.code != 1 || out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "fuel exhausted: the call used up its budget of 1000000 units") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	// A tenant the config does not serve, and --policy on a broker, are usage errors.
	if r := flowhost(t, "run", "--tenant", "bravo", "--policy", policyFile, flow); r.code != 2 || !strings.Contains(r.stderr, `"bravo" is not among this worker's tenants`) {
		t.Fatalf("unknown tenant: exit %d %s", r.code, r.stderr)
	}
	if r := flowhost(t, "run", "--broker", "redis://127.0.0.1:1/0", "--policy", policyFile, flow); r.code != 2 || !strings.Contains(r.stderr, "--policy applies to in-process runs") {
		t.Fatalf("--policy with --broker: exit %d %s", r.code, r.stderr)
	}
}
