package redis

import goredis "github.com/redis/go-redis/v9"

// startScript enqueues a step's call batches once, and acknowledges the
// message that started it. A step of one batch is run by the worker that
// started it (inline): its batch is not enqueued, and the message that
// started the step stays pending until the batch's result is stored in
// its place (completeScript acknowledges it), so a worker that dies
// running it leaves that message to be delivered again, and the batch
// to be run again (return 2).
// KEYS: step hash, stream, events stream. ARGV: total calls, ttl ms, next
// message (sent at once when there is no call), start time, started
// event, finished event (for a step with no call), the message id, the
// worker's name, "1" to run a single batch inline, the run's run_started
// event when the step starts the run (KEYS[4], its hash), or "", then one
// message per batch.
// Returns 0 (started before: nothing to do), 1 (started: batches
// enqueued), 2 (started inline before, its batch not done: run it) or 3
// (started now, inline: run the batch).
var startScript = goredis.NewScript(runningLua + `
if ARGV[10] ~= '' then set_running(KEYS[4], KEYS[3], ARGV[4], ARGV[10]) end
if redis.call('HSETNX', KEYS[1], 'started', 1) == 0 then
  if redis.call('HGET', KEYS[1], 'inline') == '1' and redis.call('HEXISTS', KEYS[1], 'b:0') == 0 then return 2 end
  redis.call('XACK', KEYS[2], 'workers', ARGV[7])
  return 0
end
local n = #ARGV - 10
redis.call('HSET', KEYS[1], 'left', n, 'total', ARGV[1], 'done', 0, 'started_at', ARGV[4], 'worker', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
if n == 0 then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[4])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', ARGV[6])
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[3])
end
if n == 1 and ARGV[9] == '1' then
  redis.call('HSET', KEYS[1], 'inline', 1)
  return 3
end
for i = 11, #ARGV do redis.call('XADD', KEYS[2], '*', 'm', ARGV[i]) end
redis.call('XACK', KEYS[2], 'workers', ARGV[7])
return 1
`)

// endRunLua ends a run once, if it is still pending or running, and, for
// a sub-flow's run, tells its parent on the stream its hash names, when
// that is one of the tenant's (ARGV[first] on). endScript and
// completeScript (for a run its last batch ends) share it.
const endRunLua = `
local function end_run(run, events, status, result, err, finished, ttl, topic, id, ev, first)
  local st = redis.call('HGET', run, 'status')
  if st ~= 'pending' and st ~= 'running' then return 0 end
  redis.call('HSET', run, 'status', status, 'result', result, 'error', err, 'finished_at', finished)
  redis.call('PEXPIRE', run, ttl)
  redis.call('XADD', events, 'MAXLEN', '~', 10000, '*', 'e', ev)
  redis.call('PEXPIRE', events, ttl)
  redis.call('PUBLISH', topic, id)
  local p = redis.call('HMGET', run, 'parent', 'parent_step', 'parent_stream')
  local step = tonumber(p[2])
  if p[1] and step and p[3] and step >= 1 and step <= 100000 and step == math.floor(step) then
    for i = first, #ARGV do
      if ARGV[i] == p[3] then
        redis.call('XADD', p[3], '*', 'm', cjson.encode({k = 'child', r = p[1], s = step - 1}))
        break
      end
    end
  end
  return 1
end
`

