package flow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

const plugins = `
[plugins]
text  = "textkit.wasm"
stats = { path = "stats.wasm", sha256 = "9F2C9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c" }
`

func TestParseSequential(t *testing.T) {
	src := `name = "wordstats"
tenant = "acme"
` + plugins + `
[inputs]
text = "the quick brown fox"
n = 3

[limits]
timeout = "5s"
memory = "64MiB"
max_output = 1024
fuel = 50_000_000

[[step]]
call = "text.split"
args = { sep = "," }

[[step]]
map = "stats.square"
retries = 2
timeout = "250ms"
skip_errors = true
max_parallel = 4

[[step]]
group = ["stats.sum", "stats.mean"]
name = "aggregate"
`
	f, err := Parse("dir/flow.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != Sequential || f.Name != "wordstats" || f.Tenant != "acme" {
		t.Fatalf("mode %q name %q tenant %q", f.Mode, f.Name, f.Tenant)
	}
	if p, _ := f.Plugin("stats"); p.Path != "dir/stats.wasm" || p.SHA256 != strings.Repeat("9f2c", 16) {
		t.Fatalf("plugin %+v", p)
	}
	if string(f.Inputs["text"]) != `"the quick brown fox"` || string(f.Inputs["n"]) != "3" {
		t.Fatalf("inputs %v", f.Inputs)
	}
	want := pipeline.Limits{Timeout: 5 * time.Second, Memory: 64 << 20, MaxOutput: 1024, Fuel: 50_000_000}
	if f.Limits != want {
		t.Fatalf("limits %+v", f.Limits)
	}
	s := f.Sequential.Steps
	if len(s) != 3 || s[0].Kind != pipeline.Call || string(s[0].Args["sep"]) != `","` {
		t.Fatalf("step 1 %+v", s[0])
	}
	if s[1].Kind != pipeline.Map || s[1].Retries != 2 || s[1].Timeout != 250*time.Millisecond || !s[1].SkipErrors || s[1].MaxParallel != 4 {
		t.Fatalf("step 2 %+v", s[1])
	}
	if s[2].Kind != pipeline.Group || len(s[2].Tasks) != 2 || s[2].Label() != "aggregate" {
		t.Fatalf("step 3 %+v", s[2])
	}
}

