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

// Many is a Store that also reads and writes many entries in one round
// trip (the Redis store); Batch uses it when it can.
type Many interface {
	Store
	// GetMany returns the values of keys, nil for a miss.
	GetMany(ctx context.Context, keys []Key) ([][]byte, error)
	// PutMany stores values under keys.
	PutMany(ctx context.Context, keys []Key, values [][]byte) error
}

// Batch is the calls of one task on a batch of inputs through a store:
// their entries looked up at once (one round trip on Redis), the new
// results stored at once by Flush.
type Batch struct {
	store Store
	task  *host.Task
	lim   host.Limits
	keys  []Key // zero for an input that is not cacheable
	canon [][]byte
	got   [][]byte
	put   []Key
	vals  [][]byte
}

// NewBatch looks up the entries of t's calls on inputs under lim. A nil
// store, or calls that are not Cacheable, make a batch that just calls.
//
// A cacheable call is given its input's canonical JSON, the bytes its key
// is made of: two inputs that differ only in spacing, key order or the
// spelling of a number share an entry, so the task must have seen the
// same bytes for both.
func NewBatch(ctx context.Context, store Store, t *host.Task, lim host.Limits, inputs [][]byte) *Batch {
	b := &Batch{task: t, lim: lim}
	if store == nil || !Cacheable(ctx, t, lim) {
		return b
	}
	b.store = store
	grants := ""
	if lim.Grants != nil && !lim.Grants.Empty() {
		g, _ := json.Marshal(lim.Grants)
		grants = string(g)
	}
	prefix := keyPrefix(t.Module().SHA256, t.Spec.Export, grants)
	b.keys, b.canon = make([]Key, len(inputs)), make([][]byte, len(inputs))
	for i, in := range inputs {
		if c, err := Canonical(in); err == nil { // not JSON: the task refuses it, uncached
			b.keys[i], b.canon[i] = prefix.key(c), c
		}
	}
	if m, ok := store.(Many); ok {
		b.got, _ = m.GetMany(ctx, b.keys)
	} else {
		b.got = make([][]byte, len(inputs))
		for i, k := range b.keys {
			if k != (Key{}) {
				b.got[i], _, _ = store.Get(ctx, k)
			}
		}
	}
	if len(b.got) != len(inputs) {
		b.got = make([][]byte, len(inputs)) // a failed lookup: every call runs
	}
	return b
}

// Cached reports whether call i goes through the cache: a miss of it is
// stored.
func (b *Batch) Cached(i int) bool { return b.store != nil && b.keys[i] != (Key{}) }

// Hit returns the stored result of call i, when there is one the task
// could have given.
func (b *Batch) Hit(i int) ([]byte, bool) {
	if b.store == nil || b.got == nil || b.keys[i] == (Key{}) {
		return nil, false
	}
	// A stored result is checked as the task's own output is: one stored
	// by a call with a larger max_output, or planted where a tenant may
	// write (its Redis keys: the seal is a checksum, not a signature), is
	// not returned; the call runs, and fails or succeeds as it must.
	v := b.got[i]
	if v == nil || (b.lim.MaxOutput != 0 && uint64(len(v)) > b.lim.MaxOutput) || b.task.CheckOutput(v) != nil {
		return nil, false
	}
	return v, true
}

// Sub is the batch of b's calls idx, to run them where b looked them up
// (the in-process runner serves hits itself and hands the misses on): it
// shares b's keys and looks nothing up again, and stores its own new
// results.
func (b *Batch) Sub(idx []int) *Batch {
	s := &Batch{store: b.store, task: b.task, lim: b.lim}
	if b.store == nil {
		return s
	}
	s.keys, s.canon = make([]Key, len(idx)), make([][]byte, len(idx))
	for k, i := range idx {
		s.keys[k], s.canon[k] = b.keys[i], b.canon[i]
	}
	return s
}

// Input is the input call i runs on: its canonical form when the call
// goes through the cache (the bytes its key is made of), else input.
func (b *Batch) Input(i int, input []byte) []byte {
	if b.store != nil && b.keys[i] != (Key{}) {
		return b.canon[i]
	}
	return input
}

// Call runs call i of the batch, on input (inputs[i]): the stored result
// when there is one (hit), else the call, whose result is kept for Flush
// when it succeeded. Failures are never stored. st is what the call took
// (zero for a hit).
func (b *Batch) Call(ctx context.Context, i int, input []byte) (out []byte, hit bool, st host.CallStats, err error) {
	if b.store == nil || b.keys[i] == (Key{}) {
		out, st, err = b.task.CallWithStats(ctx, input, b.lim)
		return out, false, st, err
	}
	if v, ok := b.Hit(i); ok {
		return v, true, st, nil
	}
	out, st, err = b.task.CallWithStats(ctx, b.Input(i, input), b.lim)
	if err == nil {
		b.put, b.vals = append(b.put, b.keys[i]), append(b.vals, out)
	}
	return out, false, st, err
}

// Flush stores the batch's new results (a result not stored is computed
// again next time, no more).
func (b *Batch) Flush(ctx context.Context) {
	if len(b.put) == 0 {
		return
	}
	if m, ok := b.store.(Many); ok {
		_ = m.PutMany(ctx, b.put, b.vals)
	} else {
		for i, k := range b.put {
			_ = b.store.Put(ctx, k, b.vals[i])
		}
	}
	b.put, b.vals = nil, nil
}

// Call runs t on input under lim through store: a batch of one.
func Call(ctx context.Context, store Store, t *host.Task, input []byte, lim host.Limits) (out []byte, hit bool, err error) {
	b := NewBatch(ctx, store, t, lim, [][]byte{input})
	out, hit, _, err = b.Call(ctx, 0, input)
	b.Flush(ctx)
	return out, hit, err
}