// completeScript stores a batch's result once and counts it down; the
// batch that brings the count to zero records the step's step_finished
// event (ARGV[8], with the step's counts filled in) and enqueues the next
// message, or, when it carries the run's result (ARGV[17]: it is the
// whole of the run's last step, ARGV[18] calls), ends the run itself;
// every other batch records a step_progress event. A batch
// that yielded its slot part way stores what it did and enqueues the rest
// as a batch of its own, leaving the count as it was. The delivered
// message is acknowledged in the same step. A batch that ends after its
// step's hash expired stores nothing (which would leave a key without a
// TTL).
// A remainder with a due time (a retry) waits in the delayed set instead.
// KEYS: step hash, stream, events stream, delayed set, delayed index,
// the step's batch times, the run hash.
// ARGV: batch field, result, next message, message id, calls done, failed
// calls, now (RFC 3339), the step's finished event, the remainder message
// (or ""), its due time in Unix ms (or ""), the tenant, the fuel the
// batch burned, the most memory one of its calls ended with, the batch's
// field in the step's times hash (KEYS[6], at most 2,000 batches) and its
// times (BatchTime), and the holder of the concurrency slots the batch
// gives back (KEYS[8] on, the slots' sets), or "", then the run's result
// (or ""), the calls of the step it assumes, the run's ttl ms, done
// topic, id and finished event, the batch's calls whose result came from
// the cache, and the tenant's streams.
var completeScript = goredis.NewScript(endRunLua + `
redis.call('XACK', KEYS[2], 'workers', ARGV[4])
for i = 8, #KEYS do redis.pcall('ZREM', KEYS[i], ARGV[16]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'done', ARGV[5])
if ARGV[23] ~= '0' then redis.call('HINCRBY', KEYS[1], 'cached', ARGV[23]) end
if ARGV[6] ~= '0' then redis.call('HINCRBY', KEYS[1], 'failed', ARGV[6]) end
if ARGV[12] ~= '0' then redis.call('HINCRBY', KEYS[1], 'fuel', ARGV[12]) end
if tonumber(ARGV[13]) > tonumber(redis.call('HGET', KEYS[1], 'peak_memory') or '0') then redis.call('HSET', KEYS[1], 'peak_memory', ARGV[13]) end
if redis.call('HLEN', KEYS[6]) < 2000 then
  redis.call('HSET', KEYS[6], ARGV[14], ARGV[15])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
end
if ARGV[9] ~= '' then
  if ARGV[10] ~= '' then
    redis.call('ZADD', KEYS[4], ARGV[10], ARGV[9])
    redis.call('ZADD', KEYS[5], 'LT', ARGV[10], ARGV[11])
  else
    redis.call('XADD', KEYS[2], '*', 'm', ARGV[9])
  end
  return tonumber(redis.call('HGET', KEYS[1], 'left'))
end
local left = redis.call('HINCRBY', KEYS[1], 'left', -1)
local ev = cjson.decode(ARGV[8])
ev['total'] = tonumber(redis.call('HGET', KEYS[1], 'total'))
ev['done'] = tonumber(redis.call('HGET', KEYS[1], 'done'))
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
if failed > 0 then ev['failed'] = failed end
local cached = tonumber(redis.call('HGET', KEYS[1], 'cached') or '0')
if cached > 0 then ev['cached'] = cached end
local fuel = tonumber(redis.call('HGET', KEYS[1], 'fuel') or '0')
if fuel > 0 then ev['fuel'] = fuel end
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak_memory') or '0')
if peak > 0 then ev['peak_memory'] = peak end
if left == 0 then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[7])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', cjson.encode(ev))
  if ARGV[17] ~= '' and ev['total'] == tonumber(ARGV[18]) then
    end_run(KEYS[7], KEYS[3], 'succeeded', ARGV[17], '', ARGV[7], ARGV[19], ARGV[20], ARGV[21], ARGV[22], 24)
    return -3
  end
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[3])
else
  ev['type'] = 'step_progress'
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', cjson.encode(ev))
end
return left
`)

// advanceScript marks a dataflow node done once: it counts down each
// dependent's producers, enqueues the dependents that became ready, and
// the finish message after the last node.
// KEYS: node hash, run hash, stream. ARGV: message id, node count,
// finish message, then pairs (dependent's waiting field, its start message).
var advanceScript = goredis.NewScript(`
redis.call('XACK', KEYS[3], 'workers', ARGV[1])
if redis.call('HSETNX', KEYS[1], 'advanced', 1) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[2], ARGV[i], -1) == 0 then
    redis.call('XADD', KEYS[3], '*', 'm', ARGV[i+1])
  end
end
if redis.call('HINCRBY', KEYS[2], 'nodes_done', 1) == tonumber(ARGV[2]) then
  redis.call('XADD', KEYS[3], '*', 'm', ARGV[3])
end
return 1
`)

