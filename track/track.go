// Package track is the one vocabulary of what runs do, whichever driver
// runs them: the events (Event, with typed EventType and State), and each
// run's status and, per step (or dataflow node), its state, attempts,
// times, error and, for map and filter, done/total/failed (RunStatus).
// Memory keeps them for in-process runs; the Redis driver keeps the same
// shape in Redis, so `status`, `events`, metrics and any dashboard read
// one shape.
package track

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

// StepStatus is one step of a run, as `flowhost status --json` shows it.
type StepStatus struct {
	Name       string `json:"name"`
	Status     State  `json:"status"`
	Attempts   int    `json:"attempts"`
	StartedAt  string `json:"started_at,omitempty"`  // RFC 3339
	FinishedAt string `json:"finished_at,omitempty"` // RFC 3339
	// DurationMS is the step's wall-clock duration, once it has finished.
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Worker is the worker that started the step (distributed runs).
	Worker string `json:"worker,omitempty"`
	Error  string `json:"error,omitempty"`
	Done   *int   `json:"done,omitempty"` // map and filter steps
	Total  *int   `json:"total,omitempty"`
	Failed int    `json:"failed,omitempty"`
	// Cached counts the step's calls served from the result cache.
	Cached int `json:"cached,omitempty"`
	// Case is the case a branch step chose.
	Case string `json:"case,omitempty"`
	// Child is the run a flow step started (a sub-flow).
	Child string `json:"child,omitempty"`
	// Deps are the steps (1-based) a dataflow node's inputs come from.
	Deps []int `json:"deps,omitempty"`
	// Fuel is the fuel the step's calls burned, all together (about one
	// unit an instruction), and PeakMemory the most guest memory one of
	// them ended with, in bytes, once the step has succeeded. Calls served
	// from the cache burn none.
	Fuel       uint64 `json:"fuel,omitempty"`
	PeakMemory uint64 `json:"peak_memory,omitempty"`
}

