package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/policy"
)

// promoteEvery is how often a worker moves due retries to their streams.
const promoteEvery = 100 * time.Millisecond

// promote moves the retries that are due from each tenant's delayed set
// to its stream. A retry waits there, not in a worker slot: a task that
// keeps failing holds no slot through its backoff, and a retry outlives
// the worker that scheduled it. Only the tenants the index says have a
// retry due are looked at, so an idle worker makes one read per tick.
func (w *Worker) promote(ctx context.Context) {
	every(ctx, promoteEvery, func() { w.promoteDue(ctx) })
}

// promoteDue moves the retries that are due to their tenants' streams.
func (w *Worker) promoteDue(ctx context.Context) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	due, err := w.dueTenants(ctx, now)
	if err != nil {
		w.wrote(ctx, "retry index read", err)
		return
	}
	for _, tn := range due {
		index := w.k.delayedIndex(tn)
		if policy.CheckTenant(tn) != nil { // only workers write the index; never act on a bad name
			w.wrote(ctx, "retry index cleanup", w.rdb.ZRem(ctx, index, tn).Err())
			continue
		}
		keys := []string{w.k.delayedKey(tn), index}
		for p := policy.MinPriority; p <= policy.MaxPriority; p++ {
			keys = append(keys, w.k.priorityStream(tn, p))
		}
		err := promoteScript.Run(ctx, w.rdb, keys, now, 100, tn).Err()
		if isRefusal(err) {
			// The tenant broke its own delayed set (another type):
			// stop looking at it; its retries there are lost.
			w.log.Warn("tenant's delayed retries cannot be read; dropped from the index", "tenant", tn, "err", err)
			w.cfg.Metrics.Refused(tn, "delayed")
			w.wrote(ctx, "retry index cleanup", w.rdb.ZRem(ctx, index, tn).Err())
			continue
		}
		w.wrote(ctx, "retry promotion", err)
	}
}

// dueTenants are the tenants with a retry due by now (Unix ms): one read
// of the index on one server; on a cluster, a read of each tenant's own
// index, pipelined (one round trip to each master).
func (w *Worker) dueTenants(ctx context.Context, now string) ([]string, error) {
	if !w.k.tagged {
		return w.rdb.ZRangeByScore(ctx, delayedIndex, &goredis.ZRangeBy{Min: "-inf", Max: now, Count: 100}).Result()
	}
	tenants, err := w.tenants(ctx)
	if err != nil {
		return nil, err
	}
	cmds := make([]*goredis.StringSliceCmd, len(tenants))
	_, err = w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, t := range tenants {
			cmds[i] = p.ZRangeByScore(ctx, w.k.delayedIndex(t), &goredis.ZRangeBy{Min: "-inf", Max: now, Count: 1})
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) && !isRefusal(err) {
		return nil, err
	}
	var due []string
	for i, c := range cmds {
		if ts, _ := c.Result(); len(ts) > 0 && ts[0] == tenants[i] {
			due = append(due, tenants[i])
		}
	}
	return due, nil
}
