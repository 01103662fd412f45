package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// Spec is a run as stored in Redis: everything a worker needs to plan and
// run it, with modules named by content (sha256) rather than by path.
type Spec struct {
	ID      string               `json:"id"`
	Tenant  string               `json:"tenant"`
	Name    string               `json:"name"`
	Modules map[string]string    `json:"modules"` // alias → sha256
	Seq     *pipeline.Sequential `json:"sequential,omitempty"`
	DF      *pipeline.Dataflow   `json:"dataflow,omitempty"`
	Inputs  pipeline.Inputs      `json:"inputs"`
	Limits  pipeline.Limits      `json:"limits"`
	Grants  pipeline.Grants      `json:"grants"`
	// ResultTTL is how long the run's state and result are kept after it ends.
	ResultTTL time.Duration `json:"result_ttl"`
	// Steps name the steps (or dataflow nodes, in plan order) for status.
	Steps []StepInfo `json:"steps"`
	// RerunOf is the run this one runs again; RunFrom, when positive, the
	// first step whose calls run again whatever the cache holds.
	RerunOf string `json:"rerun_of,omitempty"`
	RunFrom int    `json:"run_from,omitempty"`
	// Priority is the run's, 1 to 5 (0: the default): its messages go
	// on the tenant's stream of that priority.
	Priority int `json:"priority,omitempty"`
	// Parent and ParentStep are the run and step (1-based) whose flow
	// step started this run, a sub-flow's.
	Parent     string `json:"parent,omitempty"`
	ParentStep int    `json:"parent_step,omitempty"`
}

// Bounds of a stored spec.
const (
	maxSpecModules = 256
	maxSpecSteps   = 100000
	maxResultTTL   = 366 * 24 * time.Hour
)

// check refuses a stored spec that no submitter would have written: a
// spec is read back from a key its tenant may write.
func (s *Spec) check(run string) error {
	if s.ID != run {
		return fmt.Errorf("spec names run %.70q, stored as %s", s.ID, run)
	}
	if (s.Seq == nil) == (s.DF == nil) {
		return errors.New("a spec holds exactly one pipeline, sequential or dataflow")
	}
	if len(s.Modules) == 0 || len(s.Modules) > maxSpecModules {
		return fmt.Errorf("a spec names 1 to %d modules, not %d", maxSpecModules, len(s.Modules))
	}
	for alias, sha := range s.Modules {
		if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
			return fmt.Errorf("module %.40q: %.70q is not a sha256 in hex", alias, sha)
		}
	}
	if err := pipeline.CheckInputs(s.Inputs); err != nil {
		return err
	}
	if len(s.Steps) > maxSpecSteps {
		return fmt.Errorf("%d steps: at most %d", len(s.Steps), maxSpecSteps)
	}
	if s.RerunOf != "" {
		if err := policy.CheckRunID(s.RerunOf); err != nil {
			return fmt.Errorf("rerun_of: %w", err)
		}
	}
	if err := policy.CheckPriority(s.Priority); err != nil {
		return err
	}
	if s.Parent != "" {
		if err := policy.CheckRunID(s.Parent); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
	}
	steps := 0
	if err := checkSubs(s.Seq, s.DF, 0, &steps); err != nil {
		return err
	}
	if s.RunFrom < 0 || s.RunFrom > maxSpecSteps {
		return fmt.Errorf("run_from %d out of range", s.RunFrom)
	}
	if s.ResultTTL <= 0 || s.ResultTTL > maxResultTTL {
		return fmt.Errorf("result TTL %s: between 1ns and %s", s.ResultTTL, maxResultTTL)
	}
	return nil
}

// StepInfo names a step for status (dag.StepInfo).
type StepInfo = dag.StepInfo

// Status is a run's state: the same type (track.RunStatus) whichever
// driver ran it.
type Status = track.RunStatus

// Client submits runs and reads their state.
type Client struct {
	rdb  goredis.UniversalClient
	k    keyspace      // tagged on a Redis Cluster (a redis+cluster:// URL)
	stop chan struct{} // closed by Close (on a cluster: stops followSlots)
	once sync.Once     // closes stop once, however often Close is called
}

