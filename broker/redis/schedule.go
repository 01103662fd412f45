package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/schedule"
	"github.com/flowhost/flowhost/track"
)

// This file is schedules: stored per tenant (a hash of definitions and
// of the last tick each handled), fired by every worker. A tick fires
// exactly once however many workers run, with no leader: each worker
// that sees a tick due runs one script that records the tick as handled
// and creates the run, only if no other did it first. A worker killed
// at the tick either ran that script or did not; the others see the
// tick still due and fire it.

// ScheduleDef is a stored schedule: when, and the run it makes each tick.
type ScheduleDef struct {
	Name     string        `json:"name"`
	Schedule schedule.Spec `json:"schedule"`
	// Spec is the run each tick makes, its ID left empty (each run gets
	// its own, from the schedule and the tick).
	Spec    *Spec     `json:"spec"`
	Created time.Time `json:"created"`
}

// ScheduleInfo is a stored schedule, as `flowhost schedule list` shows it.
type ScheduleInfo struct {
	Tenant   string `json:"tenant"`
	Name     string `json:"name"`
	Flow     string `json:"flow"`
	Schedule string `json:"schedule"`
	// Last is the last tick handled (fired or skipped), Next the next one (RFC 3339).
	Last string `json:"last,omitempty"`
	Next string `json:"next,omitempty"`
	// LastRun is the run the last fired tick made.
	LastRun string `json:"last_run,omitempty"`
	// Error says why the stored definition cannot fire, when it cannot.
	Error string `json:"error,omitempty"`
}

var scheduleNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// CheckScheduleName refuses a schedule name that is not 1 to 128
// letters, digits, '_', '-' and '.'.
func CheckScheduleName(name string) error {
	if !scheduleNameRe.MatchString(name) {
		return fmt.Errorf("schedule name %.70q: 1 to 128 letters, digits, '_', '-' and '.'", name)
	}
	return nil
}

// schedulesKey is a tenant's schedules: field d:<name> its definition,
// l:<name> the last tick it handled (Unix ms), r:<name> the run that
// tick made.
func (k keyspace) schedulesKey(tenant string) string { return k.prefix(tenant) + ":schedules" }

// maxScheduleBytes bounds a stored definition a worker parses.
const maxScheduleBytes = 1 << 20

// maxSchedules bounds the schedules a worker reads of one tenant.
const maxSchedules = 1000

// parseDef reads and checks a stored definition (its tenant may have
// written anything there).
func parseDef(name, raw string) (*ScheduleDef, *schedule.Schedule, error) {
	if len(raw) > maxScheduleBytes {
		return nil, nil, fmt.Errorf("the definition is %d bytes, more than %d", len(raw), maxScheduleBytes)
	}
	var def ScheduleDef
	if err := json.Unmarshal([]byte(raw), &def); err != nil {
		return nil, nil, fmt.Errorf("unreadable definition: %w", err)
	}
	if def.Name != name {
		return nil, nil, fmt.Errorf("the definition names schedule %.70q", def.Name)
	}
	if def.Spec == nil {
		return nil, nil, errors.New("the definition has no run")
	}
	if err := def.Spec.check(""); err != nil {
		return nil, nil, fmt.Errorf("its run: %w", err)
	}
	sc, err := schedule.Parse(def.Schedule)
	if err != nil {
		return nil, nil, err
	}
	return &def, sc, nil
}

// AddSchedule stores a schedule, replacing one of the same name. Its
// first tick is the first after now: adding a schedule fires nothing
// that is already past. The run's modules must have been uploaded.
func (c *Client) AddSchedule(ctx context.Context, tenant string, def *ScheduleDef) error {
	if err := checkNames(tenant, ""); err != nil {
		return err
	}
	if err := CheckScheduleName(def.Name); err != nil {
		return err
	}
	def.Spec.ID, def.Spec.Tenant = "", tenant
	if def.Spec.ResultTTL <= 0 {
		def.Spec.ResultTTL = 24 * time.Hour
	}
	if def.Created.IsZero() {
		def.Created = time.Now().UTC()
	}
	b, err := json.Marshal(def)
	if err != nil {
		return err
	}
	if _, _, err := parseDef(def.Name, string(b)); err != nil {
		return fmt.Errorf("schedule %s: %w", def.Name, err)
	}
	if err := ensureTenant(ctx, c.rdb, c.k, tenant); err != nil {
		return err
	}
	return c.rdb.HSet(ctx, c.k.schedulesKey(tenant), "d:"+def.Name, b, "l:"+def.Name, time.Now().UnixMilli()).Err()
}

