package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/flowhost/flowhost/flow"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/text"
	"github.com/flowhost/flowhost/policy"
)

type callCmd struct {
	Module string   `arg:"" name:"MODULE.wasm" help:"The module (with --from: the step of the call to run again, 1-based)."`
	Task   string   `arg:"" optional:"" name:"TASK" help:"The task to call, as the module's manifest names it (with --from: the map, filter or group element, 0-based)."`
	Input  []string `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Set an input of the task: NAME=JSON, NAME=TEXT or NAME=@PATH, read as run --input reads it. Inputs not set take their declared defaults. Repeatable."`
	JSON   bool     `help:"Print exactly one JSON object: {task, status, output, error, kind, stats}."`
	Stats  bool     `help:"Also print what the call took: duration, fuel, peak memory, output size (on stderr, or under \"stats\" with --json)."`

	Timeout   time.Duration `placeholder:"DURATION" help:"Wall-clock limit of the call (default 30s)."`
	Memory    sizeFlag      `placeholder:"SIZE" help:"Guest memory limit, like 64MiB (default 256MiB)."`
	MaxOutput sizeFlag      `name:"max-output" placeholder:"SIZE" help:"Largest output, like 1MiB (default 16MiB)."`
	Fuel      uint64        `placeholder:"UNITS" help:"CPU budget in units of about one instruction (default: none; the timeout still applies)."`
	State     string        `enum:",auto,reset,keep" default:"" help:"Start the call from the guest's state after start-up (reset) or not (keep); auto (the default) lets the host choose per module."`
	Grant     []string      `name:"grant" sep:"none" placeholder:"GRANT" help:"Let the task reach beyond the sandbox, as a flow's [grants] does: files=/guest:HOSTDIR (read-only), env=NAME (this process's value) or env=NAME=VALUE, http=HOST (or *.example.com), private (HTTP to private addresses), clock, random. Repeatable."`

	From   string `placeholder:"RUN_ID" help:"Run again, here, a call that failed in run RUN_ID: the exact module (by sha256), input and limits it ran with; the arguments are then STEP [ELEMENT]. The limits flags override the recorded ones."`
	Broker string `env:"FLOWHOST_BROKER" placeholder:"URL" help:"With --from: the run is this broker's (default: an in-process run of this machine)."`
	Tenant string `default:"default" help:"With --from and --broker: the run's tenant."`
}

// callJSON is call --json's output.
type callJSON struct {
	Task   string          `json:"task"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error,omitempty"`
	Kind   string          `json:"kind,omitempty"`
	Stats  *statsJSON      `json:"stats,omitempty"`
}

type statsJSON struct {
	DurationMS float64 `json:"duration_ms"`
	Fuel       uint64  `json:"fuel"`
	Memory     uint64  `json:"memory_bytes"`
	Output     int     `json:"output_bytes"`
}

func (c *callCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The guest's logs are what a call is tried for: shown from info up.
	g.logger = g.newLogger(slog.LevelInfo)
	if c.From != "" {
		if len(c.Input) > 0 {
			return usageErr(errors.New("--from runs the recorded input: --input does not apply"))
		}
		return c.callFrom(ctx, g)
	}
	if c.Broker != "" {
		return usageErr(errors.New("--broker applies with --from: a call runs in this process"))
	}
	if c.Task == "" {
		return usageErr(errors.New("which task? flowhost call MODULE.wasm TASK (flowhost inspect MODULE.wasm lists them)"))
	}
	lim, err := c.limits(host.DefaultLimits)
	if err != nil {
		return usageErr(err)
	}
	values := map[string]json.RawMessage{}
	for _, kv := range c.Input {
		name, v, err := flow.ParseInput(kv)
		if err != nil {
			return usageErr(err)
		}
		values[name] = v
	}
	eng, err := g.newEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	m, err := eng.LoadFile(ctx, c.Module)
	if err != nil {
		return usageErr(err)
	}
	t, ok := m.Task(c.Task)
	if !ok {
		var names []string
		for _, s := range m.Manifest.Tasks {
			names = append(names, s.Name)
		}
		return usageErr(fmt.Errorf("%s has no task %q%s (tasks: %s)", c.Module, c.Task, text.Suggest(c.Task, names), strings.Join(names, ", ")))
	}
	in, err := t.Input(values)
	if err != nil {
		return usageErr(err)
	}
	ctx = host.WithLogInfo(ctx, "call", c.Task, nil)
	out, st, err := t.CallWithStats(ctx, in, lim)
	return c.report(g, out, st, err)
}