// slotsEvery is how often a cluster client reads the cluster's map of
// slots to masters again, so that it follows a failover within about
// that long (go-redis reads it again on its own only on a MOVED reply,
// which a dead master never sends).
const slotsEvery = time.Second

// followSlots reads the cluster's slot map every slotsEvery until Close.
func (c *Client) followSlots(cc *goredis.ClusterClient) {
	t := time.NewTicker(slotsEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), slotsEvery)
			cc.ReloadState(ctx)
			cancel()
		}
	}
}

// Dial connects to redis://[user:pass@]host:port/db or rediss:// (TLS),
// or to a Redis Cluster through any of its nodes:
// redis+cluster://[user:pass@]host:port[,host:port…] or rediss+cluster://.
func Dial(ctx context.Context, url string) (*Client, error) {
	if cu, ok, err := clusterURL(url); ok {
		var opts *goredis.ClusterOptions
		if err == nil {
			opts, err = goredis.ParseClusterURL(cu)
		}
		if err != nil {
			return nil, fmt.Errorf("broker URL %q: %w", url, err)
		}
		rdb := goredis.NewClusterClient(opts)
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, fmt.Errorf("broker cluster %s: %w", strings.Join(opts.Addrs, ","), err)
		}
		c := &Client{rdb: rdb, k: keyspace{tagged: true}, stop: make(chan struct{})}
		go c.followSlots(rdb)
		return c, nil
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("broker URL %q: %w", url, err)
	}
	rdb := goredis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("broker %s: %w", opts.Addr, err)
	}
	return &Client{rdb: rdb}, nil
}

// clusterURL turns a redis+cluster:// (or rediss+cluster://) URL into
// the form go-redis's ParseClusterURL reads: the first node in the host,
// the others as addr parameters. ok is false for any other URL.
func clusterURL(url string) (string, bool, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok || (scheme != "redis+cluster" && scheme != "rediss+cluster") {
		return "", false, nil
	}
	scheme = strings.TrimSuffix(scheme, "+cluster")
	userinfo, hosts := "", rest
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		userinfo, hosts = rest[:i+1], rest[i+1:]
	}
	query := ""
	if i := strings.IndexAny(hosts, "/?"); i >= 0 {
		hosts, query = hosts[:i], hosts[i:]
	}
	// A cluster has one database: a path of /0 is accepted, and dropped.
	path, q, _ := strings.Cut(query, "?")
	if path != "" && path != "/" && path != "/0" {
		return "", true, fmt.Errorf("a cluster has only database 0, not %s", strings.TrimPrefix(path, "/"))
	}
	nodes := strings.Split(hosts, ",")
	for _, n := range nodes {
		if n == "" {
			return "", true, errors.New("an empty node address in the list")
		}
	}
	var params []string
	for _, n := range nodes[1:] {
		params = append(params, "addr="+n)
	}
	if q != "" {
		params = append(params, q)
	}
	out := scheme + "://" + userinfo + nodes[0]
	if len(params) > 0 {
		out += "?" + strings.Join(params, "&")
	}
	return out, true, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.once.Do(func() {
		if c.stop != nil {
			close(c.stop)
		}
	})
	return c.rdb.Close()
}

// Redis returns the underlying client.
func (c *Client) Redis() goredis.UniversalClient { return c.rdb }

// Upload stores a module under the tenant's namespace and its sha256,
// once: the tenant's workers fetch it from there.
func (c *Client) Upload(ctx context.Context, tenant, sha string, wasm []byte) error {
	if tenant == "" {
		tenant = policy.DefaultTenant
	}
	if err := checkNames(tenant, ""); err != nil {
		return err
	}
	return c.rdb.SetNX(ctx, c.k.moduleKey(tenant, sha), wasm, 0).Err()
}

// ensureTenant registers a tenant and makes its stream and consumer
// group. A tenant's own credentials may not write the registry (only
// workers and operators may): then the tenant must be registered already
// (`flowhost tenants add`, or named in the workers' worker.toml), and
// the refusal is not an error.
func ensureTenant(ctx context.Context, rdb goredis.UniversalClient, k keyspace, tenant string) error {
	if err := rdb.SAdd(ctx, tenantsKey, tenant).Err(); err != nil && !isNoPerm(err) {
		return err
	}
	return ensureGroup(ctx, rdb, k, tenant)
}

