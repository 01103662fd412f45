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

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/server"
	tenantcfg "github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

type runCmd struct {
	Flow    string      `arg:"" name:"FLOW" help:"The flow file (flow.toml)."`
	Input   []string    `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Set a flow input: NAME=JSON, NAME=TEXT or NAME=@PATH (JSON from a file of at most 64 MiB). A value beginning with {, [ or \" must be valid JSON; a number, true, false or null is that value; anything else is a string (quote a string as JSON to be sure). Values nest at most 64 levels. Repeatable."`
	JSON    bool        `help:"Print exactly one JSON object: {run_id, status, result, error}."`
	Workers workersFlag `default:"0" help:"Calls run at once in this process: 1 to 1024 (default 0: one per core)."`
	Quiet   bool        `short:"q" help:"No progress or summary on stderr."`

	Broker    string        `env:"FLOWHOST_BROKER" placeholder:"URL" help:"Run on the workers of this broker (redis://…, rediss://… or redis+cluster://…) instead of in this process."`
	Tenant    string        `help:"The tenant to run as (default: the flow's tenant, else \"default\")."`
	Priority  int           `placeholder:"1-5" help:"The run's priority, 1 (lowest) to 5 (highest): among the tenant's own work, a higher priority's is taken first (default: the flow's priority = …, else 3). It never puts one tenant's work before another's."`
	Detach    bool          `help:"With --broker: print the run id and return without waiting."`
	ResultTTL time.Duration `name:"result-ttl" default:"24h" help:"With --broker: how long the run's state and result are kept: 1s to 8760h."`

	MetricsAddr string `name:"metrics-addr" placeholder:"HOST:PORT" help:"Serve Prometheus metrics of this in-process run at /metrics (and /healthz) while it runs."`
	Policy      string `placeholder:"worker.toml" help:"Apply the tenant's policy from this worker config to an in-process run, exactly as a worker would: its maxima clamp every call's limits, and the flow's grants must be allowed."`
	NoCache     bool   `name:"no-cache" help:"Neither read nor write the result cache (docs/caching.md)."`
	Serve       string `placeholder:"HOST:PORT" help:"Serve the dashboard and the API of this in-process run at a loopback address while it runs (docs/dashboard.md)."`
	Hold        bool   `help:"With --serve: keep serving after the run ends, until Ctrl-C."`

	rerunOf string // set by rerun
	runFrom int
}