// RemoveSchedule deletes a schedule; false when there was none.
func (c *Client) RemoveSchedule(ctx context.Context, tenant, name string) (bool, error) {
	if err := checkNames(tenant, ""); err != nil {
		return false, err
	}
	if err := CheckScheduleName(name); err != nil {
		return false, err
	}
	n, err := c.rdb.HDel(ctx, c.k.schedulesKey(tenant), "d:"+name, "l:"+name, "r:"+name).Result()
	return n > 0, err
}

// Schedules lists a tenant's schedules, by name.
func (c *Client) Schedules(ctx context.Context, tenant string) ([]ScheduleInfo, error) {
	if err := checkNames(tenant, ""); err != nil {
		return nil, err
	}
	h, err := c.rdb.HGetAll(ctx, c.k.schedulesKey(tenant)).Result()
	if err != nil {
		return nil, err
	}
	out := []ScheduleInfo{}
	now := time.Now()
	for field, raw := range h {
		name, ok := strings.CutPrefix(field, "d:")
		if !ok {
			continue
		}
		info := ScheduleInfo{Tenant: tenant, Name: name, LastRun: h["r:"+name]}
		if ms, err := strconv.ParseInt(h["l:"+name], 10, 64); err == nil {
			info.Last = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		}
		def, sc, err := parseDef(name, raw)
		if err != nil {
			info.Error = err.Error()
		} else {
			info.Flow, info.Schedule, info.Next = def.Spec.Name, sc.Describe(), sc.Next(now).Format(time.RFC3339Nano)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// scheduledRunID is the run a schedule's tick makes: sortable by the
// tick, the same for every worker that fires it.
func scheduledRunID(tenant, name string, tick time.Time) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + name + "\x00" + strconv.FormatInt(tick.UnixMilli(), 10)))
	return fmt.Sprintf("%011x%s", tick.UnixMilli(), hex.EncodeToString(sum[:6]))
}

