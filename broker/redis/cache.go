package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/policy"
)

// DefaultCacheTTL is how long a result stays in a tenant's cache after it
// was stored.
const DefaultCacheTTL = 7 * 24 * time.Hour

// CacheStore is a tenant's result cache on Redis (package cache): entries
// under the tenant's keys, sealed with their hash, each expiring ttl after
// it was stored. Redis's maxmemory policy (volatile-lru) bounds their
// total, evicting the least recently read first.
type CacheStore struct {
	rdb    goredis.UniversalClient
	k      keyspace
	tenant string
	ttl    time.Duration
}

var _ cache.Store = (*CacheStore)(nil)

// Get implements cache.Store. A corrupt entry is a miss, and removed.
func (s *CacheStore) Get(ctx context.Context, key cache.Key) ([]byte, bool, error) {
	b, err := s.rdb.Get(ctx, s.k.cacheKey(s.tenant, key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, ok := cache.Unseal(b)
	if !ok {
		s.rdb.Del(ctx, s.k.cacheKey(s.tenant, key))
		return nil, false, nil
	}
	return v, true, nil
}

// Put implements cache.Store.
func (s *CacheStore) Put(ctx context.Context, key cache.Key, value []byte) error {
	return s.rdb.Set(ctx, s.k.cacheKey(s.tenant, key), cache.Seal(value), s.ttl).Err()
}

// GetMany implements cache.Many: the entries of a batch in one command.
func (s *CacheStore) GetMany(ctx context.Context, keys []cache.Key) ([][]byte, error) {
	names := make([]string, 0, len(keys))
	at := make([]int, 0, len(keys))
	for i, k := range keys {
		if k != (cache.Key{}) {
			names, at = append(names, s.k.cacheKey(s.tenant, k)), append(at, i)
		}
	}
	out := make([][]byte, len(keys))
	if len(names) == 0 {
		return out, nil
	}
	vals, err := s.rdb.MGet(ctx, names...).Result()
	if err != nil {
		return nil, err
	}
	for j, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // a miss
		}
		if v, ok := cache.Unseal([]byte(str)); ok {
			out[at[j]] = v
		} else {
			s.rdb.Del(ctx, names[j]) // corrupt: a miss, removed
		}
	}
	return out, nil
}

// PutMany implements cache.Many: a batch's new results in one round trip.
func (s *CacheStore) PutMany(ctx context.Context, keys []cache.Key, values [][]byte) error {
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			p.Set(ctx, s.k.cacheKey(s.tenant, k), cache.Seal(values[i]), s.ttl)
		}
		return nil
	})
	return err
}

// cacheStore is the cache of a tenant's calls on this worker; nil when
// the worker caches nothing.
func (w *Worker) cacheStore(tenant string) cache.Store {
	if w.cfg.CacheTTL < 0 {
		return nil
	}
	ttl := w.cfg.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	return &CacheStore{rdb: w.rdb, k: w.k, tenant: tenant, ttl: ttl}
}

// CacheStats counts a tenant's cache entries and their bytes.
func (c *Client) CacheStats(ctx context.Context, tenant string) (cache.Stats, error) {
	var st cache.Stats
	if err := policy.CheckTenant(tenant); err != nil {
		return st, err
	}
	node, err := c.tenantNode(ctx, tenant)
	if err != nil {
		return st, err
	}
	iter := node.Scan(ctx, 0, c.k.cachePattern(tenant), 1000).Iterator()
	for iter.Next(ctx) {
		n, err := c.rdb.StrLen(ctx, iter.Val()).Result()
		if err == nil {
			st.Entries++
			st.Bytes += n
		}
	}
	return st, iter.Err()
}

// ClearCache removes a tenant's cache entries, returning how many.
func (c *Client) ClearCache(ctx context.Context, tenant string) (int, error) {
	if err := policy.CheckTenant(tenant); err != nil {
		return 0, err
	}
	n := 0
	node, err := c.tenantNode(ctx, tenant)
	if err != nil {
		return 0, err
	}
	iter := node.Scan(ctx, 0, c.k.cachePattern(tenant), 1000).Iterator()
	for iter.Next(ctx) {
		if c.rdb.Del(ctx, iter.Val()).Val() == 1 {
			n++
		}
	}
	return n, iter.Err()
}

// tenantNode is where a scan of tenant's keys runs: the server, or on a
// cluster the master that serves the tenant's slot (all its keys are
// there; a SCAN reads one node).
func (c *Client) tenantNode(ctx context.Context, tenant string) (goredis.Cmdable, error) {
	if cc, ok := c.rdb.(*goredis.ClusterClient); ok {
		return cc.MasterForKey(ctx, c.k.streamKey(tenant))
	}
	return c.rdb, nil
}
