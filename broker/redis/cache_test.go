package redis

import (
	"context"
	"testing"
	"time"

	"github.com/flowhost/flowhost/cache"
)

// TestCacheTenants: a tenant's cache entries live under its own keys:
// another tenant's lookups of the same keys miss, one at a time or many.
func TestCacheTenants(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	acme := &CacheStore{rdb: f.client.rdb, tenant: "acme", ttl: time.Hour}
	bravo := &CacheStore{rdb: f.client.rdb, tenant: "bravo", ttl: time.Hour}
	keys := []cache.Key{{1}, {2}}
	if err := acme.PutMany(ctx, keys, [][]byte{[]byte(`1`), []byte(`2`)}); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := acme.Get(ctx, keys[0]); !ok || string(v) != "1" {
		t.Fatalf("acme's own entry: %s %v", v, ok)
	}
	if _, ok, _ := bravo.Get(ctx, keys[0]); ok {
		t.Fatal("bravo read acme's entry")
	}
	if vs, _ := bravo.GetMany(ctx, keys); vs[0] != nil || vs[1] != nil {
		t.Fatal("bravo read acme's entries")
	}
	// A corrupt entry (its tenant may write its keys) is a miss, removed.
	f.client.rdb.Set(ctx, f.client.k.cacheKey("acme", keys[1]), "not sealed", time.Hour)
	if vs, _ := acme.GetMany(ctx, keys); vs[0] == nil || vs[1] != nil {
		t.Fatalf("after corruption: %q", vs)
	}
	if n := f.client.rdb.Exists(ctx, f.client.k.cacheKey("acme", keys[1])).Val(); n != 0 {
		t.Fatal("the corrupt entry was kept")
	}
	st, err := f.client.CacheStats(ctx, "acme")
	if err != nil || st.Entries != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if n, _ := f.client.ClearCache(ctx, "bravo"); n != 0 {
		t.Fatalf("clearing bravo removed %d of acme's", n)
	}
	var _ cache.Many = acme
}
