package cache

import (
	"context"
	"encoding/json"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/policy"
)

// Cacheable reports whether calls of t under lim may be served from the
// cache: when the flow opted in (policy.CacheOn: the user's promise that
// its grants do not change the result), or by default when every call of
// t starts from the same guest state (host.Task.Pure) and no grant lets
// the outside world in. policy.CacheOff never caches.
func Cacheable(ctx context.Context, t *host.Task, lim host.Limits) bool {
	switch lim.Cache {
	case policy.CacheOff:
		return false
	case policy.CacheOn:
		return true
	}
	return (lim.Grants == nil || lim.Grants.Empty()) && t.Pure(ctx, lim)
}

// Counts are what a batch of calls did with the cache.
type Counts struct {
	Hits, Misses int
}

// Call runs t on input under lim through store: the stored result when
// there is one, else the call, whose result is stored when it succeeded
// (failures are never stored). A nil store, or a call that is not
// Cacheable, just calls. hit reports a result from the store.
//
// A cacheable call is given its input's canonical JSON, the bytes its key
// is made of: two inputs that differ only in spacing, key order or the
// spelling of a number share an entry, so the task must have seen the
// same bytes for both.
func Call(ctx context.Context, store Store, t *host.Task, input []byte, lim host.Limits) (out []byte, hit bool, err error) {
	if store == nil || !Cacheable(ctx, t, lim) {
		out, err = t.Call(ctx, input, lim)
		return out, false, err
	}
	grants := ""
	if lim.Grants != nil && !lim.Grants.Empty() {
		g, _ := json.Marshal(lim.Grants)
		grants = string(g)
	}
	canon, cerr := Canonical(input)
	if cerr != nil { // not JSON: the task refuses it, uncached
		out, err = t.Call(ctx, input, lim)
		return out, false, err
	}
	key := keyOf(t.Module().SHA256, t.Spec.Export, canon, grants)
	if v, ok, _ := store.Get(ctx, key); ok {
		return v, true, nil
	}
	out, err = t.Call(ctx, canon, lim)
	if err == nil {
		_ = store.Put(ctx, key, out) // a result not stored is computed again, no more
	}
	return out, false, err
}
