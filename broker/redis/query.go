package redis

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// RunQuery selects a page of a tenant's runs, newest first.
type RunQuery struct {
	// Status and Name, when set, keep the runs with that status, of the
	// flow of that name.
	Status track.State
	Name   string
	// Before, when positive, keeps the runs created before it (Unix ms):
	// the Next of the page before. After keeps those created after it.
	Before, After int64
	// Limit is the page's size: 1 to MaxPage (default 50).
	Limit int
}

// MaxPage bounds a page of runs.
const MaxPage = 500

// RunPage is a page of runs; Next, when not 0, is the Before of the next.
type RunPage struct {
	Runs []*Status `json:"runs"`
	Next int64     `json:"next,omitempty"`
}

// runFields are what a run list shows of each run (not its result).
var runFields = []string{"name", "status", "error", "created_at", "finished_at", "rerun_of", "schedule"}

// ListRuns returns a page of the tenant's runs. Each batch of candidates
// costs two round trips, whatever its size: the index by creation time,
// then every run's fields in one pipeline. A filter that keeps few runs
// reads more batches, at most 20.
func (c *Client) ListRuns(ctx context.Context, tenant string, q RunQuery) (*RunPage, error) {
	if err := checkNames(tenant, ""); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, MaxPage)
	max := "+inf"
	if q.Before > 0 {
		max = "(" + strconv.FormatInt(q.Before, 10)
	}
	page := &RunPage{Runs: []*Status{}}
	batch := int64(q.Limit)
	if q.Status != "" || q.Name != "" {
		batch = int64(min(4*q.Limit, MaxPage))
	}
	for range 20 {
		min := "-inf"
		if q.After > 0 {
			min = "(" + strconv.FormatInt(q.After, 10)
		}
		zs, err := c.rdb.ZRevRangeByScoreWithScores(ctx, c.k.runsKey(tenant), &goredis.ZRangeBy{Max: max, Min: min, Count: batch}).Result()
		if err != nil {
			return nil, err
		}
		if len(zs) == 0 {
			return page, nil
		}
		cmds := make([]*goredis.SliceCmd, len(zs))
		if _, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, z := range zs {
				cmds[i] = p.HMGet(ctx, c.k.runKey(tenant, z.Member.(string)), runFields...)
			}
			return nil
		}); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, err
		}
		for i, z := range zs {
			vs, err := cmds[i].Result()
			if err != nil || vs[1] == nil {
				continue // expired
			}
			str := func(i int) string { s, _ := vs[i].(string); return s }
			st := &Status{RunID: z.Member.(string), Tenant: tenant, Name: str(0), Status: track.State(str(1)), Error: str(2),
				CreatedAt: str(3), FinishedAt: str(4), RerunOf: str(5), Schedule: str(6), Result: nil}
			if (q.Status == "" || st.Status == q.Status) && (q.Name == "" || st.Name == q.Name) {
				page.Runs = append(page.Runs, st)
				if len(page.Runs) == q.Limit {
					page.Next = int64(z.Score)
					return page, nil
				}
			}
		}
		if int64(len(zs)) < batch {
			return page, nil
		}
		max = "(" + strconv.FormatInt(int64(zs[len(zs)-1].Score), 10)
	}
	if n := len(page.Runs); n > 0 {
		page.Next, _ = strconv.ParseInt(max[1:], 10, 64)
	}
	return page, nil
}

