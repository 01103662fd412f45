package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

type scheduleCmd struct {
	Add    scheduleAddCmd    `cmd:"" help:"Store a flow's [schedule] on a broker: its workers fire it, one run per tick however many they are."`
	List   scheduleListCmd   `cmd:"" help:"List a tenant's schedules: when, their last and next tick, their last run."`
	Remove scheduleRemoveCmd `cmd:"" help:"Delete a schedule (its runs are kept)."`
	Run    scheduleRunCmd    `cmd:"" help:"Fire a flow's [schedule] in this process, running the flow here at each tick, until Ctrl-C."`
}

type scheduleAddCmd struct {
	Flow      string        `arg:"" name:"FLOW" help:"The flow file, with a [schedule] table."`
	Input     []string      `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Set a flow input for every run (as run --input). Repeatable."`
	Broker    string        `required:"" env:"FLOWHOST_BROKER" placeholder:"URL" help:"The broker: redis://[user:pass@]host:port/db, rediss:// (TLS), or redis+cluster://host:port[,host:port…] (a Redis Cluster)."`
	Tenant    string        `help:"The tenant the runs run as (default: the flow's tenant, else \"default\")."`
	Name      string        `help:"The schedule's name (default: the flow's name); adding a name again replaces that schedule."`
	Priority  int           `placeholder:"1-5" help:"The runs' priority (default: the flow's, else 3)."`
	ResultTTL time.Duration `name:"result-ttl" default:"24h" help:"How long each run's state and result are kept: 1s to 8760h."`
}

func (c *scheduleAddCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.ResultTTL < time.Second || c.ResultTTL > policy.MaxDuration {
		return usageErr(fmt.Errorf("--result-ttl %s: between 1s and 8760h", c.ResultTTL))
	}
	if c.Name != "" {
		if err := redis.CheckScheduleName(c.Name); err != nil {
			return usageErr(fmt.Errorf("--name: %w", err))
		}
	}
	eng, err := g.newEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	f, err := g.loadFlow(ctx, eng, c.Flow, c.Input)
	if err != nil {
		return err
	}
	if f.File.Schedule == nil {
		return usageErr(fmt.Errorf("%s: %w: add one, for instance [schedule] cron = \"*/5 * * * *\"", c.Flow, flowhost.ErrNoSchedule))
	}
	tenant, err := f.Tenant(c.Tenant)
	if err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	if _, err := f.Priority(c.Priority); err != nil {
		return usageErr(fmt.Errorf("--priority: %w", err))
	}
	name := c.Name
	if name == "" {
		name = f.File.Name
		if err := redis.CheckScheduleName(name); err != nil {
			return usageErr(fmt.Errorf("the flow's name as the schedule's: %w (give --name)", err))
		}
	}
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	if err := f.Schedule(ctx, client, tenant, name, c.ResultTTL, c.Priority); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "schedule %s (tenant %s): %s; next tick %s\n", name, tenant, f.File.Schedule.Describe(),
		f.File.Schedule.Next(time.Now()).Format(time.RFC3339))
	return nil
}

type scheduleListCmd struct {
	brokerFlags
	JSON bool `help:"Print the schedules as JSON."`
}

func (c *scheduleListCmd) Run(g *globals) error {
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	list, err := client.Schedules(ctx, c.Tenant)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tFLOW\tWHEN\tLAST TICK\tNEXT TICK\tLAST RUN")
	for _, s := range list {
		when := s.Schedule
		if s.Error != "" {
			when = "cannot fire: " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, dash(s.Flow), when, dash(s.Last), dash(s.Next), dash(s.LastRun))
	}
	return tw.Flush()
}

type scheduleRemoveCmd struct {
	Name string `arg:"" name:"NAME" help:"The schedule."`
	brokerFlags
}

func (c *scheduleRemoveCmd) Run(g *globals) error {
	if err := redis.CheckScheduleName(c.Name); err != nil {
		return usageErr(err)
	}
	ctx, client, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	ok, err := client.RemoveSchedule(ctx, c.Tenant, c.Name)
	if err != nil {
		return err
	}
	if !ok {
		return &exitError{code: exitFailed, err: fmt.Errorf("tenant %s has no schedule %q", c.Tenant, c.Name)}
	}
	fmt.Fprintf(g.stdout, "schedule %s removed\n", c.Name)
	return nil
}

type scheduleRunCmd struct {
	Flow    string      `arg:"" name:"FLOW" help:"The flow file, with a [schedule] table."`
	Input   []string    `short:"i" name:"input" sep:"none" placeholder:"NAME=JSON" help:"Set a flow input for every run (as run --input). Repeatable."`
	JSON    bool        `help:"Print one JSON object per run: {tick, run_id, status, result, error}."`
	Workers workersFlag `default:"0" help:"Calls run at once in this process: 1 to 1024 (default 0: one per core)."`
}

func (c *scheduleRunCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := flowhost.New(ctx, flowhost.Options{Workers: int(c.Workers), CacheDir: g.cacheDir, Logger: g.logger})
	if err != nil {
		return err
	}
	defer h.Close()
	f, err := g.loadFlow(ctx, h.Engine(), c.Flow, c.Input)
	if err != nil {
		return err
	}
	sc := f.File.Schedule
	if sc == nil {
		return usageErr(fmt.Errorf("%s: %w: add one, for instance [schedule] cron = \"*/5 * * * *\"", c.Flow, flowhost.ErrNoSchedule))
	}
	fmt.Fprintf(g.stderr, "%s: %s; next tick %s (Ctrl-C stops)\n", f.File.Name, sc.Describe(), sc.Next(time.Now()).Format(time.RFC3339))
	enc := json.NewEncoder(g.stdout)
	return h.RunOnSchedule(ctx, f, flowhost.ExecOptions{}, func(tick time.Time, id string, v json.RawMessage, err error) {
		out := struct {
			Tick   string          `json:"tick"`
			RunID  string          `json:"run_id"`
			Status track.State     `json:"status"`
			Result json.RawMessage `json:"result"`
			Error  string          `json:"error,omitempty"`
		}{Tick: tick.Format(time.RFC3339Nano), RunID: id, Status: track.Succeeded, Result: v}
		if err != nil {
			out.Status, out.Result, out.Error = runner.RunState(err), json.RawMessage("null"), err.Error()
		}
		switch {
		case c.JSON:
			_ = enc.Encode(out)
		case err != nil:
			fmt.Fprintf(g.stdout, "%s  run %s %s: %s\n", tick.Format(time.RFC3339), id, out.Status, out.Error)
		default:
			fmt.Fprintf(g.stdout, "%s  run %s %s: %s\n", tick.Format(time.RFC3339), id, out.Status, out.Result)
		}
	}, func(upTo time.Time) {
		fmt.Fprintf(g.stderr, "ticks up to %s were missed and are skipped (catch_up = \"none\")\n", upTo.Format(time.RFC3339))
	})
}
