package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/track"
)

// Tracker is what Local reads runs from: a flowhost.Host (its Status and
// Runs), or a track.Memory.
type Tracker interface {
	Status(id string) (*track.RunStatus, bool)
	Runs() []*track.RunStatus
}

// Local is a Source over this process's runs (`flowhost run --serve`):
// their status from the host's tracker, their events as they come (it is
// a track.Observer of the runs), cancellation through the run's own
// context. It holds one tenant's runs; it re-runs nothing (a run of this
// process is re-run with `flowhost rerun`).
type Local struct {
	tracker Tracker
	tenant  string

	mu      sync.Mutex
	events  map[string][]track.Event
	wake    map[string]chan struct{} // closed when a run has a new event
	cancels map[string]func()
	logs    map[string][]host.LogLine
	batches map[string][]track.BatchTime // by "run/step" (0-based)
}

// maxLocalEvents bounds the events kept of one run: a map's progress
// events beyond it are dropped (its step_finished never is).
const maxLocalEvents = 10000

// NewLocal makes a Local over tracker's runs, of tenant.
func NewLocal(tracker Tracker, tenant string) *Local {
	return &Local{tracker: tracker, tenant: tenant, events: map[string][]track.Event{}, wake: map[string]chan struct{}{}, cancels: map[string]func(){},
		logs: map[string][]host.LogLine{}, batches: map[string][]track.BatchTime{}}
}

// Event implements track.Observer.
func (l *Local) Event(e track.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.events[e.RunID]
	if len(evs) >= maxLocalEvents && e.Type == track.StepProgress {
		return
	}
	l.events[e.RunID] = append(evs, e)
	if ch, ok := l.wake[e.RunID]; ok {
		close(ch)
		delete(l.wake, e.RunID)
	}
}

// LogSink is a log sink (host.WithLogSink) keeping run id's guest log
// lines, the latest 1,000.
func (l *Local) LogSink(id string) func(host.LogLine) {
	return func(line host.LogLine) {
		l.mu.Lock()
		defer l.mu.Unlock()
		ls := append(l.logs[id], line)
		if len(ls) > 1000 {
			ls = ls[len(ls)-1000:]
		}
		l.logs[id] = ls
	}
}

// Logs implements Source.
func (l *Local) Logs(_ context.Context, tenant, id string) ([]host.LogLine, error) {
	if _, err := l.status(tenant, id); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]host.LogLine{}, l.logs[id]...), nil
}

// OnCancel sets how run id is cancelled.
func (l *Local) OnCancel(id string, cancel func()) {
	l.mu.Lock()
	l.cancels[id] = cancel
	l.mu.Unlock()
}

func (l *Local) status(tenant, id string) (*redis.Status, error) {
	if st, ok := l.tracker.Status(id); ok && tenant == l.tenant {
		c := *st
		c.Tenant = l.tenant
		return &c, nil
	}
	return nil, fmt.Errorf("run %s (tenant %s): %w", id, tenant, redis.ErrNoRun)
}

// Status implements Source.
func (l *Local) Status(_ context.Context, tenant, id string) (*redis.Status, error) {
	return l.status(tenant, id)
}

// Run implements Source.
func (l *Local) Run(_ context.Context, tenant, id string) (*redis.Status, error) {
	return l.status(tenant, id)
}

// ListRuns implements Source.
func (l *Local) ListRuns(_ context.Context, tenant string, q redis.RunQuery) (*redis.RunPage, error) {
	page := &redis.RunPage{Runs: []*redis.Status{}}
	if tenant != l.tenant {
		return page, nil
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	for _, st := range l.tracker.Runs() { // newest first
		at, _ := time.Parse(time.RFC3339Nano, st.CreatedAt)
		ms := at.UnixMilli()
		if (q.Before > 0 && ms >= q.Before) || (q.After > 0 && ms <= q.After) || (q.Status != "" && st.Status != q.Status) || (q.Name != "" && st.Name != q.Name) {
			continue
		}
		if len(page.Runs) == q.Limit {
			page.Next = ms + 1
			break
		}
		c := *st
		c.Tenant, c.Steps, c.Result = l.tenant, nil, nil
		page.Runs = append(page.Runs, &c)
	}
	return page, nil
}

// Events implements Source: the run's events kept so far, then the new
// ones until the run ends or ctx is done.
func (l *Local) Events(ctx context.Context, tenant, id string, fn func(redis.Event) error) error {
	if _, err := l.status(tenant, id); err != nil {
		return err
	}
	next := 0
	for {
		l.mu.Lock()
		evs := l.events[id][next:]
		next += len(evs)
		ch, ok := l.wake[id]
		if !ok {
			ch = make(chan struct{})
			l.wake[id] = ch
		}
		l.mu.Unlock()
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
			if e.Type == track.RunFinished {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(time.Second): // a run that ended before it was watched
			if st, err := l.status(tenant, id); err != nil || st.Ended() {
				return err
			}
		}
	}
}

// Cancel implements Source.
func (l *Local) Cancel(_ context.Context, tenant, id string) (bool, error) {
	st, err := l.status(tenant, id)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	cancel := l.cancels[id]
	l.mu.Unlock()
	if st.Ended() || cancel == nil {
		return false, nil
	}
	cancel()
	return true, nil
}

// errLocalRerun refuses a rerun through the API of this process.
var errLocalRerun = &httpError{400, "a run of this process is re-run from the command line: flowhost rerun RUN_ID"}

// Rerun implements Source: refused.
func (l *Local) Rerun(context.Context, string, string, int) (string, error) { return "", errLocalRerun }

// Batch keeps the times of a batch of step (1-based) of run id
// (flowhost.ExecOptions.OnBatch), the first 2,000 a step.
func (l *Local) Batch(id string, step int, b track.BatchTime) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := fmt.Sprintf("%s/%d", id, step-1)
	if len(l.batches[k]) < 2000 {
		l.batches[k] = append(l.batches[k], b)
	}
}

// Batches implements Source.
func (l *Local) Batches(_ context.Context, tenant, id string, step int) ([]redis.BatchTime, error) {
	if _, err := l.status(tenant, id); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]redis.BatchTime{}, l.batches[fmt.Sprintf("%s/%d", id, step)]...)
	slices.SortFunc(out, func(a, b redis.BatchTime) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return a.Attempt - b.Attempt
	})
	return out, nil
}

// Tenants implements Source.
func (l *Local) Tenants(context.Context) ([]string, error) { return []string{l.tenant}, nil }

// Queue implements Source: a process has no queue of its own to show.
func (l *Local) Queue(context.Context, string) (redis.QueueStats, error) {
	return redis.QueueStats{}, nil
}

// Workers implements Source: the process is its own worker.
func (l *Local) Workers(context.Context) ([]redis.WorkerInfo, error) {
	return []redis.WorkerInfo{}, nil
}

var _ Source = (*Local)(nil)
