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
			depth, _ := w.rdb.XLen(ctx, streamKey(tn)).Result()
			groups, err := w.rdb.XInfoGroups(ctx, streamKey(tn)).Result()
			if err != nil {
				continue
			}
			for _, g := range groups {
				if g.Name == group {
					w.cfg.Metrics.SetQueue(tn, depth, g.Lag, g.Pending)
				}
			}
		}
	}
	sample()
	every(ctx, 2*time.Second, sample)
}