// ensureGroup makes a tenant's streams (one per priority) and the
// workers' consumer group on each.
func ensureGroup(ctx context.Context, rdb goredis.UniversalClient, k keyspace, tenant string) error {
	streams := k.tenantStreams(tenant)
	cmds := make([]*goredis.StatusCmd, len(streams))
	_, _ = rdb.Pipelined(ctx, func(p goredis.Pipeliner) error { // one round trip
		for i, s := range streams {
			cmds[i] = p.XGroupCreateMkStream(ctx, s, group, "0")
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
			return err
		}
	}
	return nil
}

// Submit stores a run and enqueues its first step. The run's modules
// must have been uploaded.
func (c *Client) Submit(ctx context.Context, spec *Spec) error {
	if spec.Tenant == "" {
		spec.Tenant = policy.DefaultTenant
	}
	if err := checkNames(spec.Tenant, spec.ID); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if err := policy.CheckPriority(spec.Priority); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if spec.ResultTTL <= 0 {
		spec.ResultTTL = 24 * time.Hour
	}
	if err := ensureTenant(ctx, c.rdb, c.k, spec.Tenant); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	first, err := json.Marshal(message{Kind: kindInit, Run: spec.ID, Tenant: spec.Tenant})
	if err != nil {
		return err
	}
	now := time.Now()
	// The steps' names apart too: a run's page reads them without the
	// spec, whose inputs may be large.
	steps, _ := json.Marshal(spec.Steps)
	fields := map[string]any{"spec": b, "steps": steps, "status": string(track.Pending), "tenant": spec.Tenant, "name": spec.Name, "rerun_of": spec.RerunOf,
		"created_at": now.UTC().Format(time.RFC3339Nano)}
	_, err = c.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, c.k.runKey(spec.Tenant, spec.ID), fields)
		p.PExpire(ctx, c.k.runKey(spec.Tenant, spec.ID), 7*spec.ResultTTL)
		p.ZAdd(ctx, c.k.runsKey(spec.Tenant), goredis.Z{Score: float64(now.UnixMilli()), Member: spec.ID})
		p.XAdd(ctx, &goredis.XAddArgs{Stream: c.k.priorityStream(spec.Tenant, spec.Priority), Values: []any{"m", first}})
		return nil
	})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	return nil
}

// ErrNoRun is returned for a run id the broker does not know.
var ErrNoRun = errors.New("no such run")

// Status reads a run's state.
func (c *Client) Status(ctx context.Context, tenant, id string) (*Status, error) {
	if err := checkNames(tenant, id); err != nil {
		return nil, err
	}
	m, err := c.rdb.HGetAll(ctx, c.k.runKey(tenant, id)).Result()
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("run %s (tenant %s): %w", id, tenant, ErrNoRun)
	}
	st := &Status{RunID: id, Tenant: tenant, Name: m["name"], Status: track.State(m["status"]), Error: m["error"], RerunOf: m["rerun_of"],
		CreatedAt: m["created_at"], FinishedAt: m["finished_at"], Result: json.RawMessage("null"), Schedule: m["schedule"], ScheduledFor: m["scheduled_for"]}
	if policy.CheckRunID(m["parent"]) == nil {
		st.Parent = m["parent"]
		st.ParentStep, _ = strconv.Atoi(m["parent_step"])
	}
	if r := m["result"]; r != "" {
		st.Result = json.RawMessage(r)
	}
	return st, nil
}

// Wait blocks until the run ends or ctx is done. It rides out Redis
// going away, retrying until ctx ends.
func (c *Client) Wait(ctx context.Context, tenant, id string) (*Status, error) {
	sub := c.rdb.Subscribe(ctx, c.k.doneTopic(tenant))
	defer sub.Close()
	ch := sub.Channel()
	tick := time.NewTicker(250 * time.Millisecond) // in case a notice is missed
	defer tick.Stop()
	for {
		st, err := c.Status(ctx, tenant, id)
		switch {
		case errors.Is(err, ErrNoRun), isRefusal(err):
			return nil, err
		case err == nil && st.Ended():
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-tick.C:
		}
	}
}

