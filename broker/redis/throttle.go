package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/runner"
)

// This file is concurrency keys and rate limits on Redis. A key's slots
// are a sorted set of holders scored by when their lease ends; a rate is
// a token bucket in a hash. Both are the tenant's keys, shared by every
// worker and every run of the tenant. A batch takes, in one script, a
// slot of each key its calls need and a token per call, for the longest
// prefix of its calls it can; the rest waits in the tenant's delayed
// set, holding no worker, and comes back when a token is due or after
// slotPoll.

func (k keyspace) semKey(tenant, key string) string    { return k.prefix(tenant) + ":sem:" + key }
func (k keyspace) bucketKey(tenant, key string) string { return k.prefix(tenant) + ":rate:" + key }

// slotPoll is how soon calls waiting for a concurrency slot look again.
const slotPoll = 50 * time.Millisecond

// maxThrottleWait bounds how long calls wait before they look again.
const maxThrottleWait = time.Minute

// throttleScript takes what a batch's calls need, in order, for the
// longest prefix it can: one slot of each concurrency key (a batch runs
// its calls one after another, so one slot a key is all it uses) and
// one token per call. It returns the prefix's length and, when a token
// stopped it, the milliseconds until one is due (0: a slot stopped it).
// KEYS: the slots' sets, then the buckets. ARGV: now (ms), the slots'
// lease end (ms), the holder, the limit, tokens per ms, the burst, the
// number of slot keys, of bucket keys, then per call its slot key's and
// bucket key's index (1-based, 0 for none).
var throttleScript = goredis.NewScript(`
local now, expiry, holder, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local rate, burst, nsem, nrate = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local tokens, held = {}, {}
for r = 1, nrate do
  local b = redis.call('HMGET', KEYS[nsem + r], 't', 'ts')
  local t, ts = tonumber(b[1]), tonumber(b[2])
  -- a bucket its tenant wrote may hold anything: start it afresh
  if t == nil or ts == nil or t ~= t or t < 0 or t > burst or ts > now + 60000 then t, ts = burst, now end
  tokens[r] = math.min(burst, t + math.max(0, now - ts) * rate)
end
local k, wait = 0, 0
for i = 9, #ARGV, 2 do
  local c, r = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local took = false
  if c > 0 and not held[c] then
    redis.call('ZREMRANGEBYSCORE', KEYS[c], '-inf', now)
    if redis.call('ZSCORE', KEYS[c], holder) == false and redis.call('ZCARD', KEYS[c]) >= limit then break end
    redis.call('ZADD', KEYS[c], expiry, holder)
    held[c], took = true, true
  end
  if r > 0 then
    if tokens[r] < 1 then
      wait = math.ceil((1 - tokens[r]) / rate)
      if took then redis.call('ZREM', KEYS[c], holder); held[c] = nil end
      break
    end
    tokens[r] = tokens[r] - 1
  end
  k = k + 1
end
for r = 1, nrate do
  redis.call('HSET', KEYS[nsem + r], 't', tostring(tokens[r]), 'ts', ARGV[1])
  redis.call('PEXPIRE', KEYS[nsem + r], math.max(2000, math.ceil(2 * burst / rate)))
end
for c = 1, nsem do
  if held[c] then redis.call('PEXPIRE', KEYS[c], math.max(1000, tonumber(expiry) - now) * 4) end
end
return {k, wait}
`)

// releaseScript gives back a batch's slots. KEYS: the slots' sets. ARGV: the holder.
var releaseScript = goredis.NewScript(`
for _, k in ipairs(KEYS) do redis.call('ZREM', k, ARGV[1]) end
return 1
`)

// renewScript extends the lease of a batch's slots. KEYS: the slots'
// sets. ARGV: the holder, the new lease end (ms).
var renewScript = goredis.NewScript(`
for _, k in ipairs(KEYS) do redis.call('ZADD', k, 'XX', ARGV[2], ARGV[1]) end
return 1
`)

