package redis

import (
	"context"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/internal/redistest"
)

// tenantKeys are every key and channel name of one tenant, and of one of
// its runs.
func tenantKeys(k keyspace, tenant, run string) []string {
	keys := []string{k.deadKey(tenant), k.delayedKey(tenant), k.runKey(tenant, run), k.runsKey(tenant), k.doneTopic(tenant),
		k.moduleKey(tenant, strings.Repeat("ab", 32)), k.cancelTopic(tenant), k.stepKey(tenant, run, 3), k.eventsKey(tenant, run),
		k.timesKey(tenant, run, 3), k.logsKey(tenant, run), k.failedKey(tenant, run), k.cacheKey(tenant, cache.Key{}),
		k.semKey(tenant, "h"), k.bucketKey(tenant, "h"), k.schedulesKey(tenant), k.childrenKey(tenant, run), k.delayedIndex(tenant)}
	return append(keys, k.tenantStreams(tenant)...)
}

// TestKeyspace: on one server the names are what docs/distributed.md
// lists; on a cluster every key of a tenant is in the slot of its name,
// as a real cluster node computes it, and the cancel topic is read back.
func TestKeyspace(t *testing.T) {
	plain, tagged := keyspace{}, keyspace{tagged: true}
	for _, tc := range []struct{ got, want string }{
		{plain.streamKey("acme"), "fh:t:acme:q"},
		{plain.priorityStream("acme", 5), "fh:t:acme:q:p5"},
		{plain.stepKey("acme", "r1", 2), "fh:t:acme:run:r1:step:2"},
		{plain.timesKey("acme", "r1", 2), "fh:t:acme:run:r1:step:2:times"},
		{plain.moduleKey("acme", "ff"), "fh:t:acme:mod:ff"},
		{plain.cachePattern("acme"), "fh:t:acme:cache:*"},
		{tagged.streamKey("acme"), "fh:t:{acme}:q"},
		{tagged.stepKey("acme", "r1", 2), "fh:t:{acme}:run:r1:step:2"},
		{tagged.cachePattern("acme"), "fh:t:{acme}:cache:*"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s, want %s", tc.got, tc.want)
		}
	}
	for _, k := range []keyspace{plain, tagged} {
		for _, tenant := range []string{"acme", "default", "a-b_c9"} {
			if got, ok := k.cancelTopicTenant(k.cancelTopic(tenant)); !ok || got != tenant {
				t.Errorf("tagged %v: cancel topic of %s read back as %q, %v", k.tagged, tenant, got, ok)
			}
		}
	}
	if _, ok := tagged.cancelTopicTenant("fh:t:{acme:cancel"); ok {
		t.Error("a tagged cancel topic without its closing brace was read")
	}
	node := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	rdb := node.Client()
	ctx := context.Background()
	slots := map[string]int64{}
	for _, tenant := range []string{"acme", "bravo", "default"} {
		for _, key := range tenantKeys(tagged, tenant, "1a0000000000000000000aa") {
			slot, err := rdb.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if want, seen := slots[tenant]; seen && slot != want {
				t.Errorf("%s is in slot %d, the tenant's other keys in %d", key, slot, want)
			}
			slots[tenant] = slot
		}
	}
	if slots["acme"] == slots["bravo"] && slots["bravo"] == slots["default"] {
		t.Error("three tenants in one slot")
	}
}
