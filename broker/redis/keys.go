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
	"strings"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/policy"
)

const (
	group      = "workers"
	tenantsKey = "fh:tenants"
	// delayedIndex scores each tenant with a retry waiting by its
	// earliest due time, so workers look only at tenants with one due.
	// Written by workers only.
	delayedIndex = "fh:delayed"
	// cancelPattern matches every tenant's cancel topic.
	cancelPattern = "fh:t:*:cancel"
)

func streamKey(tenant string) string { return fmt.Sprintf("fh:t:%s:q", tenant) }

// priorityStream is the tenant's stream of priority p (0: the default):
// the default priority's is streamKey, the others streamKey + ":p<N>".
func priorityStream(tenant string, p int) string {
	if p = policy.Priority(p); p == policy.DefaultPriority {
		return streamKey(tenant)
	}
	return fmt.Sprintf("%s:p%d", streamKey(tenant), p)
}

// tenantStreams are the tenant's streams, highest priority first.
func tenantStreams(tenant string) []string {
	out := make([]string, 0, policy.MaxPriority)
	for p := policy.MaxPriority; p >= policy.MinPriority; p-- {
		out = append(out, priorityStream(tenant, p))
	}
	return out
}

// streamPriority is the priority of a stream of tenant's (a fact of the
// stream a message was read from, never a claim of its body).
func streamPriority(tenant, stream string) int {
	for p := policy.MinPriority; p <= policy.MaxPriority; p++ {
		if priorityStream(tenant, p) == stream {
			return p
		}
	}
	return policy.DefaultPriority
}
func deadKey(tenant string) string        { return fmt.Sprintf("fh:t:%s:dead", tenant) }
func delayedKey(tenant string) string     { return fmt.Sprintf("fh:t:%s:delayed", tenant) }
func runKey(tenant, run string) string    { return fmt.Sprintf("fh:t:%s:run:%s", tenant, run) }
func runsKey(tenant string) string        { return fmt.Sprintf("fh:t:%s:runs", tenant) }
func doneTopic(tenant string) string      { return fmt.Sprintf("fh:t:%s:done", tenant) }
func moduleKey(tenant, sha string) string { return fmt.Sprintf("fh:t:%s:mod:%s", tenant, sha) }
func cancelTopic(tenant string) string    { return fmt.Sprintf("fh:t:%s:cancel", tenant) }
func stepKey(tenant, run string, step int) string {
	return fmt.Sprintf("fh:t:%s:run:%s:step:%d", tenant, run, step)
}

func eventsKey(tenant, run string) string { return fmt.Sprintf("fh:t:%s:run:%s:events", tenant, run) }

// timesKey holds the times of a step's batches (BatchTime), by
// "index:attempt".
func timesKey(tenant, run string, step int) string { return stepKey(tenant, run, step) + ":times" }

// logsKey is a run's guest log lines, the latest maxLogLines.
func logsKey(tenant, run string) string { return fmt.Sprintf("fh:t:%s:run:%s:logs", tenant, run) }

// failedKey holds a run's failed calls (track.FailedCall), by Key.
func failedKey(tenant, run string) string { return fmt.Sprintf("fh:t:%s:run:%s:failed", tenant, run) }

// cacheKey is a result cache entry, under its tenant's keys: a tenant
// never reads another's results.
func cacheKey(tenant string, key cache.Key) string {
	return "fh:t:" + tenant + ":cache:" + key.String()
}

// cachePattern matches every cache entry of a tenant.
func cachePattern(tenant string) string { return fmt.Sprintf("fh:t:%s:cache:*", tenant) }

// cancelTopicTenant is the tenant whose cancel topic channel is, as the
// pattern cancelPattern matched it. fh:t:*:cancel also matches
// fh:t:acme:x:cancel, whose "tenant" is no valid name: not ok.
func cancelTopicTenant(channel string) (string, bool) {
	t, ok := strings.CutPrefix(channel, "fh:t:")
	if !ok {
		return "", false
	}
	if t, ok = strings.CutSuffix(t, ":cancel"); !ok || policy.CheckTenant(t) != nil {
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