// throttled is what a batch holds: its slots, by holder, renewed by the
// heartbeats until released.
type throttled struct {
	holder string
	sems   []string
}

// throttle takes slots and tokens for the batch's calls (inputs, of
// task, under th): it returns how many of them, from the first, may run
// now, what they hold (to give back with release), and, when not all
// may, when to look again. keyErr is the failure of call n's key, when
// the calls before it may all run and it cannot (its key's expression
// failed); err is Redis's.
func (w *Worker) throttle(ctx context.Context, tenant string, th *dag.Throttle, task *host.Task, rs *runState, inputs [][]byte, holder string) (n int, held *throttled, again time.Duration, keyErr, err error) {
	semIdx, rateIdx := map[string]int{}, map[string]int{}
	var sems, rates []string
	args := []any{}
	keyer := runner.NewKeyer(th, task, rs.spec.Inputs)
	for i, in := range inputs {
		conc, rate, err := keyer.Keys(in)
		if err != nil {
			if i == 0 {
				return 0, nil, 0, err, nil
			}
			inputs, keyErr = inputs[:i], err // the calls before it may run
			break
		}
		c, r := 0, 0
		if conc != "" {
			if c = semIdx[conc]; c == 0 {
				sems = append(sems, w.k.semKey(tenant, conc))
				c = len(sems)
				semIdx[conc] = c
			}
		}
		if rate != "" {
			if r = rateIdx[rate]; r == 0 {
				rates = append(rates, w.k.bucketKey(tenant, rate))
				r = len(rates)
				rateIdx[rate] = r
			}
		}
		args = append(args, c, r)
	}
	now := time.Now()
	perMS := th.Rate / 1000
	if perMS == 0 {
		perMS = 1 // no rate: no bucket is named
	}
	head := []any{now.UnixMilli(), now.Add(w.cfg.Lease).UnixMilli(), holder, max(th.Limit, 1), strconv.FormatFloat(perMS, 'g', -1, 64),
		strconv.FormatFloat(runner.RateBurst(th.Rate), 'g', -1, 64), len(sems), len(rates)}
	res, err := throttleScript.Run(ctx, w.rdb, append(sems, rates...), append(head, args...)...).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, nil, 0, nil, fmt.Errorf("throttle: %v", err)
	}
	n = int(res[0])
	if n < len(inputs) {
		keyErr = nil // the bad key's call waits its turn with the others
		again = time.Duration(min(max(res[1], 0), maxThrottleWait.Milliseconds())) * time.Millisecond
		if again == 0 {
			again = slotPoll/2 + rand.N(slotPoll) // jittered: the waiting batches do not all look at once
		}
	}
	held = &throttled{holder: holder, sems: sems}
	if len(sems) > 0 {
		w.mu.Lock()
		w.held[holder] = held
		w.mu.Unlock()
	}
	return n, held, again, keyErr, nil
}

// release gives back what a batch held, when its last script did not.
func (w *Worker) release(ctx context.Context, held *throttled) {
	if held == nil || len(held.sems) == 0 {
		return
	}
	w.forgetHeld(held)
	w.wrote(ctx, "slot release", releaseScript.Run(ctx, w.rdb, held.sems, held.holder).Err())
}

// forgetHeld stops renewing what a batch held (it was given back).
func (w *Worker) forgetHeld(held *throttled) {
	if held == nil {
		return
	}
	w.mu.Lock()
	delete(w.held, held.holder)
	w.mu.Unlock()
}

// renewSlots extends the leases of the slots the running batches hold.
func (w *Worker) renewSlots(ctx context.Context) {
	w.mu.Lock()
	list := make([]*throttled, 0, len(w.held))
	for _, h := range w.held {
		list = append(list, h)
	}
	w.mu.Unlock()
	for _, h := range list {
		w.wrote(ctx, "slot lease", renewScript.Run(ctx, w.rdb, h.sems, h.holder, time.Now().Add(w.cfg.Lease).UnixMilli()).Err())
	}
}
