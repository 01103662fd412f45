package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/flowhost/flowhost/broker/inproc"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
)

type runCmd struct {
	Flow    string      `arg:"" name:"FLOW" help:"The flow file (flow.toml)."`
	Input   []string    `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Set a flow input: NAME=JSON, NAME=TEXT or NAME=@PATH (JSON from a file of at most 64 MiB). A value beginning with {, [ or \" must be valid JSON; a number, true, false or null is that value; anything else is a string (quote a string as JSON to be sure). Values nest at most 64 levels. Repeatable."`
	JSON    bool        `help:"Print exactly one JSON object: {run_id, status, result, error}."`
	Workers workersFlag `default:"0" help:"Calls run at once in this process: 1 to 1024 (default 0: one per core)."`
	Quiet   bool        `short:"q" help:"No progress or summary on stderr."`

	Broker    string        `env:"FLOWHOST_BROKER" placeholder:"URL" help:"Run on the workers of this broker (redis://… or rediss://) instead of in this process."`
	Tenant    string        `help:"The tenant to run as (default: the flow's tenant, else \"default\")."`
	Detach    bool          `help:"With --broker: print the run id and return without waiting."`
	ResultTTL time.Duration `name:"result-ttl" default:"24h" help:"With --broker: how long the run's state and result are kept: 1s to 8760h."`

	MetricsAddr string `name:"metrics-addr" placeholder:"HOST:PORT" help:"Serve Prometheus metrics of this in-process run at /metrics (and /healthz) while it runs."`
}

// runJSON is the --json output (SPEC §3).
type runJSON struct {
	RunID  string          `json:"run_id"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error,omitempty"`
}

func (c *runCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runID := runner.NewRunID()
	l, err := loadFlow(ctx, g, c.Flow, c.Input)
	if err != nil {
		if c.JSON {
			c.printJSON(g, runJSON{RunID: runID, Status: "failed", Result: json.RawMessage("null"), Error: err.Error()})
			return silent(err)
		}
		return err
	}
	defer l.engine.Close(context.Background())
	if c.Broker != "" {
		return c.runRemote(ctx, g, l, runID)
	}
	if c.Detach {
		return usageErr(errors.New("--detach needs --broker: an in-process run ends with this process"))
	}

	var m *metrics.Metrics
	if c.MetricsAddr != "" {
		m = metrics.New(l.engine)
		addr, err := metrics.Serve(ctx, c.MetricsAddr, m)
		if err != nil {
			return usageErr(fmt.Errorf("--metrics-addr: %w", err))
		}
		if !c.Quiet {
			fmt.Fprintf(g.stderr, "serving metrics at http://%s/metrics\n", addr)
		}
	}
	b := inproc.New(int(c.Workers), inproc.WithMetrics(m))
	defer b.Close()
	var pr *progress
	var obs runner.Observer
	if !c.Quiet && !c.JSON {
		pr = newProgress(g.stderr, isTerminal(g.stderr))
		obs = pr
	} else if !c.Quiet {
		pr = newProgress(g.stderr, false)
		obs = pr
	}
	tenant := c.Tenant
	if tenant == "" {
		tenant = l.file.Tenant
	}
	if err := policy.CheckTenant(tenant); err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	r := runner.New(runner.Config{Broker: b, Tenant: tenant, Modules: l.modules, Limits: l.file.Limits, Grants: l.file.Grants, Observer: obs})
	start := time.Now()
	var result json.RawMessage
	if l.seq != nil {
		result, err = r.ExecSequential(ctx, runID, l.seq)
	} else {
		result, err = r.ExecDataflow(ctx, runID, l.df)
	}
	if ctx.Err() != nil && err != nil {
		err = errors.Join(errors.New("interrupted"), err)
	}
	if pr != nil {
		pr.Close()
		pr.Summary(runID, time.Since(start), err)
	}
	if c.JSON {
		out := runJSON{RunID: runID, Status: "succeeded", Result: result}
		if err != nil {
			out.Status, out.Result, out.Error = "failed", json.RawMessage("null"), err.Error()
		}
		c.printJSON(g, out)
		if err != nil {
			return silent(&exitError{code: exitFailed, err: err})
		}
		return nil
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	return writeJSON(g.stdout, result)
}

func (c *runCmd) printJSON(g *globals, v runJSON) {
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeJSON prints a JSON value indented, on its own line.
func writeJSON(w interface{ Write([]byte) (int, error) }, v json.RawMessage) error {
	var out []byte
	var buf json.RawMessage
	if err := json.Unmarshal(v, &buf); err == nil {
		if b, err := json.MarshalIndent(buf, "", "  "); err == nil {
			out = b
		}
	}
	if out == nil {
		out = v
	}
	_, err := w.Write(append(out, '\n'))
	return err
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (c *runCmd) runRemote(ctx context.Context, g *globals, l *loaded, runID string) error {
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	tenant := c.Tenant
	if tenant == "" {
		tenant = l.file.Tenant
	}
	if err := policy.CheckTenant(tenant); err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	if err := submitRemote(ctx, client, l, runID, tenant, c.ResultTTL); err != nil {
		return err
	}
	if c.Detach {
		fmt.Fprintln(g.stdout, runID)
		return nil
	}
	if !c.Quiet && !c.JSON {
		fmt.Fprintf(g.stderr, "run %s submitted to %s (tenant %s); waiting (Ctrl-C stops waiting, not the run)\n", runID, redactURL(c.Broker), tenant)
	}
	st, err := client.Wait(ctx, tenant, runID)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("stopped waiting; the run goes on: flowhost wait %s --broker URL --tenant %s", runID, tenant)}
		}
		return err
	}
	return reportRemote(g, st, c.JSON)
}

// Help is the run command's detailed help.
func (c *runCmd) Help() string {
	return `Examples:
  flowhost run flow.toml
  flowhost run examples/flows/numbers.toml --input 'x=[1,2,3,4]'
  flowhost run flow.toml --input text=@article.json --json
  flowhost run --broker redis://localhost:6379/0 --detach flow.toml

Exit codes: 0 the run succeeded; 1 a task failed or the run was
interrupted; 2 the flow, a module or the command line is invalid (nothing
ran). docs/flows.md describes every key of flow.toml.

Limits on input (exit code 2 past them): durations at most 8760h; JSON
values (inputs, args) and flow.toml's arrays and inline tables at most 64
levels deep; --workers at most 1024; an --input file at most 64 MiB.
docs/flows.md ("Limits on input") lists them all.`
}