// Cancel stops a run: nothing new starts, and running calls are
// interrupted. It is an optimistic transaction (WATCH, MULTI), not a
// script, so that a tenant's credentials need no scripting.
func (c *Client) Cancel(ctx context.Context, tenant, id string) (bool, error) {
	if err := checkNames(tenant, id); err != nil {
		return false, err
	}
	return cancelRun(ctx, c.rdb, c.k, tenant, id, "cancelled by request")
}

// cancelRun ends a run as cancelled, if it is still going, tells its
// parent (a sub-flow's run), interrupts its calls everywhere and cancels
// its own sub-flows' runs.
func cancelRun(ctx context.Context, rdb goredis.UniversalClient, k keyspace, tenant, id, reason string) (bool, error) {
	ended, err := cancelOne(ctx, rdb, k, tenant, id, "", reason)
	if ended {
		cancelChildren(ctx, rdb, k, tenant, id)
	}
	return ended, err
}

// cancelOne ends one run as cancelled, if it is still going and (when
// parent is set) it is that run's sub-flow, as its own hash says.
func cancelOne(ctx context.Context, rdb goredis.UniversalClient, k keyspace, tenant, id, parent, reason string) (bool, error) {
	key := k.runKey(tenant, id)
	ev := track.Event{Type: track.RunFinished, RunID: id, Status: track.Cancelled, Error: reason}.Encode()
	ttl := 24 * time.Hour
	var ended bool
	cancel := func(tx *goredis.Tx) error {
		vals, err := tx.HMGet(ctx, key, "status", "parent", "parent_step", "parent_stream").Result()
		if err != nil {
			return err
		}
		st, _ := vals[0].(string)
		if p, _ := vals[1].(string); st == "" || track.State(st).Ended() || (parent != "" && p != parent) {
			return nil
		}
		notify := parentNotice(k, tenant, vals[1], vals[2], vals[3])
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, key, "status", string(track.Cancelled), "result", "null", "error", reason,
				"finished_at", time.Now().UTC().Format(time.RFC3339Nano))
			p.PExpire(ctx, key, ttl)
			p.XAdd(ctx, &goredis.XAddArgs{Stream: k.eventsKey(tenant, id), MaxLen: 10000, Approx: true, Values: []any{"e", ev}})
			p.PExpire(ctx, k.eventsKey(tenant, id), ttl)
			p.Publish(ctx, k.doneTopic(tenant), id)
			if notify != nil {
				p.XAdd(ctx, notify)
			}
			return nil
		})
		ended = err == nil
		return err
	}
	var err error
	for range 10 {
		if err = rdb.Watch(ctx, cancel, key); !errors.Is(err, goredis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	if parent == "" || ended {
		if err := rdb.Publish(ctx, k.cancelTopic(tenant), id).Err(); err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// maxChildren bounds the sub-flow runs one cancellation ends: a run has
// at most one a flow step, and a run's steps are bounded.
const maxChildren = 10000

// cancelChildren cancels the runs of a run's sub-flows, and theirs,
// breadth first. The sets are read back from keys their tenant may
// write: a member is cancelled only if its own hash names the run as its
// parent, each run is looked at once, and at most maxChildren all told.
func cancelChildren(ctx context.Context, rdb goredis.UniversalClient, k keyspace, tenant, id string) {
	seen := map[string]bool{id: true}
	queue := []string{id}
	for len(queue) > 0 && len(seen) <= maxChildren {
		run := queue[0]
		queue = queue[1:]
		var cursor uint64
		for {
			kids, next, err := rdb.SScan(ctx, k.childrenKey(tenant, run), cursor, "", 256).Result()
			if err != nil {
				break
			}
			for _, kid := range kids {
				if seen[kid] || policy.CheckRunID(kid) != nil || len(seen) > maxChildren {
					continue
				}
				seen[kid] = true
				if ended, _ := cancelOne(ctx, rdb, k, tenant, kid, run, "cancelled: its parent run "+run+" ended"); ended {
					queue = append(queue, kid)
				}
			}
			if cursor = next; cursor == 0 || len(seen) > maxChildren {
				break
			}
		}
	}
}

// parentNotice is the child message to a sub-flow's parent, from the
// fields of the child's run hash; nil when it has no parent or a field
// is not what a worker writes (the hash is its tenant's to write: the
// stream must be one of the tenant's own).
func parentNotice(k keyspace, tenant string, parent, step, stream any) *goredis.XAddArgs {
	p, _ := parent.(string)
	s, _ := step.(string)
	st, _ := stream.(string)
	n, err := strconv.Atoi(s)
	if p == "" || policy.CheckRunID(p) != nil || err != nil || n < 1 || n > maxSpecSteps || !slices.Contains(k.tenantStreams(tenant), st) {
		return nil
	}
	b, _ := json.Marshal(message{Kind: kindChild, Run: p, Step: n - 1})
	return &goredis.XAddArgs{Stream: st, Values: []any{"m", string(b)}}
}

// fieldMap is an HMGET's answer by field, the fields it found.
func fieldMap(fields []string, vals []any) map[string]string {
	h := make(map[string]string, len(fields))
	for i, f := range fields {
		if i >= len(vals) {
			break
		}
		if v, ok := vals[i].(string); ok {
			h[f] = v
		}
	}
	return h
}

// checkNames refuses a tenant name or run id that could reach outside
// the tenant's keys.
func checkNames(tenant, id string) error {
	if err := policy.CheckTenant(tenant); err != nil {
		return err
	}
	if id != "" {
		return policy.CheckRunID(id)
	}
	return nil
}

// Runs lists recent runs of a tenant, newest first.
func (c *Client) Runs(ctx context.Context, tenant string, limit int64) ([]*Status, error) {
	if err := checkNames(tenant, ""); err != nil {
		return nil, err
	}
	ids, err := c.rdb.ZRevRange(ctx, c.k.runsKey(tenant), 0, limit-1).Result()
	if err != nil {
		return nil, err
	}
	var out []*Status
	for _, id := range ids {
		st, err := c.Status(ctx, tenant, id)
		if errors.Is(err, ErrNoRun) {
			continue // expired
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// StepStatus is one step (or dataflow node) of a run, as status shows it.
type StepStatus = track.StepStatus

// stepFields are the fields of a step's hash that status reads.
var stepFields = []string{"started_at", "finished_at", "worker", "total", "retries", "done", "failed", "cached", "error", "started", "fuel", "peak_memory", "pass", "skipped", "case", "child"}

// Steps reads the state of a run's steps.
func (c *Client) Steps(ctx context.Context, st *Status, infos []StepInfo) ([]StepStatus, error) {
	out := make([]StepStatus, len(infos))
	// The fields status shows, not the step's batch results (a map's
	// hash holds them all): one pipeline for every step.
	cmds := make([]*goredis.SliceCmd, len(infos))
	if _, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range infos {
			cmds[i] = p.HMGet(ctx, c.k.stepKey(st.Tenant, st.RunID, i), stepFields...)
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	for i, info := range infos {
		label := info.Name
		vs, err := cmds[i].Result()
		if err != nil {
			return nil, err
		}
		h := fieldMap(stepFields, vs)
		s := StepStatus{Name: label, Status: track.Pending, StartedAt: h["started_at"], FinishedAt: h["finished_at"], Worker: h["worker"]}
		for _, d := range info.Deps {
			if d >= 1 && d <= len(infos) { // a stored spec: checked
				s.Deps = append(s.Deps, d)
			}
		}
		t0, _ := time.Parse(time.RFC3339Nano, h["started_at"])
		t1, _ := time.Parse(time.RFC3339Nano, h["finished_at"])
		s.DurationMS = track.Duration(t0, t1)
		total, _ := strconv.Atoi(h["total"])
		retries, _ := strconv.Atoi(h["retries"])
		done, _ := strconv.Atoi(h["done"])
		s.Failed, _ = strconv.Atoi(h["failed"])
		s.Cached, _ = strconv.Atoi(h["cached"])
		ended := st.Status == track.Failed || st.Status == track.Cancelled
		switch {
		case h["error"] != "": // the step that failed the run
			s.Status, s.Error = track.Failed, h["error"]
		case h["skipped"] != "":
			s.Status = track.Skipped
		case h["started"] == "":
			if ended {
				s.Status = track.Cancelled
			}
		case h["finished_at"] != "":
			s.Status = track.Succeeded
		case ended:
			s.Status = track.Cancelled
		default:
			s.Status = track.Running
		}
		if h["started"] != "" && h["pass"] == "" {
			s.Attempts = 1 + retries
		}
		s.Case = h["case"]
		if policy.CheckRunID(h["child"]) == nil {
			s.Child = h["child"]
		}
		if s.Status == track.Succeeded { // as step_finished reports them
			s.Fuel, _ = strconv.ParseUint(h["fuel"], 10, 64)
			s.PeakMemory, _ = strconv.ParseUint(h["peak_memory"], 10, 64)
		}
		if info.Fanning && h["started"] != "" && h["pass"] == "" {
			s.Done, s.Total = &done, &total
		}
		out[i] = s
	}
	return out, nil
}

// Spec reads a run's stored spec.
func (c *Client) Spec(ctx context.Context, tenant, id string) (*Spec, error) {
	if err := checkNames(tenant, id); err != nil {
		return nil, err
	}
	b, err := c.rdb.HGet(ctx, c.k.runKey(tenant, id), "spec").Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("run %s (tenant %s): %w", id, tenant, ErrNoRun)
	}
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// FailedCalls returns the failed calls run id recorded (track.FailedCall),
// step by step. A record that fails its check (a tenant may write its
// keys) is left out.
func (c *Client) FailedCalls(ctx context.Context, tenant, id string) ([]track.FailedCall, error) {
	if err := checkNames(tenant, id); err != nil {
		return nil, err
	}
	h, err := c.rdb.HGetAll(ctx, c.k.failedKey(tenant, id)).Result()
	if err != nil {
		return nil, err
	}
	var out []track.FailedCall
	for k, v := range h {
		var fc track.FailedCall
		if json.Unmarshal([]byte(v), &fc) != nil || fc.Check() != nil || fc.Key() != k {
			continue
		}
		out = append(out, fc)
	}
	slices.SortFunc(out, func(a, b track.FailedCall) int {
		if a.Step != b.Step {
			return a.Step - b.Step
		}
		return a.Element - b.Element
	})
	return out, nil
}

// Module returns the bytes of the module with digest sha that a run of
// tenant's was submitted with; they are checked against it.
func (c *Client) Module(ctx context.Context, tenant, sha string) ([]byte, error) {
	if err := checkNames(tenant, ""); err != nil {
		return nil, err
	}
	b, err := c.rdb.Get(ctx, c.k.moduleKey(tenant, sha)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("module %s is no longer stored for tenant %s", sha, tenant)
	}
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("the module stored as %s does not have that digest", sha)
	}
	return b, nil
}

// AddTenant registers a tenant, so that workers read its stream, and
// makes its stream. It needs the workers' (or an operator's)
// credentials: a tenant's own may not write the registry.
func (c *Client) AddTenant(ctx context.Context, tenant string) error {
	if err := checkNames(tenant, ""); err != nil {
		return err
	}
	if err := c.rdb.SAdd(ctx, tenantsKey, tenant).Err(); err != nil {
		return fmt.Errorf("register tenant %s: %w", tenant, err)
	}
	if err := ensureGroup(ctx, c.rdb, c.k, tenant); err != nil {
		return fmt.Errorf("register tenant %s: %w", tenant, err)
	}
	return nil
}

// RemoveTenant takes a tenant out of the registry: workers stop reading
// its stream (unless their worker.toml names it). Its keys are kept.
func (c *Client) RemoveTenant(ctx context.Context, tenant string) (bool, error) {
	n, err := c.rdb.SRem(ctx, tenantsKey, tenant).Result()
	if err != nil {
		return false, fmt.Errorf("remove tenant %s: %w", tenant, err)
	}
	return n == 1, nil
}

// Tenants lists the registered tenants, sorted.
func (c *Client) Tenants(ctx context.Context) ([]string, error) {
	ts, err := c.rdb.SMembers(ctx, tenantsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	slices.Sort(ts)
	return ts, nil
}

// redisLog routes the Redis client's own log lines (each retry of a dial
// that fails, ...) to slog at debug level: what matters reaches the
// caller once, as the error it returns (`flowhost: broker …: connection
// refused`, not a line per attempt).
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

func init() { goredis.SetLogger(redisLog{}) }