// fireScript handles one tick of a schedule, once: it records the tick
// as the schedule's last and, unless the tick is skipped (ARGV[4] ""),
// creates its run and enqueues the run's first message. A tick at or
// before the last handled one, or of a schedule removed meanwhile, does
// nothing.
// KEYS: the tenant's schedules hash, the run hash, the runs index, the
// stream of the run's priority. ARGV: schedule name, tick (Unix ms),
// now (Unix ms), run fields (JSON object, or "" to skip), ttl ms, init
// message, run id.
var fireScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'd:' .. ARGV[1]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'l:' .. ARGV[1]) or '0') or 0
if last >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'l:' .. ARGV[1], ARGV[2])
if ARGV[4] == '' then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], ARGV[7])
for k, v in pairs(cjson.decode(ARGV[4])) do redis.call('HSET', KEYS[2], k, v) end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[7])
redis.call('XADD', KEYS[4], '*', 'm', ARGV[6])
return 1
`)

// parsedDef is a worker's parse of a stored definition, kept while the
// stored text stays the same.
type parsedDef struct {
	raw string
	def *ScheduleDef
	sc  *schedule.Schedule
	err error
}

// schedules fires the schedules of every tenant the worker serves until
// ctx ends: it looks at them at each tick that is due, and at least
// once a second for new and changed ones.
func (w *Worker) schedules(ctx context.Context) {
	parsed := map[string]*parsedDef{} // by tenant/name
	for ctx.Err() == nil {
		next := time.Now().Add(time.Second)
		tenants, err := w.tenants(ctx)
		if err == nil {
			for _, t := range tenants {
				if n := w.fireDue(ctx, t, parsed); !n.IsZero() && n.Before(next) {
					next = n
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(next) + 2*time.Millisecond):
		}
	}
}

// fireDue handles the due ticks of a tenant's schedules and returns the
// next tick of any of them.
func (w *Worker) fireDue(ctx context.Context, tenant string, parsed map[string]*parsedDef) time.Time {
	h, err := w.readSchedules(ctx, tenant)
	if err != nil || len(h) == 0 {
		return time.Time{}
	}
	var next time.Time
	seen := 0
	for field, raw := range h {
		name, ok := strings.CutPrefix(field, "d:")
		if !ok || CheckScheduleName(name) != nil {
			continue
		}
		if seen++; seen > maxSchedules {
			break
		}
		key := tenant + "/" + name
		p := parsed[key]
		if p == nil || p.raw != raw {
			p = &parsedDef{raw: raw}
			p.def, p.sc, p.err = parseDef(name, raw)
			if p.err != nil {
				w.log.Warn("a stored schedule cannot fire", "tenant", tenant, "schedule", name, "err", p.err)
				w.cfg.Metrics.Refused(tenant, "schedule")
			}
			if len(parsed) > maxTenants {
				clear(parsed)
			}
			parsed[key] = p
		}
		if p.err != nil {
			continue
		}
		// As the script reads it (Lua's tonumber), so that both agree.
		lastF, _ := strconv.ParseFloat(h["l:"+name], 64)
		last := time.UnixMilli(int64(min(max(lastF, 0), 1<<53)))
		now := time.Now()
		fire, skipTo := p.sc.Due(last, now)
		if !skipTo.IsZero() {
			w.wrote(ctx, "schedule skip", w.fire(ctx, tenant, p.def, skipTo, true))
		}
		for _, tick := range fire {
			w.wrote(ctx, "schedule fire", w.fire(ctx, tenant, p.def, tick, false))
		}
		if n := p.sc.Next(now); next.IsZero() || n.Before(next) {
			next = n
		}
	}
	return next
}

// readSchedules reads a tenant's schedules hash, bounded: the hash is
// the tenant's to write, and a worker reads it every second, so one that
// holds more fields than maxSchedules' worth is not read at all, and a
// definition over maxScheduleBytes is left in Redis (it cannot fire).
func (w *Worker) readSchedules(ctx context.Context, tenant string) (map[string]string, error) {
	key := w.k.schedulesKey(tenant)
	n, err := w.rdb.HLen(ctx, key).Result()
	if err != nil || n == 0 {
		return nil, err
	}
	if n > 3*maxSchedules {
		w.log.Warn("a tenant's schedules hash is too large to read; its schedules do not fire", "tenant", tenant, "fields", n, "most", 3*maxSchedules)
		w.cfg.Metrics.Refused(tenant, "schedule")
		return nil, nil
	}
	fields, err := w.rdb.HKeys(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	sizes := make([]*goredis.IntCmd, len(fields))
	if _, err := w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, f := range fields {
			sizes[i] = p.HStrLen(ctx, key, f)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var want []string
	for i, f := range fields {
		if n, _ := sizes[i].Result(); n <= maxScheduleBytes {
			want = append(want, f)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	vals, err := w.rdb.HMGet(ctx, key, want...).Result()
	if err != nil {
		return nil, err
	}
	return fieldMap(want, vals), nil
}

// fire runs fireScript for one tick of a schedule (skip: record it
// handled, without a run).
func (w *Worker) fire(ctx context.Context, tenant string, def *ScheduleDef, tick time.Time, skip bool) error {
	id := scheduledRunID(tenant, def.Name, tick)
	spec := *def.Spec
	spec.ID, spec.Tenant = id, tenant
	fields := ""
	if !skip {
		b, err := json.Marshal(&spec)
		if err != nil {
			return err
		}
		steps, _ := json.Marshal(spec.Steps)
		f, _ := json.Marshal(map[string]string{"spec": string(b), "steps": string(steps), "status": string(track.Pending), "tenant": tenant,
			"name": spec.Name, "created_at": time.Now().UTC().Format(time.RFC3339Nano), "schedule": def.Name,
			"scheduled_for": tick.UTC().Format(time.RFC3339Nano)})
		fields = string(f)
	}
	first, _ := json.Marshal(message{Kind: kindInit, Run: id})
	n, err := fireScript.Run(ctx, w.rdb, []string{w.k.schedulesKey(tenant), w.k.runKey(tenant, id), w.k.runsKey(tenant), w.k.priorityStream(tenant, spec.Priority)},
		def.Name, tick.UnixMilli(), time.Now().UnixMilli(), fields, (7 * spec.ResultTTL).Milliseconds(), string(first), id).Int()
	if err == nil && n == 1 {
		w.log.Info("schedule fired", "tenant", tenant, "schedule", def.Name, "tick", tick.Format(time.RFC3339), "run", id)
	}
	return err
}
