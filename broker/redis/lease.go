package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// This file is the leases: heartbeats renew the messages a worker runs,
// reclaim takes over the expired ones of dead workers (and dead-letters
// those delivered too often), and a stopping worker hands back the rest.

func (w *Worker) track(stream, id string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		if w.inflight[stream] == nil {
			w.inflight[stream] = map[string]bool{}
		}
		w.inflight[stream][id] = true
	} else {
		delete(w.inflight[stream], id)
	}
}

func (w *Worker) inflightIDs() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for s, ids := range w.inflight {
		for id := range ids {
			out[s] = append(out[s], id)
		}
	}
	return out
}

// heartbeats renew the leases of running messages: claiming them again
// by this worker resets their idle time.
func (w *Worker) heartbeats(ctx context.Context) {
	every(ctx, w.cfg.Lease/3, func() {
		w.renewSlots(ctx)
		for stream, ids := range w.inflightIDs() {
			if err := w.rdb.XClaimJustID(ctx, &goredis.XClaimArgs{Stream: stream, Group: group, Consumer: w.cfg.Name, MinIdle: 0, Messages: ids}).Err(); err != nil && ctx.Err() == nil {
				w.log.Warn("heartbeat failed", "err", err)
			}
		}
	})
}

// reclaim takes over messages whose lease expired, sending the ones
// delivered too often to the dead-letter stream.
func (w *Worker) reclaim(ctx context.Context) []delivery {
	tenants, err := w.tenants(ctx)
	if err != nil {
		return nil
	}
	var out []delivery
	for _, t := range tenants {
		for _, stream := range w.k.tenantStreams(t) {
			out = append(out, w.reclaimStream(ctx, t, stream)...)
		}
	}
	return out
}

// reclaimStream takes over one stream's messages whose lease expired.
func (w *Worker) reclaimStream(ctx context.Context, t, stream string) []delivery {
	msgs, _, err := w.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{Stream: stream, Group: group, Consumer: w.cfg.Name,
		MinIdle: w.cfg.Lease, Start: "0-0", Count: int64(w.cfg.Concurrency * 4)}).Result()
	if err != nil {
		return nil
	}
	var out []delivery
	for _, m := range msgs {
		body, _ := m.Values["m"].(string)
		d := delivery{stream: stream, tenant: t, id: m.ID, body: []byte(body), priority: w.k.streamPriority(t, stream)}
		pend, err := w.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: group, Start: m.ID, End: m.ID, Count: 1}).Result()
		if err == nil && len(pend) == 1 && pend[0].RetryCount > w.cfg.MaxDeliveries {
			w.deadLetter(ctx, d, pend[0].RetryCount)
			continue
		}
		w.log.Info("took over an expired lease", "stream", stream, "id", m.ID)
		out = append(out, d)
	}
	return out
}

func (w *Worker) deadLetter(ctx context.Context, d delivery, n int64) {
	reason := fmt.Sprintf("message %s was delivered %d times without completing (each worker that took it stopped or lost its lease): moved to %s",
		d.id, n, w.k.deadKey(d.tenant))
	if err := w.rdb.XAdd(ctx, &goredis.XAddArgs{Stream: w.k.deadKey(d.tenant), Values: []any{"m", d.body, "reason", reason}}).Err(); err != nil {
		// Claim nothing that did not happen: the message stays pending,
		// and the next take-over tries again.
		w.log.Error("cannot move a message to the dead letters; it stays pending", "tenant", d.tenant, "id", d.id, "err", err)
		return
	}
	w.cfg.Metrics.Refused(d.tenant, "dead_letter")
	var m message
	if json.Unmarshal(d.body, &m) != nil || policy.CheckRunID(m.Run) != nil {
		w.log.Error("dead letter", "tenant", d.tenant, "id", d.id, "reason", reason)
		w.wrote(ctx, "ack", w.rdb.XAck(ctx, d.stream, group, d.id).Err())
		return
	}
	m.Tenant = d.tenant
	w.log.Error("dead letter", "tenant", d.tenant, "run", m.Run, "reason", reason)
	w.end(ctx, &m, d, track.Failed, "null", reason)
}

// handBackNow makes messages this worker read but never started
// claimable at once by other workers.
func (w *Worker) handBackNow(ds []delivery) {
	ids := map[string][]string{}
	for _, d := range ds {
		ids[d.stream] = append(ids[d.stream], d.id)
	}
	w.claimIdle(ids)
}

// handBack makes the messages still running claimable at once by other
// workers, by setting their idle time past the lease.
func (w *Worker) handBack() { w.claimIdle(w.inflightIDs()) }

// claimIdle sets messages' idle time past the lease, so that any worker
// takes them over at its next look.
func (w *Worker) claimIdle(ids map[string][]string) {
	ctx := context.Background()
	for stream, ids := range ids {
		args := []any{"XCLAIM", stream, group, w.cfg.Name, 0}
		for _, id := range ids {
			args = append(args, id)
		}
		args = append(args, "IDLE", w.cfg.Lease.Milliseconds()+1, "JUSTID")
		w.wrote(ctx, "hand back", w.rdb.Do(ctx, args...).Err())
	}
}
