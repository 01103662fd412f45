package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
)

// CallKeys are the concurrency key and the rate key of a call with this
// input under th: the rule of both drivers. conc is "" without a
// concurrency key; rate is "" without a rate, else the key's value, or
// the task (its module's sha256 and name) for a rate per task. Each is
// hashed: a key's value may be long, and it names a Redis key.
func CallKeys(th *dag.Throttle, task *host.Task, flow pipeline.Inputs, input []byte) (conc, rate string, err error) {
	return NewKeyer(th, task, flow).Keys(input)
}

// Keyer gives the keys (CallKeys) of a step's calls of one task; a key
// that reads no variable, and a rate per task, are worked out once.
type Keyer struct {
	th         *dag.Throttle
	task       *host.Task
	flow       pipeline.Inputs
	conc, rate string // the constant ones, once known
	// inputs are the flow inputs each key reads, built once per keyer.
	inputs map[*expr.Program]json.RawMessage
}

// NewKeyer makes the keyer of task's calls under th.
func NewKeyer(th *dag.Throttle, task *host.Task, flow pipeline.Inputs) *Keyer {
	return &Keyer{th: th, task: task, flow: flow}
}

// Keys are the keys of the call with input.
func (k *Keyer) Keys(input []byte) (conc, rate string, err error) {
	th := k.th
	if th == nil {
		return "", "", nil
	}
	key := func(p *expr.Program, kind string, memo *string) (string, error) {
		if *memo != "" {
			return *memo, nil
		}
		in, ok := k.inputs[p]
		if !ok {
			if k.inputs == nil {
				k.inputs = map[*expr.Program]json.RawMessage{}
			}
			in = inputsObject(p, k.flow)
			k.inputs[p] = in
		}
		v, err := p.Key(expr.Vars{"inputs": in, "args": input})
		if err != nil {
			return "", err
		}
		h := keyHash(kind, v)
		if p.Constant() {
			*memo = h
		}
		return h, nil
	}
	if th.Key != nil {
		if conc, err = key(th.Key, "c", &k.conc); err != nil {
			return "", "", err
		}
	}
	if th.Rate > 0 {
		switch {
		case th.RateKey != nil:
			rate, err = key(th.RateKey, "r", &k.rate)
		case k.rate != "":
			rate = k.rate
		default:
			k.rate = keyHash("t", k.task.Module().SHA256+"/"+k.task.Spec.Name)
			rate = k.rate
		}
	}
	return conc, rate, err
}

func keyHash(kind, v string) string {
	sum := sha256.Sum256([]byte(v))
	return kind + hex.EncodeToString(sum[:12])
}

// RateBurst is the most tokens a rate's bucket holds: a tenth of a
// second's worth, at least one. A rate is held over any window, not
// just on average: N/s never lets through much more than N in a second.
func RateBurst(rate float64) float64 { return max(1, rate/10) }

// Limiter holds the concurrency slots and rate buckets of a process's
// runs: at most a key's limit of calls hold its slots at once, and a
// rate's calls start no faster than its tokens come. Safe for
// concurrent use; a Host's runners share one.
type Limiter struct {
	mu      sync.Mutex
	held    map[string]int
	buckets map[string]*bucket
	waiters []func()
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter makes an empty limiter.
func NewLimiter() *Limiter {
	return &Limiter{held: map[string]int{}, buckets: map[string]*bucket{}}
}

// maxBuckets bounds the rate buckets kept; full ones are forgotten first.
const maxBuckets = 100000

// take takes a slot of conc (limit) and a token of rate (per second),
// both or neither. When it cannot, wait is how long until a token comes
// (0: waiting for a slot).
func (l *Limiter) take(conc string, limit int, rate string, perSec float64, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if conc != "" && l.held[conc] >= limit {
		return false, 0
	}
	if rate != "" {
		b := l.buckets[rate]
		burst := RateBurst(perSec)
		if b == nil {
			if len(l.buckets) >= maxBuckets {
				for k, old := range l.buckets {
					if old.tokens+now.Sub(old.last).Seconds()*perSec >= burst {
						delete(l.buckets, k)
					}
				}
			}
			b = &bucket{tokens: burst, last: now}
			l.buckets[rate] = b
		}
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*perSec)
		b.last = now
		if b.tokens < 1 {
			return false, time.Duration((1 - b.tokens) / perSec * float64(time.Second))
		}
		b.tokens--
	}
	if conc != "" {
		l.held[conc]++
	}
	return true, 0
}

// give gives back a slot of conc and wakes the fan-outs waiting for one.
func (l *Limiter) give(conc string) {
	if conc == "" {
		return
	}
	l.mu.Lock()
	if l.held[conc]--; l.held[conc] <= 0 {
		delete(l.held, conc)
	}
	ws := l.waiters
	l.waiters = nil
	l.mu.Unlock()
	for _, w := range ws {
		w()
	}
}

// wait calls wake, once, when a slot is given back.
func (l *Limiter) wait(wake func()) {
	l.mu.Lock()
	l.waiters = append(l.waiters, wake)
	l.mu.Unlock()
}

// keyQueue is a throttled fan-out's calls of one concurrency and rate
// key, in order.
type keyQueue struct {
	conc, rate string
	calls      []int
}

// throttleQueue is a throttled fan-out's calls waiting to start, one
// queue per key: a call waiting for its key never holds back another
// key's.
type throttleQueue struct {
	queues []*keyQueue
	byKey  map[string]*keyQueue
	turn   int
}

func (q *throttleQueue) push(i int, conc, rate string) {
	if q.byKey == nil {
		q.byKey = map[string]*keyQueue{}
	}
	k := conc + "\x00" + rate
	kq := q.byKey[k]
	if kq == nil {
		kq = &keyQueue{conc: conc, rate: rate}
		q.byKey[k] = kq
		q.queues = append(q.queues, kq)
	}
	kq.calls = append(kq.calls, i)
}

func (q *throttleQueue) empty() bool { return len(q.queues) == 0 }

// next takes a call that may start now, with its slot and token, taking
// keys in turn. When none may, wait is how long until a token comes (0:
// only slots are awaited).
func (q *throttleQueue) next(l *Limiter, th *dag.Throttle) (i int, conc string, ok bool, wait time.Duration) {
	now := time.Now()
	blocked := map[string]bool{} // rates without a token, this look
	for n := 0; n < len(q.queues); n++ {
		if q.turn >= len(q.queues) {
			q.turn = 0
		}
		kq := q.queues[q.turn]
		if kq.rate != "" && blocked[kq.rate] {
			q.turn++
			continue
		}
		got, w := l.take(kq.conc, th.Limit, kq.rate, th.Rate, now)
		if !got {
			if w > 0 {
				blocked[kq.rate] = true
				if wait == 0 || w < wait {
					wait = w
				}
			}
			q.turn++
			continue
		}
		i = kq.calls[0]
		if kq.calls = kq.calls[1:]; len(kq.calls) == 0 {
			delete(q.byKey, kq.conc+"\x00"+kq.rate)
			q.queues = append(q.queues[:q.turn], q.queues[q.turn+1:]...)
		} else {
			q.turn++
		}
		return i, kq.conc, true, 0
	}
	return 0, "", false, wait
}
