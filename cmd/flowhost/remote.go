package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

// brokerFlags are shared by the commands that talk to a broker.
type brokerFlags struct {
	Broker string `required:"" env:"FLOWHOST_BROKER" placeholder:"URL" help:"The broker: redis://[user:pass@]host:port/db, rediss:// (TLS), or redis+cluster://host:port[,host:port…] (a Redis Cluster)."`
	Tenant string `default:"default" help:"The tenant whose runs to read."`
}

// connect dials the broker; the context ends on SIGINT or SIGTERM, and
// done releases both.
func (b *brokerFlags) connect() (context.Context, *redis.Client, func(), error) {
	if err := policy.CheckTenant(b.Tenant); err != nil {
		return nil, nil, nil, usageErr(fmt.Errorf("--tenant: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c, err := redis.Dial(ctx, b.Broker)
	if err != nil {
		stop()
		return nil, nil, nil, usageErr(err)
	}
	return ctx, c, func() { c.Close(); stop() }, nil
}

type workerCmd struct {
	Broker        string         `required:"" env:"FLOWHOST_BROKER" placeholder:"URL" help:"The broker: redis://[user:pass@]host:port/db, rediss:// (TLS), or redis+cluster://host:port[,host:port…] (a Redis Cluster)."`
	Concurrency   workersFlag    `default:"0" help:"Batches run at once: 1 to 1024 (default 0: one per core)."`
	Lease         time.Duration  `default:"5s" help:"How long a task may go without a heartbeat before another worker takes it over: 100ms to 8760h."`
	MaxDeliveries deliveriesFlag `default:"5" help:"A task delivered more often (1 to 1000) goes to the dead-letter stream and fails its run."`
	Drain         time.Duration  `default:"30s" help:"On SIGTERM, how long to let running tasks finish before handing them back (at most 8760h)."`
	Name          string         `help:"The worker's name in the consumer group (default: host-pid-random)."`
	BatchSize     batchFlag      `default:"256" help:"Most calls of a map or filter carried by one message: 1 to 10000."`
	MetricsAddr   string         `name:"metrics-addr" placeholder:"HOST:PORT" help:"Serve Prometheus metrics at /metrics and a health check at /healthz."`
	Config        string         `placeholder:"worker.toml" help:"Tenants this worker serves and their maxima (concurrent calls, timeout, memory, max_output, fuel). Without it, every tenant is served with no maxima."`
	NoCache       bool           `name:"no-cache" help:"Neither read nor write the tenants' result caches (docs/caching.md)."`
	CacheTTL      time.Duration  `name:"cache-ttl" default:"168h" help:"How long a cached result lives after it was stored: 1s to 8760h."`
}

func (c *workerCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tenants *tenant.Config
	if c.Config != "" {
		var err error
		if tenants, err = tenant.Load(c.Config); err != nil {
			return usageErr(err)
		}
	}
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	logger := g.newLogger(slog.LevelInfo)
	eng, err := host.New(context.Background(), host.Config{Logger: logger, CacheDir: g.cacheDir})
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	n := int(c.Concurrency)
	if n <= 0 {
		n = defaultWorkers()
	}
	var m *metrics.Metrics
	if c.MetricsAddr != "" {
		m = metrics.New(eng)
		addr, err := metrics.Serve(ctx, c.MetricsAddr, m)
		if err != nil {
			return usageErr(fmt.Errorf("--metrics-addr: %w", err))
		}
		logger.Info("serving metrics", "url", "http://"+addr+"/metrics")
	}
	if c.NoCache {
		c.CacheTTL = -1
	}
	w := redis.NewWorker(client, redis.WorkerConfig{Concurrency: n, Lease: c.Lease, MaxDeliveries: int64(c.MaxDeliveries),
		Drain: c.Drain, Engine: eng, Logger: logger, Name: c.Name, BatchSize: int(c.BatchSize), Metrics: m, Tenants: tenants, CacheTTL: c.CacheTTL})
	logger.Info("worker started", "broker", redactURL(c.Broker), "concurrency", n)
	err = w.Run(ctx)
	logger.Info("worker stopped")
	return err
}

type statusCmd struct {
	RunID string `arg:"" name:"RUN_ID" help:"The run."`
	brokerFlags
	JSON  bool `help:"Print the status as JSON."`
	Watch bool `short:"w" help:"Print the status again every second until the run ends."`
}

func (c *statusCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	for {
		if err := printStatus(ctx, g, client, c.Tenant, c.RunID, c.JSON); err != nil || !c.Watch {
			return err
		}
		if st, err := client.Status(ctx, c.Tenant, c.RunID); err != nil || st.Ended() {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		if !c.JSON {
			fmt.Fprintln(g.stdout)
		}
	}
}

type eventsCmd struct {
	RunID string `arg:"" name:"RUN_ID" help:"The run."`
	brokerFlags
}

func (c *eventsCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	err = client.Events(ctx, c.Tenant, c.RunID, func(e redis.Event) error { return enc.Encode(e) })
	if errors.Is(err, redis.ErrNoRun) {
		return usageErr(err)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func printStatus(ctx context.Context, g *globals, client *redis.Client, tenant, id string, asJSON bool) error {
	st, err := client.Run(ctx, tenant, id)
	if errors.Is(err, redis.ErrNoRun) {
		return usageErr(err)
	}
	if err != nil {
		return err
	}
	steps := st.Steps
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(st)
	}
	fmt.Fprintf(g.stdout, "run %s (%s, tenant %s): %s\n", st.RunID, st.Name, st.Tenant, st.Status)
	if st.Parent != "" {
		fmt.Fprintf(g.stdout, "a sub-flow of run %s, step %d\n", st.Parent, st.ParentStep)
	}
	if st.Schedule != "" {
		fmt.Fprintf(g.stdout, "made by schedule %s, tick %s\n", st.Schedule, dash(st.ScheduledFor))
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tDONE\tSTARTED\tFINISHED")
	for i, s := range steps {
		done := "-"
		if s.Total != nil {
			done = fmt.Sprintf("%d/%d", *s.Done, *s.Total)
			if s.Failed > 0 {
				done += fmt.Sprintf(" (%d failed)", s.Failed)
			}
		}
		status := string(s.Status)
		switch {
		case s.Case != "":
			status += " (case " + s.Case + ")"
		case s.Child != "":
			status += " (run " + s.Child + ")"
		}
		fmt.Fprintf(tw, "%d %s\t%s\t%s\t%s\t%s\n", i+1, s.Name, status, done, dash(s.StartedAt), dash(s.FinishedAt))
	}
	tw.Flush()
	if st.Error != "" {
		fmt.Fprintf(g.stdout, "error: %s\n", st.Error)
	}
	if st.Status == track.Succeeded {
		return writeJSON(g.stdout, st.Result)
	}
	return nil
}

type waitCmd struct {
	RunID string `arg:"" name:"RUN_ID" help:"The run."`
	brokerFlags
	JSON bool `help:"Print {run_id, status, result, error} as JSON."`
}

func (c *waitCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	st, err := client.Wait(ctx, c.Tenant, c.RunID)
	if errors.Is(err, redis.ErrNoRun) {
		return usageErr(err)
	}
	if err != nil {
		return err
	}
	return reportRemote(g, st, c.JSON)
}

// reportRemote prints a finished remote run like a local one.
func reportRemote(g *globals, st *redis.Status, asJSON bool) error {
	if asJSON {
		out := runJSON{RunID: st.RunID, Status: string(st.Status), Result: st.Result}
		if st.Status != track.Succeeded {
			out.Status, out.Result, out.Error = string(track.Failed), json.RawMessage("null"), st.Error
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(out)
		if st.Status != track.Succeeded {
			return silent(&exitError{code: exitFailed, err: errors.New(st.Error)})
		}
		return nil
	}
	if st.Status != track.Succeeded {
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s %s: %s", st.RunID, st.Status, st.Error)}
	}
	return writeJSON(g.stdout, st.Result)
}

type runsCmd struct {
	brokerFlags
	Limit  runsLimitFlag `default:"20" help:"How many runs to list: 1 to 1000."`
	Status string        `enum:",pending,running,succeeded,failed,cancelled" default:"" help:"Only runs with this status (pending, running, succeeded, failed, cancelled)."`
	JSON   bool          `help:"Print the runs as JSON."`
}

func (c *runsCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	limit := int64(c.Limit)
	if c.Status != "" {
		limit *= 10 // filter among more of the newest runs
	}
	runs, err := client.Runs(ctx, c.Tenant, limit)
	if err != nil {
		return err
	}
	if c.Status != "" {
		kept := runs[:0]
		for _, r := range runs {
			if string(r.Status) == c.Status && len(kept) < int(c.Limit) {
				kept = append(kept, r)
			}
		}
		runs = kept
	}
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if runs == nil {
			runs = []*redis.Status{}
		}
		return enc.Encode(runs)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tNAME\tSTATUS\tCREATED\tFINISHED")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.RunID, r.Name, r.Status, dash(r.CreatedAt), dash(r.FinishedAt))
	}
	return tw.Flush()
}

type cancelCmd struct {
	RunID string `arg:"" name:"RUN_ID" help:"The run."`
	brokerFlags
}

func (c *cancelCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if _, err := client.Status(ctx, c.Tenant, c.RunID); err != nil {
		if errors.Is(err, redis.ErrNoRun) {
			return usageErr(err)
		}
		return err
	}
	ok, err := client.Cancel(ctx, c.Tenant, c.RunID)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(g.stdout, "run %s had already ended\n", c.RunID)
		return nil
	}
	fmt.Fprintf(g.stdout, "run %s cancelled\n", c.RunID)
	return nil
}

// Help is the worker command's detailed help.
func (c *workerCmd) Help() string {
	return `Examples:
  flowhost worker --broker redis://worker:secret@redis.internal:6379/0
  flowhost worker --broker rediss://redis.internal:6380/0 --concurrency 8 --metrics-addr :9464 --config worker.toml

A worker serves every tenant's stream until SIGINT or SIGTERM, then stops
reading, lets running tasks finish (up to --drain) and hands back the
rest. docs/distributed.md explains delivery and deployment;
docs/security.md the tenant config (worker.toml), whose arrays nest at
most 64 levels deep and whose durations are at most 8760h; docs/flows.md
("Limits on input") the range of every flag.`
}