// endScript ends a run once (endRunLua), acknowledging the message that
// ended it.
// KEYS: run hash, runs index, events stream. ARGV: status, result, error,
// finished (RFC 3339), ttl ms, done topic, run id, message id (or ""),
// stream, the run's finished event, then the tenant's streams.
var endScript = goredis.NewScript(endRunLua + `
if ARGV[8] ~= '' then redis.call('XACK', ARGV[9], 'workers', ARGV[8]) end
return end_run(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[10], 11)
`)

// retryScript acknowledges a batch whose first call is to be retried (or
// waits for a slot or a token) and puts the batch, from that call, in
// the delayed set until it is due, giving back the concurrency slots it
// holds (KEYS[4] on, holder ARGV[5]).
// KEYS: stream, delayed set, delayed index. ARGV: message id, due (Unix
// ms), message, tenant, holder.
var retryScript = goredis.NewScript(`
redis.call('XACK', KEYS[1], 'workers', ARGV[1])
for i = 4, #KEYS do redis.pcall('ZREM', KEYS[i], ARGV[5]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'LT', ARGV[2], ARGV[4])
return 1
`)

// promoteScript moves the messages of a tenant's delayed set that are
// due to its streams, each to the stream of its priority (the "p" its
// worker set, 1 to 5; the default stream for anything else), at most
// ARGV[2] of them (a message moved once is gone from the set, so no two
// workers move it), then scores the tenant in the index by its next due
// time, or takes it out.
// KEYS: delayed set, delayed index, the tenant's streams of priority 1
// to 5. ARGV: now (Unix ms), count, tenant.
var promoteScript = goredis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local ok, msg = pcall(cjson.decode, m)
  local p = 3
  if ok and type(msg) == 'table' and (msg['p'] == 1 or msg['p'] == 2 or msg['p'] == 4 or msg['p'] == 5) then p = msg['p'] end
  redis.call('XADD', KEYS[2 + p], '*', 'm', m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], nxt[2], ARGV[3])
end
return #due
`)

// runningLua moves a pending run to running and records its run_started
// event: runningScript, and startScript for a run's first step.
const runningLua = `
local function set_running(run, events, now, ev)
  if redis.call('HGET', run, 'status') == 'pending' then
    redis.call('HSET', run, 'status', 'running', 'started_at', now)
    redis.call('XADD', events, 'MAXLEN', '~', 10000, '*', 'e', ev)
  end
end
`

// runningScript moves a pending run to running.
// KEYS: run hash, events stream. ARGV: now (RFC 3339), run_started event.
var runningScript = goredis.NewScript(runningLua + `
set_running(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// initScript sets a dataflow run's counters and enqueues its ready nodes, once.
// KEYS: run hash, stream. ARGV: message id, number of field args, fields…, messages…
var initScript = goredis.NewScript(`
redis.call('XACK', KEYS[2], 'workers', ARGV[1])
if redis.call('HSETNX', KEYS[1], 'initialized', 1) == 0 then return 0 end
local nf = tonumber(ARGV[2])
for i = 3, 2 + nf, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
for i = 3 + nf, #ARGV do redis.call('XADD', KEYS[2], '*', 'm', ARGV[i]) end
return 1
`)

// passScript ends a step that makes no call, once: one its condition
// skipped, or a branch (which records its case). Either passes the
// previous result on (the step hash's "pass" field).
// KEYS: step hash, stream, events stream. ARGV: ttl ms, next message,
// now (RFC 3339), the step's event, then field/value pairs to set.
var passScript = goredis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'started', 1) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'pass', 1, 'total', 0, 'started_at', ARGV[3], 'finished_at', ARGV[3])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'e', ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
return 1
`)

// specScript reads a run's status and, when ARGV[1] is "1", its spec's
// size and, if that is at most ARGV[2] bytes, its spec: a worker reads
// both in one round trip, and never a spec too large to take.
// KEYS: run hash. Returns {status ("" for no run)[, size[, spec]]}.
var specScript = goredis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {''} end
if ARGV[1] ~= '1' then return {st} end
local n = redis.call('HSTRLEN', KEYS[1], 'spec')
if n > tonumber(ARGV[2]) then return {st, n} end
local spec = redis.call('HGET', KEYS[1], 'spec')
if not spec then return {st, n} end
return {st, n, spec}
`)
