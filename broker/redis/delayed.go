package redis

import (
	"context"
	"strconv"
	"time"
)

// promoteEvery is how often a worker moves due retries to their streams.
const promoteEvery = 100 * time.Millisecond

// promote moves the retries that are due from each tenant's delayed set
// to its stream. A retry waits there, not in a worker slot: a task that
// keeps failing holds no slot through its backoff, and a retry outlives
// the worker that scheduled it.
func (w *Worker) promote(ctx context.Context) {
	t := time.NewTicker(promoteEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tenants, err := w.tenants(ctx)
		if err != nil {
			continue
		}
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		for _, tn := range tenants {
			err := promoteScript.Run(ctx, w.rdb, []string{delayedKey(tn), streamKey(tn)}, now, 100).Err()
			if err != nil && ctx.Err() == nil && !isRefusal(err) {
				w.wrote(ctx, "retry promotion", err)
			}
		}
	}
}
