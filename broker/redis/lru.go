package redis

import "container/list"

// lru is a map of at most max entries that forgets the least recently
// used one to make room: what a worker caches of runs it reads from
// Redis, so that runs a tenant never ends cannot grow its memory.
// Not safe for concurrent use (the worker's mutex guards it).
type lru[V any] struct {
	max   int
	order *list.List // front: most recently used; values are keys
	items map[string]*list.Element
	vals  map[string]V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: map[string]*list.Element{}, vals: map[string]V{}}
}

func (c *lru[V]) get(k string) (V, bool) {
	e, ok := c.items[k]
	if ok {
		c.order.MoveToFront(e)
	}
	return c.vals[k], ok
}

func (c *lru[V]) put(k string, v V) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		c.vals[k] = v
		return
	}
	for c.order.Len() >= c.max {
		last := c.order.Back()
		c.remove(last.Value.(string))
	}
	c.items[k] = c.order.PushFront(k)
	c.vals[k] = v
}

func (c *lru[V]) remove(k string) {
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
		delete(c.vals, k)
	}
}

func (c *lru[V]) len() int { return c.order.Len() }