// Run is a run's status with its steps: what `flowhost status --json`
// prints and the API serves.
func (c *Client) Run(ctx context.Context, tenant, id string) (*Status, error) {
	st, err := c.Status(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	infos, err := c.stepInfos(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if st.Steps, err = c.Steps(ctx, st, infos); err != nil {
		return nil, err
	}
	return st, nil
}

// stepInfos are a run's steps' names: the run hash's "steps" (written at
// submit, a tenant may write it: checked), else its spec's.
func (c *Client) stepInfos(ctx context.Context, tenant, id string) ([]StepInfo, error) {
	b, err := c.rdb.HGet(ctx, c.k.runKey(tenant, id), "steps").Bytes()
	var infos []StepInfo
	if err == nil && json.Unmarshal(b, &infos) == nil && len(infos) <= maxSpecSteps {
		return infos, nil
	}
	spec, err := c.Spec(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return spec.Steps, nil
}

// Rerun submits run id of tenant again as a new run (its stored flow,
// inputs and modules), recorded as re-running it; from, when positive,
// runs that step and every later one again whatever the cache holds. It
// returns the new run's id.
func (c *Client) Rerun(ctx context.Context, tenant, id string, from int) (string, error) {
	if from < 0 {
		return "", errors.New("from: a step number from 1")
	}
	spec, err := c.Spec(ctx, tenant, id)
	if err != nil {
		return "", err
	}
	spec.ID, spec.RerunOf, spec.RunFrom = runner.NewRunID(), id, from
	if spec.ResultTTL <= 0 {
		spec.ResultTTL = 24 * time.Hour
	}
	if err := c.Submit(ctx, spec); err != nil {
		return "", err
	}
	return spec.ID, nil
}

// QueueStats are a tenant's queue: the entries its stream holds, those
// no worker has taken yet (lag), those taken and not yet acknowledged
// (running), and the retries waiting for their backoff.
type QueueStats struct {
	Depth   int64 `json:"depth"`
	Lag     int64 `json:"lag"`
	Running int64 `json:"running"`
	Delayed int64 `json:"delayed"`
}

// Queue reads a tenant's queue, in one round trip. It is what the
// workers' queue gauges and the API show.
func (c *Client) Queue(ctx context.Context, tenant string) (QueueStats, error) {
	if err := checkNames(tenant, ""); err != nil {
		return QueueStats{}, err
	}
	var zc *goredis.IntCmd
	streams := c.k.tenantStreams(tenant)
	xlen := make([]*goredis.IntCmd, len(streams))
	groups := make([]*goredis.XInfoGroupsCmd, len(streams))
	_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, s := range streams {
			xlen[i] = p.XLen(ctx, s)
			groups[i] = p.XInfoGroups(ctx, s)
		}
		zc = p.ZCard(ctx, c.k.delayedKey(tenant))
		return nil
	})
	var q QueueStats
	if err != nil && !errors.Is(err, goredis.Nil) && !strings.Contains(err.Error(), "no such key") {
		return q, err
	}
	q.Delayed, _ = zc.Result()
	for i := range streams { // every priority's stream, added up
		n, _ := xlen[i].Result()
		q.Depth += n
		gs, _ := groups[i].Result()
		for _, g := range gs {
			if g.Name == group {
				q.Lag += g.Lag
				q.Running += g.Pending
			}
		}
	}
	return q, nil
}

// maxLogLines bounds the guest log lines a run keeps (its log budget
// bounds how fast they come).
const maxLogLines = 1000

// keepLog is a log sink (host.WithLogSink) that keeps a run's guest log
// lines under its keys, the latest maxLogLines, for as long as its state.
func (w *Worker) keepLog(tenant, run string, ttl time.Duration) func(host.LogLine) {
	key := w.k.logsKey(tenant, run)
	return func(l host.LogLine) {
		b, _ := json.Marshal(l)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.XAdd(ctx, &goredis.XAddArgs{Stream: key, MaxLen: maxLogLines, Approx: true, Values: []any{"l", b}})
			p.PExpire(ctx, key, ttl)
			return nil
		})
		w.wrote(ctx, "guest log line", err)
	}
}

// Logs returns a run's guest log lines, oldest first (the latest
// maxLogLines). A line that is not one (a tenant may write its keys) is
// left out.
func (c *Client) Logs(ctx context.Context, tenant, id string) ([]host.LogLine, error) {
	if err := checkNames(tenant, id); err != nil {
		return nil, err
	}
	msgs, err := c.rdb.XRevRangeN(ctx, c.k.logsKey(tenant, id), "+", "-", maxLogLines).Result()
	if err != nil {
		return nil, err
	}
	out := make([]host.LogLine, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		raw, _ := msgs[i].Values["l"].(string)
		var l host.LogLine
		if len(raw) > 8<<10 || json.Unmarshal([]byte(raw), &l) != nil {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// BatchTime is one batch of a step's calls (track.BatchTime).
type BatchTime = track.BatchTime

// Batches returns the times of a step's batches (0-based step), by index
// and attempt: the first 2,000 batches that completed.
func (c *Client) Batches(ctx context.Context, tenant, id string, step int) ([]BatchTime, error) {
	if err := checkNames(tenant, id); err != nil {
		return nil, err
	}
	h, err := c.rdb.HGetAll(ctx, c.k.timesKey(tenant, id, step)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]BatchTime, 0, len(h))
	for _, v := range h {
		var b BatchTime
		if len(v) < 512 && json.Unmarshal([]byte(v), &b) == nil && b.Calls >= 0 && b.Started >= b.Queued && b.Finished >= b.Started {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b BatchTime) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return a.Attempt - b.Attempt
	})
	return out, nil
}