func TestParseDataflow(t *testing.T) {
	src := `tasks = ["text.split", "stats.*"]
outputs = ["report"]
` + plugins + `
[task."text.split"]
retries = 3
`
	f, err := Parse("flow.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != Dataflow || f.Name != "flow" || f.Tenant != "default" {
		t.Fatalf("mode %q name %q tenant %q", f.Mode, f.Name, f.Tenant)
	}
	if len(f.Dataflow.Tasks) != 2 || f.Dataflow.Outputs[0] != "report" || f.Dataflow.TaskOptions["text.split"].Retries != 3 {
		t.Fatalf("dataflow %+v", f.Dataflow)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"syntax", plugins + "\n[[step]]\ncall = \"text.split\n", `flow.toml:7:`},
		{"unknown top key", "nmae = \"x\"\n" + plugins + "[[step]]\ncall = \"text.split\"\n", `flow.toml:1:1: unknown key "nmae" at the top level; did you mean "name"?`},
		{"unknown step key", plugins + "\n[[step]]\ncall = \"text.split\"\n\n[[step]]\nmapp = \"stats.square\"\n", `flow.toml:10:1: unknown key "mapp" in a [[step]]; did you mean "map"?`},
		{"unknown limit key", plugins + "[limits]\ntimeuot = \"5s\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:1: unknown key "timeuot" in [limits]; did you mean "timeout"?`},
		{"unknown plugin key", "[plugins]\ntext = { path = \"a.wasm\", sha265 = \"x\" }\n[[step]]\ncall = \"text.split\"\n", `unknown key "sha265" in a plugin table; did you mean "sha256"?`},
		{"bad duration", plugins + "[limits]\ntimeout = \"5\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:`},
		{"bad duration text", plugins + "[limits]\ntimeout = \"5\"\n[[step]]\ncall = \"text.split\"\n", `duration "5" has no unit`},
		{"bad size", plugins + "[limits]\nmemory = \"64 parsecs\"\n[[step]]\ncall = \"text.split\"\n", `invalid size "64 parsecs"`},
		{"bad sha", "[plugins]\ntext = { path = \"a.wasm\", sha256 = \"abc\" }\n[[step]]\ncall = \"text.split\"\n", `flow.toml:2:27: plugin text: sha256 "abc" is not 64 hex digits`},
		{"no plugins", "[[step]]\ncall = \"text.split\"\n", `declares no [plugins]`},
		{"no mode", plugins, `no [[step]] (sequential mode) and no tasks`},
		{"both modes", "tasks = [\"text.split\"]\n" + plugins + "[[step]]\ncall = \"text.split\"\n", `both [[step]] tables and tasks`},
		{"bad mode", "mode = \"sequental\"\n" + plugins + "[[step]]\ncall = \"text.split\"\n", `flow.toml:1:1: mode "sequental" is not "sequential" or "dataflow"; did you mean "sequential"?`},
		{"step without task", plugins + "[[step]]\nretries = 1\n", `flow.toml:5:1: step 1 has no task`},
		{"two kinds", plugins + "[[step]]\ncall = \"text.split\"\nmap = \"text.split\"\n", `flow.toml:7:1: step 1 has both call and map`},
		{"unknown alias", plugins + "[[step]]\ncall = \"txt.split\"\n", `flow.toml:6:1: "txt.split": no plugin is called "txt"; did you mean "text"?`},
		{"not a ref", plugins + "[[step]]\ncall = \"split\"\n", `"split" is not a task reference`},
		{"glob in step", plugins + "[[step]]\ncall = \"text.*\"\n", `"text.*" is not a task reference`},
		{"skip_errors on call", plugins + "[[step]]\ncall = \"text.split\"\nskip_errors = true\n", `flow.toml:7:1: step 1: skip_errors applies to map and filter steps only`},
		{"negative retries", plugins + "[[step]]\ncall = \"text.split\"\nretries = -1\n", `flow.toml:7:1: retries must be between 0 and 100`},
		{"wrong type", plugins + "[[step]]\ncall = 3\n", `flow.toml:6:1: "call" must be a string, not an integer`},
		{"top key after table", plugins + "tasks = [\"text.split\"]\n", `flow.toml:5:1: "tasks" is inside [plugins]: in TOML, top-level keys such as "tasks" must come before the first [table]`},
		{"empty group", plugins + "[[step]]\ngroup = []\n", `group = [] lists no task`},
		{"outputs in sequential", "outputs = [\"x\"]\n" + plugins + "[[step]]\ncall = \"text.split\"\n", `outputs = [...] belongs to dataflow mode`},
		{"5,000,000-deep array", plugins + "[inputs]\nx = " + strings.Repeat("[", 5_000_000) + strings.Repeat("]", 5_000_000) + "\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:69: arrays and inline tables nested more than 64 deep: at most 64 levels are allowed`},
		{"million-part key", plugins + "[inputs]\nx" + strings.Repeat(".a", 1_000_000) + " = 1\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:1: a key or table name of more than 64 dotted parts`},
		// Table headers and dotted keys nest too: 1 + 63 + 1 levels.
		{"deep input", plugins + "[inputs.x]\n" + "k" + strings.Repeat(".k", 63) + " = [1]\n[[step]]\ncall = \"text.split\"\n", `flow.toml:5:1: input x: nested more than 64 levels deep: at most 64 levels of arrays and objects are allowed`},
		{"deep arg", plugins + "[[step]]\ncall = \"text.split\"\n[step.args.x]\n" + "k" + strings.Repeat(".k", 63) + " = [1]\n", `flow.toml:5:1: arg x: nested more than 64 levels deep`},
		{"timeout too long", plugins + "[limits]\ntimeout = \"2100000h\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:12: duration "2100000h" is too long: at most 8760h (365 days)`},
		{"step timeout too long", plugins + "[[step]]\ncall = \"text.split\"\ntimeout = \"8761h\"\n", `flow.toml:7:12: duration "8761h" is too long`},
		{"task timeout past int64", "tasks = [\"text.split\"]\n" + plugins + "[task.\"text.split\"]\ntimeout = \"3000000h\"\n", `flow.toml:7:12: duration "3000000h" is too long`},
		{"priority out of range", "priority = 6\n" + plugins + "[[step]]\ncall = \"text.split\"\n", `flow.toml:1:1: priority = 6: between 1 (lowest) and 5 (highest); 3 is the default`},
		{"unknown case key", plugins + "[[step]]\nbranch = [{ case = \"a\", wen = \"true\" }]\n", `flow.toml:6:1: unknown key "wen" in a branch's case; did you mean "when"?`},
		{"bad cron", plugins + "[schedule]\ncron = \"61 * * * *\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:1: [schedule]: cron "61 * * * *": end of range (61) above maximum (59)`},
		{"bad timezone", plugins + "[schedule]\ncron = \"* * * * *\"\ntimezone = \"Nowhere\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:7:1: [schedule]: timezone "Nowhere"`},
		{"unknown schedule key", plugins + "[schedule]\ncorn = \"* * * * *\"\n[[step]]\ncall = \"text.split\"\n", `flow.toml:6:1: unknown key "corn" in [schedule]; did you mean "cron"?`},
		{"concurrency without key", plugins + "[[step]]\nmap = \"text.split\"\nconcurrency = { limit = 2 }\n", `flow.toml:7:1: concurrency needs a key`},
		{"unknown concurrency key", plugins + "[[step]]\nmap = \"text.split\"\nconcurrency = { key = \"1\", limt = 2 }\n", `unknown key "limt" in concurrency; did you mean "limit"?`},
		{"rate not a string", plugins + "[[step]]\nmap = \"text.split\"\nrate = 5\n", `flow.toml:7:1: rate is "100/s", or { limit = "100/s", key = "…" } for one rate per key; not an integer`},
		{"max_parallel too large", plugins + "[[step]]\nmap = \"text.split\"\nmax_parallel = 4611686018427387904\n", `flow.toml:7:1: max_parallel must be between 1 and 65536, not 4611686018427387904`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("flow.toml", []byte(c.src))
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %.300q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestLocatorInline(t *testing.T) {
	l := newLocator("[plugins]\nstats = { path = \"s.wasm\", sha256 = \"x\" }\n")
	if p := l.find([]string{"plugins", "stats", "sha256"}, -1); p != (Position{2, 28}) {
		t.Fatalf("pos %+v", p)
	}
}

func TestParseGrants(t *testing.T) {
	src := plugins + `[grants]
files = { "/data" = "data", "/abs" = "/srv/x" }
env = { REGION = "eu" }
http = ["api.example.com", "*.example.org"]
clock = true
[[step]]
call = "text.split"
`
	f, err := Parse("dir/flow.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := f.Grants
	wd, _ := os.Getwd()
	// Relative to the flow's folder, made absolute at once: a worker
	// elsewhere must find the same folder.
	if g.Files["/data"] != filepath.Join(wd, "dir/data") || g.Files["/abs"] != "/srv/x" || g.Env["REGION"] != "eu" || len(g.HTTP) != 2 || !g.Clock || g.Random {
		t.Fatalf("grants %+v", g)
	}
	for _, c := range []struct{ src, want string }{
		{"[grants]\nfiles = { \"data\" = \"data\" }\n", `guest path "data" must be absolute`},
		{"[grants]\nhttp = [\"https://x.com\"]\n", `"https://x.com" is not a host name`},
		{"[grants]\nnetwork = true\n", `unknown key "network" in [grants]`},
	} {
		_, err := Parse("flow.toml", []byte(plugins+c.src+"[[step]]\ncall = \"text.split\"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want %q", c.src, err, c.want)
		}
	}
}