// report prints the call's outcome; a failed call exits 1.
func (c *callCmd) report(g *globals, out []byte, st host.CallStats, err error) error {
	stats := &statsJSON{DurationMS: float64(st.Duration.Microseconds()) / 1000, Fuel: st.Fuel, Memory: st.Memory, Output: st.Output}
	if c.JSON {
		v := callJSON{Task: c.Task, Status: "succeeded", Output: out}
		if c.Stats {
			v.Stats = stats
		}
		if err != nil {
			v.Status, v.Output, v.Error = "failed", json.RawMessage("null"), err.Error()
			if k := host.KindOf(err); k != 0 {
				v.Kind = k.String()
			}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		if err != nil {
			return silent(&exitError{code: exitFailed, err: err})
		}
		return nil
	}
	if c.Stats {
		fmt.Fprintf(g.stderr, "duration %s  fuel %d  memory %s  output %s\n", st.Duration.Round(time.Microsecond), st.Fuel, humanBytes(st.Memory), humanBytes(uint64(st.Output)))
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	return writeJSON(g.stdout, out)
}

// limits are the call's limits: base (the defaults, or a recorded
// call's), with the flags'.
func (c *callCmd) limits(lim host.Limits) (host.Limits, error) {
	if c.Timeout > 0 {
		lim.Timeout = c.Timeout
	}
	if c.Memory > 0 {
		lim.Memory = uint64(c.Memory)
	}
	if c.MaxOutput > 0 {
		lim.MaxOutput = uint64(c.MaxOutput)
	}
	if c.Fuel > 0 {
		lim.Fuel = c.Fuel
	}
	switch c.State {
	case "auto":
		lim.State = policy.StateAuto
	case "":
	default:
		lim.State = c.State
	}
	g, err := parseGrants(c.Grant)
	if err != nil {
		return lim, err
	}
	if !g.Empty() {
		lim.Grants = &g
	}
	if err := host.CheckGrants(lim.Grants); err != nil {
		return lim, fmt.Errorf("grants: %w", err)
	}
	return lim, nil
}

// parseGrants reads --grant values.
func parseGrants(specs []string) (policy.Grants, error) {
	var g policy.Grants
	for _, s := range specs {
		kind, v, _ := strings.Cut(s, "=")
		bad := func(format string, args ...any) error {
			return fmt.Errorf("--grant %s: %s", s, fmt.Sprintf(format, args...))
		}
		switch kind {
		case "files":
			guest, dir, ok := strings.Cut(v, ":")
			if !ok || guest == "" || dir == "" {
				return g, bad("want files=/guest:HOSTDIR, like files=/data:./data")
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return g, bad("%v", err)
			}
			if g.Files == nil {
				g.Files = map[string]string{}
			}
			g.Files[guest] = abs
		case "env":
			name, val, ok := strings.Cut(v, "=")
			if name == "" {
				return g, bad("want env=NAME or env=NAME=VALUE")
			}
			if !ok {
				val, ok = os.LookupEnv(name)
				if !ok {
					return g, bad("%s is not set in this process's environment (give a value: env=%s=VALUE)", name, name)
				}
			}
			if g.Env == nil {
				g.Env = map[string]string{}
			}
			g.Env[name] = val
		case "http":
			if v == "" {
				return g, bad("want http=HOST, like http=api.example.com")
			}
			g.HTTP = append(g.HTTP, v)
		case "private", "clock", "random":
			if v != "" {
				return g, bad("%s takes no value", kind)
			}
			switch kind {
			case "private":
				g.Private = true
			case "clock":
				g.Clock = true
			default:
				g.Random = true
			}
		default:
			return g, bad("unknown grant %q%s (grants: files, env, http, private, clock, random)", kind, text.Suggest(kind, []string{"files", "env", "http", "private", "clock", "random"}))
		}
	}
	return g, nil
}

// Help is the call command's detailed help.
func (c *callCmd) Help() string {
	return `Runs one task of a module, sandboxed exactly as in a flow, and prints
its output: the fastest way to try a task.

Examples:
  flowhost call plugins/examples/stats-c/stats.wasm square --input x=7
  flowhost call stats.wasm describe -i 'values=[1,2,3,4]' --stats
  flowhost call textkit.wasm upper -i text=hello --json
  flowhost call reader.wasm count --grant files=/data:./data
  flowhost call --from 1a231e96241e9093aadd297 2 17 --stats
  flowhost call --from 1a231e96241e9093aadd297 3 --broker redis://localhost:6379/0 --tenant acme

With --from, the call that failed in a run (in-process on this machine,
or on a broker's workers with --broker) runs again here: the exact
module, by sha256, the exact input the task saw, and the limits it had,
with the guest's logs shown. Unless the flow granted the task the world
(real clock or randomness, files, environment, HTTP), a task is a
function of its input, so it fails again the same way, with the same
fuel (--stats). Runs keep their failed calls (at most 100, inputs up to
1 MiB) for as long as their results.

Exit codes: 0 the call succeeded; 1 the task failed (its error names the
class: timeout, fuel, memory, trap, ...); 2 the module, the task, an
input or the command line is invalid (nothing ran). docs/abi.md describes
the task ABI, docs/flows.md the limits and grants.`
}

// sizeFlag is a size in bytes, read as flow.toml reads one ("64MiB").
type sizeFlag uint64

// Decode reads the flag.
func (s *sizeFlag) Decode(ctx *kong.DecodeContext) error {
	t, err := ctx.Scan.PopValue("size")
	if err != nil {
		return err
	}
	n, err := text.ParseSize(fmt.Sprint(t.Value))
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}
