package redis

import (
	"context"
	"slices"
	"sync"
	"time"
)

// sched holds the messages a worker has read but not started, and
// starts them fairly: when a slot frees, the next message is the
// tenant's of the oldest message of the tenant running the fewest calls
// here, among the tenants below their max_concurrent; of that tenant's
// messages, the oldest of the highest priority. Priorities order one
// tenant's work, never one tenant's before another's. The reader reads a tenant's stream only when
// none of its messages waits here, so a tenant's flood waits in Redis,
// not in front of another tenant's messages.
type sched struct {
	w       *Worker
	mu      sync.Mutex
	cond    *sync.Cond
	buf     []delivery
	waiting map[string]int // tenant → messages in buf
	running map[string]int // tenant → messages being handled
	closed  bool
	changed chan struct{} // a message started or ended
}

func newSched(w *Worker) *sched {
	s := &sched{w: w, waiting: map[string]int{}, running: map[string]int{}, changed: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// limit is a tenant's max_concurrent on this worker (0: none).
func (s *sched) limit(tenant string) int {
	if p, err := s.w.cfg.Tenants.Policy(tenant); err == nil {
		return int(p.MaxConcurrent)
	}
	return 0
}

func (s *sched) atLimit(tenant string) bool {
	l := s.limit(tenant)
	return l > 0 && s.running[tenant] >= l
}

// add queues read messages.
func (s *sched) add(ds []delivery) {
	if len(ds) == 0 {
		return
	}
	s.mu.Lock()
	for _, d := range ds {
		s.w.track(d.stream, d.id, true)
		s.buf = append(s.buf, d)
		s.waiting[d.tenant]++
	}
	s.mu.Unlock()
	s.cond.Broadcast()
}

// next blocks until a message may start, and returns it; false once the
// scheduler is closed.
func (s *sched) next() (delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return delivery{}, false
		}
		best := -1
		for i, d := range s.buf {
			if s.atLimit(d.tenant) {
				continue
			}
			if best < 0 || s.running[d.tenant] < s.running[s.buf[best].tenant] {
				best = i
			}
		}
		if best >= 0 {
			tenant := s.buf[best].tenant
			for i := best + 1; i < len(s.buf); i++ {
				if s.buf[i].tenant == tenant && s.buf[i].priority > s.buf[best].priority {
					best = i
				}
			}
			d := s.buf[best]
			s.buf = slices.Delete(s.buf, best, best+1)
			s.waiting[d.tenant]--
			s.running[d.tenant]++
			s.signal()
			return d, true
		}
		s.cond.Wait()
	}
}

// done ends a message started by next.
func (s *sched) done(d delivery) {
	s.mu.Lock()
	s.running[d.tenant]--
	s.mu.Unlock()
	s.w.track(d.stream, d.id, false)
	s.cond.Broadcast()
	s.signal()
}

func (s *sched) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// readable is which of tenants the reader should read now: those with
// no message waiting here and below their max_concurrent.
func (s *sched) readable(tenants []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(tenants))
	for _, t := range tenants {
		if s.waiting[t] == 0 && !s.atLimit(t) {
			out = append(out, t)
		}
	}
	return out
}

// othersWaiting reports whether a message of another tenant than t
// waits here and could start if a slot were free: a long batch of t
// should then yield its slot.
func (s *sched) othersWaiting(t string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.buf {
		if d.tenant != t && !s.atLimit(d.tenant) {
			return true
		}
	}
	return false
}

// pause waits until a message starts or ends, or for at most d.
func (s *sched) pause(ctx context.Context, d time.Duration) {
	select {
	case <-s.changed:
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// close stops starting messages and returns those that never started.
func (s *sched) close() []delivery {
	s.mu.Lock()
	s.closed = true
	left := s.buf
	s.buf = nil
	s.mu.Unlock()
	s.cond.Broadcast()
	for _, d := range left {
		s.w.track(d.stream, d.id, false)
	}
	return left
}
