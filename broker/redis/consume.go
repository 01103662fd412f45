package redis

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/policy"
)

// This file is the consume loop's reading: which tenants a worker reads,
// and reading their streams, fairly and without one broken stream
// stopping the others.

// maxTenants bounds the tenants one worker reads from.
const maxTenants = 10000

// quarantine is how long a tenant whose stream cannot be read is left out
// of the reads, so that a broken stream costs other tenants one read.
const quarantine = 10 * time.Second

// tenants are the tenants this worker serves now: those its
// configuration names and those in the registry, each name checked (a
// name that could widen a key pattern is never read), less the ones
// whose stream is broken.
func (w *Worker) tenants(ctx context.Context) ([]string, error) {
	reg, err := w.rdb.SMembers(ctx, tenantsKey).Result()
	if err != nil {
		return nil, err
	}
	var named []string
	if w.cfg.Tenants != nil {
		for t := range w.cfg.Tenants.Tenants {
			if t != policy.DefaultTenant {
				named = append(named, t)
			}
		}
	}
	now := time.Now()
	seen := map[string]bool{}
	out := make([]string, 0, len(reg)+len(named))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range append(named, reg...) {
		if seen[t] || len(out) >= maxTenants {
			continue
		}
		seen[t] = true
		if err := policy.CheckTenant(t); err != nil {
			if !w.badNames[t] && len(w.badNames) < maxTenants {
				w.badNames[t] = true
				w.log.Warn("registry holds an invalid tenant name; it is never read", "err", err)
				w.cfg.Metrics.Refused("", "tenant_name")
			}
			continue
		}
		if until, ok := w.broken[t]; ok {
			if now.Before(until) {
				continue
			}
			delete(w.broken, t)
		}
		out = append(out, t)
	}
	return out, nil
}

// read reads up to n new messages from every tenant's stream.
func (w *Worker) read(ctx context.Context, n int) ([]delivery, error) {
	tenants, err := w.tenants(ctx)
	if err != nil {
		return nil, err
	}
	if len(tenants) == 0 {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, nil
	}
	// A tenant with a message waiting here, or running as many calls as
	// its policy allows, is not read this time round.
	all := len(tenants)
	tenants = w.sched.readable(tenants)
	if len(tenants) == 0 {
		w.sched.pause(ctx, 200*time.Millisecond)
		return nil, nil
	}
	block := 250 * time.Millisecond // short enough to see a new tenant soon
	if len(tenants) < all {
		block = 50 * time.Millisecond // read the others again soon
	}
	if w.k.tagged {
		return w.readTagged(ctx, tenants, n, block), nil
	}
	// Every priority's stream of each tenant: the scheduler takes a
	// tenant's highest-priority message first.
	streams := make([]string, 0, 2*policy.MaxPriority*len(tenants))
	tenantOf := make(map[string]string, policy.MaxPriority*len(tenants))
	for _, t := range tenants {
		for _, s := range w.k.tenantStreams(t) {
			streams = append(streams, s)
			tenantOf[s] = t
		}
	}
	for range len(tenantOf) {
		streams = append(streams, ">")
	}
	res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name, Streams: streams,
		Count: int64(n), Block: block}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && ctx.Err() == nil {
		// One stream a tenant broke (deleted, or replaced by another
		// type) fails the whole read: read each alone, and leave out
		// the broken ones for a while.
		return w.readEach(ctx, tenants, n), nil
	}
	if err != nil {
		return nil, err
	}
	var ds []delivery
	for _, s := range res {
		ds = w.deliveries(ds, tenantOf[s.Stream], s.Stream, s.Messages)
	}
	return ds, nil
}

// readTagged reads the tenants' streams on a cluster, where a command
// touches one slot: one XREADGROUP a tenant (its streams share its slot),
// all pipelined, so a read is a round trip to each master. When none
// has a message, it blocks on the streams of the tenant it read last
// (one tenant's work wakes it at once), for up to block.
func (w *Worker) readTagged(ctx context.Context, tenants []string, n int, block time.Duration) []delivery {
	cmds := make([]*goredis.XStreamSliceCmd, len(tenants))
	_, err := w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, t := range tenants {
			cmds[i] = p.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name, Streams: w.tenantReadArgs(t),
				Count: int64(n), Block: -1})
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return nil
	}
	var ds []delivery
	var failed []string
	for i, c := range cmds {
		res, err := c.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			// A tenant's broken stream (or missing group) fails its own
			// command only: those are read alone, repaired or left out.
			failed = append(failed, tenants[i])
			continue
		}
		for _, s := range res {
			ds = w.deliveries(ds, tenants[i], s.Stream, s.Messages)
		}
	}
	if len(failed) > 0 {
		ds = append(ds, w.readEach(ctx, failed, n)...)
	}
	if len(ds) > 0 {
		return ds
	}
	w.mu.Lock()
	t := w.lastRead
	w.mu.Unlock()
	if !slices.Contains(tenants, t) {
		t = tenants[0]
	}
	res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name, Streams: w.tenantReadArgs(t),
		Count: int64(n), Block: min(block, 50*time.Millisecond)}).Result()
	if err != nil {
		return nil // empty, or a broken stream the next read finds
	}
	for _, s := range res {
		ds = w.deliveries(ds, t, s.Stream, s.Messages)
	}
	return ds
}

// tenantReadArgs are the stream arguments of an XREADGROUP of tenant's
// new messages, highest priority first.
func (w *Worker) tenantReadArgs(tenant string) []string {
	streams := w.k.tenantStreams(tenant)
	for range policy.MaxPriority {
		streams = append(streams, ">")
	}
	return streams
}

// readEach reads each tenant's stream on its own, without blocking,
// repairing a missing consumer group and quarantining a stream that
// cannot be read.
func (w *Worker) readEach(ctx context.Context, tenants []string, n int) []delivery {
	var ds []delivery
	for _, t := range tenants {
		res, err := w.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: w.cfg.Name,
			Streams: w.tenantReadArgs(t), Count: int64(n), Block: -1}).Result()
		if err != nil && strings.Contains(err.Error(), "NOGROUP") {
			err = ensureGroup(ctx, w.rdb, w.k, t)
		}
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			// Only a stream Redis refuses to read is the tenant's doing;
			// a connection that failed (a master failing over) is not.
			var rerr goredis.Error
			if ctx.Err() == nil && errors.As(err, &rerr) {
				w.isolate(t, err)
			}
			continue
		}
		for _, s := range res {
			ds = w.deliveries(ds, t, s.Stream, s.Messages)
		}
	}
	return ds
}

// isolate leaves a tenant whose stream cannot be read out of the reads
// for a while.
func (w *Worker) isolate(tenant string, err error) {
	w.mu.Lock()
	w.broken[tenant] = time.Now().Add(quarantine)
	w.mu.Unlock()
	w.log.Warn("tenant's stream cannot be read; leaving it out for a while", "tenant", tenant, "stream", w.k.streamKey(tenant),
		"for", quarantine, "err", err)
	w.cfg.Metrics.Refused(tenant, "stream")
}

// deliveries appends a stream's messages, as read from tenant's stream.
func (w *Worker) deliveries(ds []delivery, tenant, stream string, msgs []goredis.XMessage) []delivery {
	if len(msgs) > 0 {
		w.mu.Lock()
		w.lastRead = tenant
		w.mu.Unlock()
	}
	for _, m := range msgs {
		body, _ := m.Values["m"].(string)
		ds = append(ds, delivery{stream: stream, tenant: tenant, id: m.ID, body: []byte(body), priority: w.k.streamPriority(tenant, stream)})
	}
	return ds
}
