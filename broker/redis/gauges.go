package redis

import (
	"context"
	"time"
)

// queueGauges samples each tenant's stream for the metrics.
func (w *Worker) queueGauges(ctx context.Context) {
	sample := func() {
		tenants, _ := w.rdb.SMembers(ctx, tenantsKey).Result()
		for _, tn := range tenants {
			if q, err := (&Client{rdb: w.rdb}).Queue(ctx, tn); err == nil {
				w.cfg.Metrics.SetQueue(tn, q.Depth, q.Lag, q.Running)
			}
		}
	}
	sample()
	every(ctx, 2*time.Second, sample)
}
