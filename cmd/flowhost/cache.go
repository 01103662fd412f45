package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/internal/atomicfile"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// dataDir is where the command line keeps sub (compiled modules, results,
// run records): beside the compiled modules of --cache-dir, else under the
// user cache directory; "" when --cache-dir is "off".
func (g *globals) dataDir(sub string) string {
	switch g.cacheDir {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		return filepath.Join(dir, "flowhost", sub)
	}
	return filepath.Join(g.cacheDir, sub)
}

// resultCache opens the in-process result cache; nil when caching is off.
func (g *globals) resultCache() (*cache.Disk, error) {
	dir := g.dataDir("results")
	if dir == "" {
		return nil, nil
	}
	return cache.OpenDisk(dir, 0, 0)
}

// runRecord is what an in-process run keeps on disk so that `flowhost
// rerun` can run it again: the flow, its inputs and how it ran.
type runRecord struct {
	RunID   string   `json:"run_id"`
	Flow    string   `json:"flow"`
	Inputs  []string `json:"inputs,omitempty"`
	Tenant  string   `json:"tenant,omitempty"`
	Policy  string   `json:"policy,omitempty"`
	Status  string   `json:"status"`
	RerunOf string   `json:"rerun_of,omitempty"`
	// FailedCalls are the calls that failed, for `flowhost call --from`.
	FailedCalls []track.FailedCall `json:"failed_calls,omitempty"`
}

func (g *globals) recordPath(id string) string {
	dir := g.dataDir("runs")
	if dir == "" || policy.CheckRunID(id) != nil {
		return ""
	}
	return filepath.Join(dir, id+".json")
}

// record keeps an in-process run's record (best effort: a run that
// cannot be recorded still ran).
func (g *globals) record(r runRecord) {
	path := g.recordPath(r.RunID)
	if path == "" {
		return
	}
	if abs, err := filepath.Abs(r.Flow); err == nil {
		r.Flow = abs
	}
	if r.Policy != "" {
		if abs, err := filepath.Abs(r.Policy); err == nil {
			r.Policy = abs
		}
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := atomicfile.Write(path, b); err != nil {
		g.logger.Warn("cannot keep the run's record; it cannot be re-run", "run", r.RunID, "err", err)
	}
}

type rerunCmd struct {
	RunID  string `arg:"" name:"RUN_ID" help:"The run to run again."`
	From   int    `placeholder:"STEP" help:"Run this step (1-based; a dataflow node, in plan order) and every later one again, whatever the cache holds."`
	Broker string `env:"FLOWHOST_BROKER" placeholder:"URL" help:"Re-run a run of this broker's workers (default: an in-process run of this machine)."`
	Tenant string `default:"default" help:"With --broker: the run's tenant."`
	JSON   bool   `help:"Print exactly one JSON object: {run_id, status, result, error}."`
	Quiet  bool   `short:"q" help:"No progress or summary on stderr."`
}

func (c *rerunCmd) Run(g *globals) error {
	if c.From < 0 {
		return usageErr(errors.New("--from: a step number from 1"))
	}
	if err := policy.CheckRunID(c.RunID); err != nil {
		return usageErr(err)
	}
	if c.Broker != "" {
		return c.remote(g)
	}
	rec, err := g.loadRecord(c.RunID)
	if err != nil {
		return err
	}
	run := &runCmd{Flow: rec.Flow, Input: rec.Inputs, Tenant: rec.Tenant, Policy: rec.Policy, JSON: c.JSON, Quiet: c.Quiet,
		rerunOf: c.RunID, runFrom: c.From}
	return run.Run(g)
}

// remote re-runs a broker run: the same stored flow and inputs, as a new
// run whose successful calls are cache hits on the workers.
func (c *rerunCmd) remote(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := policy.CheckTenant(c.Tenant); err != nil {
		return usageErr(fmt.Errorf("--tenant: %w", err))
	}
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	id, err := client.Rerun(ctx, c.Tenant, c.RunID, c.From)
	if errors.Is(err, redis.ErrNoRun) {
		return usageErr(err)
	}
	if err != nil {
		return err
	}
	if !c.Quiet && !c.JSON {
		fmt.Fprintf(g.stderr, "run %s re-runs %s (tenant %s); waiting\n", id, c.RunID, c.Tenant)
	}
	st, err := client.Wait(ctx, c.Tenant, id)
	if err != nil {
		return err
	}
	return reportRemote(g, st, c.JSON)
}

// Help is the rerun command's detailed help.
func (c *rerunCmd) Help() string {
	return `Runs a run again: the same flow and inputs, as a new run. Every call
that succeeded before is a hit in the result cache (docs/caching.md), so
only what failed, and what depends on it, runs again. --from STEP runs a
step and everything after it again whatever the cache holds.

Examples:
  flowhost rerun 1a231e96241e9093aadd297
  flowhost rerun 1a231e96241e9093aadd297 --from 3
  flowhost rerun 1a231e96241e9093aadd297 --broker redis://localhost:6379/0 --tenant acme`
}

type cacheCmd struct {
	Stats cacheStatsCmd `cmd:"" help:"Count the cached results and their bytes."`
	Clear cacheClearCmd `cmd:"" help:"Remove every cached result."`
}

type cacheWhere struct {
	Broker string `env:"FLOWHOST_BROKER" placeholder:"URL" help:"The results of a tenant on this broker (default: this machine's in-process cache)."`
	Tenant string `default:"default" help:"With --broker: whose results."`
}

type cacheStatsCmd struct {
	cacheWhere
	JSON bool `help:"Print {entries, bytes} as JSON."`
}

func (c *cacheStatsCmd) Run(g *globals) error {
	store, err := c.open(g)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Stats()
	if err != nil {
		return err
	}
	if c.JSON {
		return json.NewEncoder(g.stdout).Encode(st)
	}
	fmt.Fprintf(g.stdout, "%d results, %s\n", st.Entries, humanBytes(uint64(st.Bytes)))
	return nil
}

type cacheClearCmd struct{ cacheWhere }

func (c *cacheClearCmd) Run(g *globals) error {
	store, err := c.open(g)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.Clear()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%d results removed\n", n)
	return nil
}

// resultStore is a result cache as the cache commands see it: this
// machine's, or a tenant's on a broker.
type resultStore interface {
	Stats() (cache.Stats, error)
	Clear() (int, error)
	Close() error
}

type diskStore struct{ *cache.Disk }

func (d diskStore) Stats() (cache.Stats, error) { return d.Disk.Stats(), nil }

type tenantStore struct {
	c      *redis.Client
	tenant string
}

func (t tenantStore) Stats() (cache.Stats, error) {
	return t.c.CacheStats(context.Background(), t.tenant)
}
func (t tenantStore) Clear() (int, error) { return t.c.ClearCache(context.Background(), t.tenant) }
func (t tenantStore) Close() error        { return t.c.Close() }

// open opens the cache the flags name.
func (w *cacheWhere) open(g *globals) (resultStore, error) {
	if w.Broker == "" {
		d, err := g.resultCache()
		if err != nil || d == nil {
			return nil, usageErr(fmt.Errorf("no in-process result cache (--cache-dir off?): %v", err))
		}
		return diskStore{d}, nil
	}
	if err := policy.CheckTenant(w.Tenant); err != nil {
		return nil, usageErr(fmt.Errorf("--tenant: %w", err))
	}
	c, err := redis.Dial(context.Background(), w.Broker)
	if err != nil {
		return nil, usageErr(err)
	}
	return tenantStore{c, w.Tenant}, nil
}