// RunStatus is a run, as `flowhost status --json` shows it.
type RunStatus struct {
	RunID      string          `json:"run_id"`
	Tenant     string          `json:"tenant,omitempty"`
	Name       string          `json:"name,omitempty"`
	Status     State           `json:"status"`
	Steps      []StepStatus    `json:"steps,omitempty"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  string          `json:"created_at,omitempty"`
	FinishedAt string          `json:"finished_at,omitempty"`
	// RerunOf is the run this one ran again (`flowhost rerun`).
	RerunOf string `json:"rerun_of,omitempty"`
	// Schedule is the schedule whose tick made the run, and ScheduledFor
	// that tick (RFC 3339).
	Schedule     string `json:"schedule,omitempty"`
	ScheduledFor string `json:"scheduled_for,omitempty"`
	// Parent and ParentStep are the run and step that started this one,
	// when it is a sub-flow.
	Parent     string `json:"parent,omitempty"`
	ParentStep int    `json:"parent_step,omitempty"`
}

// Ended reports whether the run is over.
func (s *RunStatus) Ended() bool { return s.Status.Ended() }

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type step struct {
	StepStatus
	started, finished time.Time
	done, total       int
	fanning           bool
}

type run struct {
	id, name, tenant  string
	parent            string
	parentStep        int
	names             []string
	deps              [][]int
	result            json.RawMessage
	status            State
	steps             map[int]*step
	nsteps            int
	started, finished time.Time
	err               string
}

// Memory keeps the status of the most recent in-process runs. It is an
// Observer: give it to the runner (alone or with Observers).
type Memory struct {
	mu    sync.Mutex
	runs  map[string]*run
	order []string
	keep  int
}

// NewMemory keeps the last keep runs (0: 1000).
func NewMemory(keep int) *Memory {
	if keep <= 0 {
		keep = 1000
	}
	return &Memory{runs: map[string]*run{}, keep: keep}
}

var _ Observer = (*Memory)(nil)

// Event records one event.
func (m *Memory) Event(e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[e.RunID]
	if r == nil {
		r = &run{id: e.RunID, status: Running, steps: map[int]*step{}, started: e.Time}
		m.runs[e.RunID] = r
		m.order = append(m.order, e.RunID)
		if len(m.order) > m.keep {
			delete(m.runs, m.order[0])
			m.order = m.order[1:]
		}
	}
	s := r.steps[e.Step]
	if s == nil && e.Step > 0 {
		s = &step{StepStatus: StepStatus{Name: r.stepName(e.Step, e.Name), Status: Pending}}
		r.steps[e.Step] = s
	}
	switch e.Type {
	case RunStarted:
		r.nsteps, r.name, r.tenant, r.names, r.deps = e.Steps, e.Name, e.Tenant, e.StepNames, e.StepDeps
		r.parent, r.parentStep = e.Parent, e.ParentStep
	case StepStarted:
		s.Status, s.started, s.Attempts, s.total = Running, e.Time, 1, e.Total
		s.fanning = e.Kind == pipeline.Map || e.Kind == pipeline.Filter
		s.Child = e.Child
	case StepProgress:
		s.done, s.Failed = e.Done, e.Failed
	case StepRetried:
		s.Attempts++
	case StepFailed:
		s.finished = e.Time
		s.Status, s.Error = Failed, e.Error
		s.Failed += e.Failed
	case StepFinished:
		s.finished = e.Time
		s.Status, s.done, s.Failed, s.Cached, s.Fuel, s.PeakMemory, s.Case = Succeeded, e.Done, e.Failed, e.Cached, e.Fuel, e.PeakMemory, e.Case
	case StepSkipped:
		s.Status, s.finished = Skipped, e.Time
	case RunFinished:
		r.finished = e.Time
		r.status, r.err = e.Status, e.Error
		for _, s := range r.steps {
			if s.Status == Running || s.Status == Pending {
				s.Status = Cancelled
			}
		}
	}
}

// SetResult records the result of a run that succeeded.
func (m *Memory) SetResult(id string, v json.RawMessage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.runs[id]; r != nil {
		r.result = v
	}
}

// stepName is step n's name: as the run announced it, else as its event
// says.
func (r *run) stepName(n int, name string) string {
	if n >= 1 && n <= len(r.names) {
		return r.names[n-1]
	}
	return name
}

// stepDeps are step n's dependencies, as the run announced them.
func (r *run) stepDeps(n int) []int {
	if n >= 1 && n <= len(r.deps) {
		return r.deps[n-1]
	}
	return nil
}

// Run returns a run's status.
func (m *Memory) Run(id string) (*RunStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return nil, false
	}
	return r.snapshot(), true
}

// Runs returns the kept runs, newest first.
func (m *Memory) Runs() []*RunStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*RunStatus, 0, len(m.order))
	for i := len(m.order) - 1; i >= 0; i-- {
		out = append(out, m.runs[m.order[i]].snapshot())
	}
	return out
}

func (r *run) snapshot() *RunStatus {
	st := &RunStatus{RunID: r.id, Tenant: r.tenant, Name: r.name, Status: r.status, Error: r.err, Result: json.RawMessage("null"), Parent: r.parent, ParentStep: r.parentStep,
		CreatedAt: stamp(r.started), FinishedAt: stamp(r.finished), Steps: []StepStatus{}}
	if r.result != nil {
		st.Result = r.result
	}
	ids := make([]int, 0, len(r.steps))
	for id := range r.steps {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for n := 1; n <= max(r.nsteps, len(ids)); n++ {
		s, ok := r.steps[n]
		if !ok {
			state := Pending
			if r.status == Failed || r.status == Cancelled {
				state = Cancelled // never started: the run ended first
			}
			st.Steps = append(st.Steps, StepStatus{Name: r.stepName(n, ""), Status: state, Deps: r.stepDeps(n)})
			continue
		}
		ss := s.StepStatus
		ss.Deps = r.stepDeps(n)
		ss.StartedAt, ss.FinishedAt = stamp(s.started), stamp(s.finished)
		ss.DurationMS = Duration(s.started, s.finished)
		if s.fanning {
			done, total := s.done, s.total
			ss.Done, ss.Total = &done, &total
		}
		st.Steps = append(st.Steps, ss)
	}
	return st
}

// Duration is the milliseconds between two times, or 0 when either is unset.
func Duration(start, end time.Time) float64 {
	if start.IsZero() || end.IsZero() {
		return 0
	}
	return float64(end.Sub(start).Microseconds()) / 1000
}

// BatchTime is one batch of a step's calls, as the driver that ran it
// recorded it: when its message was queued (Unix ms; for a retry, when
// its backoff ended), started and finished, and how many of its calls
// ran and failed. A retry of the batch is another attempt; the time
// between one attempt's end and the next one's queueing is the backoff.
type BatchTime struct {
	Index    int   `json:"index"`
	Attempt  int   `json:"attempt"`
	Calls    int   `json:"calls"`
	Failed   int   `json:"failed"`
	Queued   int64 `json:"queued"`
	Started  int64 `json:"started"`
	Finished int64 `json:"finished"`
}