// runJSON is the --json output (README, "Commands").
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
	fail := func(err error) error {
		if c.JSON {
			c.printJSON(g, runJSON{RunID: runID, Status: string(track.Failed), Result: json.RawMessage("null"), Error: err.Error()})
			return silent(err)
		}
		return err
	}
	if c.Detach && c.Broker == "" {
		return usageErr(errors.New("--detach needs --broker: an in-process run ends with this process"))
	}
	if c.Broker != "" {
		eng, err := g.newEngine(ctx)
		if err != nil {
			return err
		}
		defer eng.Close(context.Background())
		f, err := g.loadFlow(ctx, eng, c.Flow, c.Input)
		if err != nil {
			return fail(err)
		}
		return c.runRemote(ctx, g, f, runID)
	}
	h, err := flowhost.New(ctx, flowhost.Options{Workers: int(c.Workers), CacheDir: g.cacheDir, Logger: g.logger, Metrics: c.MetricsAddr != ""})
	if err != nil {
		return err
	}
	defer h.Close()
	f, err := g.loadFlow(ctx, h.Engine(), c.Flow, c.Input)
	if err != nil {
		return fail(err)
	}
	tenant, err := f.Tenant(c.Tenant)
	if err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	if _, err := f.Priority(c.Priority); err != nil {
		return usageErr(fmt.Errorf("--priority: %w", err))
	}
	var pol *policy.Tenant
	if c.Policy != "" {
		cfg, err := tenantcfg.Load(c.Policy)
		if err != nil {
			return usageErr(fmt.Errorf("--policy: %w", err))
		}
		p, err := cfg.Policy(tenant)
		if err != nil {
			return usageErr(fmt.Errorf("--policy: %w", err))
		}
		pol = &p
	}
	if c.MetricsAddr != "" {
		addr, err := metrics.Serve(ctx, c.MetricsAddr, h.Metrics())
		if err != nil {
			return usageErr(fmt.Errorf("--metrics-addr: %w", err))
		}
		if !c.Quiet {
			fmt.Fprintf(g.stderr, "serving metrics at http://%s/metrics\n", addr)
		}
	}
	var pr *progress
	if !c.Quiet {
		pr = newProgress(g.stderr, !c.JSON && isTerminal(g.stderr))
	}
	var obs track.Observer
	if pr != nil {
		obs = pr
	}
	var store cache.Store
	if !c.NoCache {
		d, err := g.resultCache()
		if err != nil {
			return err
		}
		if d != nil {
			store = d
			defer d.Close() // writes what it buffers
			h.Metrics().WatchCache(d)
		}
	}
	if c.rerunOf != "" && !c.Quiet && !c.JSON {
		fmt.Fprintf(g.stderr, "run %s re-runs %s\n", runID, c.rerunOf)
	}
	runCtx := ctx
	var local *server.Local
	if c.Serve != "" {
		local = server.NewLocal(h, tenant)
		url, err := serveLocal(ctx, g, c.Serve, local)
		if err != nil {
			return usageErr(fmt.Errorf("--serve: %w", err))
		}
		if !c.Quiet {
			fmt.Fprintf(g.stderr, "the dashboard of run %s: %s/#/runs/%s\n", runID, url, runID)
		}
		obs = track.Observers(obs, local)
		var cancel context.CancelFunc
		runCtx, cancel = context.WithCancel(ctx)
		defer cancel()
		local.OnCancel(runID, cancel)
		runCtx = host.WithLogSink(runCtx, local.LogSink(runID))
		if c.Hold {
			defer func() {
				fmt.Fprintf(g.stderr, "the run is over; the dashboard stays up at %s (Ctrl-C ends)\n", url)
				<-ctx.Done()
			}()
		}
	} else if c.Hold {
		return usageErr(errors.New("--hold goes with --serve"))
	}
	start := time.Now()
	var failed failedCalls
	opts := flowhost.ExecOptions{RunID: runID, Tenant: tenant, Policy: pol, Observer: obs, Cache: store, RunFrom: c.runFrom, OnFailedCall: failed.add, Priority: c.Priority}
	if local != nil {
		opts.OnBatch = local.Batch
	}
	_, result, err := h.Exec(runCtx, f, opts)
	rec := runRecord{RunID: runID, Flow: c.Flow, Inputs: c.Input, Tenant: c.Tenant, Policy: c.Policy, Status: string(track.Succeeded), RerunOf: c.rerunOf,
		FailedCalls: failed.list()}
	if err != nil {
		rec.Status = string(track.Failed)
	}
	g.keepModules(f, rec.FailedCalls)
	g.record(rec)
	if ctx.Err() != nil && err != nil {
		err = errors.Join(errors.New("interrupted"), err)
	}
	if pr != nil {
		pr.Close()
		pr.Summary(runID, time.Since(start), err)
	}
	if c.JSON {
		out := runJSON{RunID: runID, Status: string(track.Succeeded), Result: result}
		if err != nil {
			out.Status, out.Result, out.Error = string(track.Failed), json.RawMessage("null"), err.Error()
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

func (c *runCmd) runRemote(ctx context.Context, g *globals, f *flowhost.Flow, runID string) error {
	if c.Policy != "" {
		return usageErr(errors.New("--policy applies to in-process runs: on a broker, each worker applies its own worker.toml"))
	}
	tenant, err := f.Tenant(c.Tenant)
	if err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	if _, err := f.Priority(c.Priority); err != nil {
		return usageErr(fmt.Errorf("--priority: %w", err))
	}
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	if c.NoCache {
		return usageErr(errors.New("--no-cache applies to in-process runs: on a broker, run the workers with --no-cache"))
	}
	if err := f.Submit(ctx, client, runID, tenant, c.ResultTTL, flowhost.SubmitOptions{Priority: c.Priority}); err != nil {
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
