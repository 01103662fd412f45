package redis

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// This file is the workers' registry: each worker says every few seconds
// that it is alive, what it serves and how busy it is, for the API and
// the dashboard. Only workers and operators write it: a tenant's user
// reaches fh:t:<tenant>:* alone.

const (
	workersKey = "fh:workers" // sorted set: worker name → last announcement (Unix ms)
	// announceEvery is how often a worker announces itself; one not heard
	// from for workerGone is gone.
	announceEvery = 2 * time.Second
	workerGone    = 10 * time.Second
)

func workerKey(name string) string { return "fh:worker:" + name }

// WorkerInfo is a live worker, as it last announced itself.
type WorkerInfo struct {
	Name        string   `json:"name"`
	Concurrency int      `json:"concurrency"`
	Running     int      `json:"running"` // messages it holds now
	Tenants     []string `json:"tenants"` // whose streams it reads
	StartedAt   string   `json:"started_at"`
	LastSeen    string   `json:"last_seen"`
	// Quotas are what this worker allows each tenant it reads (its
	// worker.toml), for those it limits.
	Quotas map[string]Quota `json:"quotas,omitempty"`
}

// Quota is a worker's limits for one tenant (policy.Tenant's maxima):
// zero fields set no maximum.
type Quota struct {
	MaxConcurrent int    `json:"max_concurrent,omitempty"`
	TimeoutMS     int64  `json:"timeout_ms,omitempty"`
	Memory        uint64 `json:"memory,omitempty"`
	MaxOutput     uint64 `json:"max_output,omitempty"`
	Fuel          uint64 `json:"fuel,omitempty"`
}

// announce keeps the worker in the registry while it runs, and takes it
// out when it stops.
func (w *Worker) announce(ctx context.Context) {
	started := time.Now().UTC().Format(time.RFC3339Nano)
	say := func() {
		running := 0
		for _, ids := range w.inflightIDs() {
			running += len(ids)
		}
		tenants, _ := w.tenants(ctx)
		quotas := map[string]Quota{}
		for _, t := range tenants {
			if p, err := w.cfg.Tenants.Policy(t); err == nil && !p.Unrestricted {
				quotas[t] = Quota{MaxConcurrent: p.MaxConcurrent, TimeoutMS: p.Timeout.Milliseconds(), Memory: p.Memory, MaxOutput: p.MaxOutput, Fuel: p.Fuel}
			}
		}
		now := time.Now()
		info, _ := json.Marshal(WorkerInfo{Name: w.cfg.Name, Concurrency: w.cfg.Concurrency, Running: running, Tenants: tenants,
			StartedAt: started, LastSeen: now.UTC().Format(time.RFC3339Nano), Quotas: quotas})
		_, err := w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, workerKey(w.cfg.Name), info, workerGone)
			p.ZAdd(ctx, workersKey, goredis.Z{Score: float64(now.UnixMilli()), Member: w.cfg.Name})
			p.ZRemRangeByScore(ctx, workersKey, "-inf", strconv.FormatInt(now.Add(-6*workerGone).UnixMilli(), 10))
			return nil
		})
		if err != nil && ctx.Err() == nil {
			w.log.Debug("announce failed", "err", err)
		}
	}
	say()
	every(ctx, announceEvery, say)
	bg, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	w.rdb.ZRem(bg, workersKey, w.cfg.Name)
	w.rdb.Del(bg, workerKey(w.cfg.Name))
}

// Workers lists the live workers, by name, in two round trips.
func (c *Client) Workers(ctx context.Context) ([]WorkerInfo, error) {
	since := strconv.FormatInt(time.Now().Add(-workerGone).UnixMilli(), 10)
	names, err := c.rdb.ZRangeByScore(ctx, workersKey, &goredis.ZRangeBy{Min: since, Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	out := []WorkerInfo{}
	if len(names) == 0 {
		return out, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = workerKey(n)
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var wi WorkerInfo
		if json.Unmarshal([]byte(s), &wi) == nil {
			out = append(out, wi)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
