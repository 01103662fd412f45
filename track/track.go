// Package track records what runs do: each run's status and, per step
// (or dataflow node), its status, attempts, times, error and, for map and
// filter, done/total/failed. Memory keeps them for in-process runs; the
// Redis broker keeps the same shape in Redis for distributed runs.
package track

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// StepStatus is one step of a run, as `flowhost status --json` shows it.
type StepStatus struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // pending, running, succeeded, failed, cancelled
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
}

// RunStatus is a run, as `flowhost status --json` shows it.
type RunStatus struct {
	RunID      string          `json:"run_id"`
	Tenant     string          `json:"tenant,omitempty"`
	Name       string          `json:"name,omitempty"`
	Status     string          `json:"status"` // pending, running, succeeded, failed, cancelled
	Steps      []StepStatus    `json:"steps"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  string          `json:"created_at,omitempty"`
	FinishedAt string          `json:"finished_at,omitempty"`
}

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
	id, name          string
	status            string
	steps             map[int]*step
	nsteps            int
	started, finished time.Time
	err               string
}

// Memory keeps the status of the most recent in-process runs. It is a
// runner.Observer: give it to the runner (alone or with runner.Observers).
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

var _ runner.Observer = (*Memory)(nil)

// Event records one runner event.
func (m *Memory) Event(e runner.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[e.RunID]
	if r == nil {
		r = &run{id: e.RunID, status: "running", steps: map[int]*step{}, started: e.Time}
		m.runs[e.RunID] = r
		m.order = append(m.order, e.RunID)
		if len(m.order) > m.keep {
			delete(m.runs, m.order[0])
			m.order = m.order[1:]
		}
	}
	s := r.steps[e.Step]
	if s == nil && e.Step > 0 {
		s = &step{StepStatus: StepStatus{Name: e.Label, Status: "pending"}}
		r.steps[e.Step] = s
	}
	switch e.Type {
	case runner.RunStarted:
		r.nsteps, r.name = e.Steps, e.Label
	case runner.StepStarted:
		s.Status, s.started, s.Attempts, s.total = "running", e.Time, 1, e.Total
		s.fanning = e.Kind == pipeline.Map || e.Kind == pipeline.Filter
	case runner.StepProgress:
		s.done, s.Failed = e.Done, e.Failed
	case runner.StepRetried:
		s.Attempts++
	case runner.StepFinished:
		s.finished = e.Time
		if e.Err != nil {
			s.Status, s.Error = "failed", e.Err.Error()
		} else {
			s.Status, s.done, s.Failed = "succeeded", e.Done, e.Failed
		}
	case runner.RunFinished:
		r.finished = e.Time
		r.status = "succeeded"
		if e.Err != nil {
			r.status, r.err = "failed", e.Err.Error()
		}
		for _, s := range r.steps {
			if s.Status == "running" {
				s.Status = "cancelled"
			}
		}
	}
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
	st := &RunStatus{RunID: r.id, Name: r.name, Status: r.status, Error: r.err, Result: json.RawMessage("null"),
		CreatedAt: stamp(r.started), FinishedAt: stamp(r.finished), Steps: []StepStatus{}}
	ids := make([]int, 0, len(r.steps))
	for id := range r.steps {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for n := 1; n <= max(r.nsteps, len(ids)); n++ {
		s, ok := r.steps[n]
		if !ok {
			st.Steps = append(st.Steps, StepStatus{Status: "pending"})
			continue
		}
		ss := s.StepStatus
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
