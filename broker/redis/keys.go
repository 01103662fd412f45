// Package redis runs flows on many workers through a shared Redis server
// (docs/distributed.md: flowhost worker, run --broker, status, cancel).
//
// Work travels on one Redis Stream per tenant, read by the consumer
// group "workers" in batches. Delivery is at least once: a worker renews
// the lease of what it runs (XCLAIM JUSTID resets the idle time), and any
// worker takes over messages idle longer than the lease (XAUTOCLAIM). A
// message delivered too many times goes to the tenant's dead-letter
// stream and fails its run.
//
// Run state is durable and lives in Redis, not in the submitter: the run
// hash holds the pipeline and its inputs; each step (or dataflow node)
// has a hash with its call batches' results and a countdown. Lua scripts
// make every transition atomic and idempotent: a batch result is stored
// once (a redelivered duplicate changes nothing), the worker whose result
// brings a countdown to zero enqueues what became ready, and a step's
// calls are enqueued exactly once.
package redis

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/policy"
)

const (
	group      = "workers"
	tenantsKey = "fh:tenants"
	// delayedIndex scores each tenant with a retry waiting by its
	// earliest due time, so workers look only at tenants with one due.
	// Written by workers only. On a cluster each tenant has its own, in
	// its slot (keyspace.delayedIndex).
	delayedIndex = "fh:delayed"
	// cancelPattern matches every tenant's cancel topic.
	cancelPattern = "fh:t:*:cancel"
)

// keyspace names the keys and channels of tenants. On one server a
// tenant's are under fh:t:<tenant>:, as they always were; on a Redis
// Cluster under fh:t:{<tenant>}:, the tenant their hash tag, so that all
// of one tenant's keys are in one slot and every script and MULTI of the
// broker touches one slot (a tenant's name holds no brace:
// policy.CheckTenant). Tenants spread over the masters by their names.
type keyspace struct{ tagged bool }

// prefix is what every key of tenant starts with, its last colon left out.
func (k keyspace) prefix(tenant string) string {
	if k.tagged {
		return "fh:t:{" + tenant + "}"
	}
	return "fh:t:" + tenant
}

func (k keyspace) streamKey(tenant string) string { return k.prefix(tenant) + ":q" }

// priorityStream is the tenant's stream of priority p (0: the default):
// the default priority's is streamKey, the others streamKey + ":p<N>".
func (k keyspace) priorityStream(tenant string, p int) string {
	if p = policy.Priority(p); p == policy.DefaultPriority {
		return k.streamKey(tenant)
	}
	return fmt.Sprintf("%s:p%d", k.streamKey(tenant), p)
}

// tenantStreams are the tenant's streams, highest priority first.
func (k keyspace) tenantStreams(tenant string) []string {
	out := make([]string, 0, policy.MaxPriority)
	for p := policy.MaxPriority; p >= policy.MinPriority; p-- {
		out = append(out, k.priorityStream(tenant, p))
	}
	return out
}

// streamPriority is the priority of a stream of tenant's (a fact of the
// stream a message was read from, never a claim of its body).
func (k keyspace) streamPriority(tenant, stream string) int {
	for p := policy.MinPriority; p <= policy.MaxPriority; p++ {
		if k.priorityStream(tenant, p) == stream {
			return p
		}
	}
	return policy.DefaultPriority
}
func (k keyspace) deadKey(tenant string) string        { return k.prefix(tenant) + ":dead" }
func (k keyspace) delayedKey(tenant string) string     { return k.prefix(tenant) + ":delayed" }
func (k keyspace) runKey(tenant, run string) string    { return k.prefix(tenant) + ":run:" + run }
func (k keyspace) runsKey(tenant string) string        { return k.prefix(tenant) + ":runs" }
func (k keyspace) doneTopic(tenant string) string      { return k.prefix(tenant) + ":done" }
func (k keyspace) moduleKey(tenant, sha string) string { return k.prefix(tenant) + ":mod:" + sha }
func (k keyspace) cancelTopic(tenant string) string    { return k.prefix(tenant) + ":cancel" }
func (k keyspace) stepKey(tenant, run string, step int) string {
	return k.runKey(tenant, run) + ":step:" + strconv.Itoa(step)
}

// delayedIndex is the index that scores tenant by its next retry due:
// on one server the one of every tenant (delayedIndex), which workers
// read alone; on a cluster one of the tenant's own, in its slot (a script
// that delays a retry writes it with the tenant's other keys), which
// workers read tenant by tenant.
func (k keyspace) delayedIndex(tenant string) string {
	if k.tagged {
		return k.prefix(tenant) + ":delayed:next"
	}
	return delayedIndex
}

func (k keyspace) eventsKey(tenant, run string) string { return k.runKey(tenant, run) + ":events" }

// timesKey holds the times of a step's batches (BatchTime), by
// "index:attempt".
func (k keyspace) timesKey(tenant, run string, step int) string {
	return k.stepKey(tenant, run, step) + ":times"
}

// logsKey is a run's guest log lines, the latest maxLogLines.
func (k keyspace) logsKey(tenant, run string) string { return k.runKey(tenant, run) + ":logs" }

// failedKey holds a run's failed calls (track.FailedCall), by Key.
func (k keyspace) failedKey(tenant, run string) string { return k.runKey(tenant, run) + ":failed" }

// cacheKey is a result cache entry, under its tenant's keys: a tenant
// never reads another's results.
func (k keyspace) cacheKey(tenant string, key cache.Key) string {
	return k.prefix(tenant) + ":cache:" + key.String()
}

// cachePattern matches every cache entry of a tenant.
func (k keyspace) cachePattern(tenant string) string { return k.prefix(tenant) + ":cache:*" }

// cancelTopicTenant is the tenant whose cancel topic channel is, as the
// pattern cancelPattern matched it. fh:t:*:cancel also matches
// fh:t:acme:x:cancel, whose "tenant" is no valid name: not ok.
func (k keyspace) cancelTopicTenant(channel string) (string, bool) {
	t, ok := strings.CutPrefix(channel, "fh:t:")
	if !ok {
		return "", false
	}
	if t, ok = strings.CutSuffix(t, ":cancel"); !ok {
		return "", false
	}
	if k.tagged {
		if t, ok = strings.CutPrefix(t, "{"); !ok {
			return "", false
		}
		if t, ok = strings.CutSuffix(t, "}"); !ok {
			return "", false
		}
	}
	if policy.CheckTenant(t) != nil {
		return "", false
	}
	return t, true
}

// batchField is the step hash field of the batch whose first call is
// the step's call index.
func batchField(index int) string { return fmt.Sprintf("b:%d", index) }

// isBatchField reports whether a step hash field holds a batch's result.
func isBatchField(field string) bool { return strings.HasPrefix(field, "b:") }

// waitingField is the run hash field that counts the producers a dataflow
// node still waits for.
func waitingField(node int) string { return fmt.Sprintf("w:%d", node) }
