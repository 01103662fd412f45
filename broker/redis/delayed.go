package redis

import (
	"context"
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
	due, err := w.rdb.ZRangeByScore(ctx, delayedIndex, &goredis.ZRangeBy{Min: "-inf", Max: now, Count: 100}).Result()
	if err != nil {
		w.wrote(ctx, "retry index read", err)
		return
	}
	for _, tn := range due {
		if policy.CheckTenant(tn) != nil { // only workers write the index; never act on a bad name
			w.wrote(ctx, "retry index cleanup", w.rdb.ZRem(ctx, delayedIndex, tn).Err())
			continue
		}
		keys := []string{w.k.delayedKey(tn), delayedIndex}
		for p := policy.MinPriority; p <= policy.MaxPriority; p++ {
			keys = append(keys, w.k.priorityStream(tn, p))
		}
		err := promoteScript.Run(ctx, w.rdb, keys, now, 100, tn).Err()
		if isRefusal(err) {
			// The tenant broke its own delayed set (another type):
			// stop looking at it; its retries there are lost.
			w.log.Warn("tenant's delayed retries cannot be read; dropped from the index", "tenant", tn, "err", err)
			w.cfg.Metrics.Refused(tn, "delayed")
			w.wrote(ctx, "retry index cleanup", w.rdb.ZRem(ctx, delayedIndex, tn).Err())
			continue
		}
		w.wrote(ctx, "retry promotion", err)
	}
}
