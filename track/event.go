package track

import (
	"encoding/json"
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

// State is the state of a run or of one of its steps.
type State string

// States. A run or step that has not started is pending; it ends
// succeeded, failed or cancelled; a step of a run that ended before it
// could start or finish is cancelled, and a step skipped by its
// condition is skipped.
const (
	Pending   State = "pending"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Skipped   State = "skipped"
)

// Ended reports whether s is a final state.
func (s State) Ended() bool { return s == Succeeded || s == Failed || s == Cancelled || s == Skipped }

// EventType says what happened.
type EventType string

// Event types, in the order a run produces them. Every driver emits the
// same types for the same run: step_progress is sampled (once per batch
// of calls), so how many there are depends on batching; the others are
// exact.
const (
	RunStarted   EventType = "run_started"
	StepStarted  EventType = "step_started"
	StepProgress EventType = "step_progress"
	StepRetried  EventType = "step_retried"
	// StepFailed ends a step that failed its run, with the error (and the
	// element, for a map, filter or group).
	StepFailed EventType = "step_failed"
	// StepFinished ends a step that succeeded, with its counts.
	StepFinished EventType = "step_finished"
	RunFinished  EventType = "run_finished"
	// StepSkipped ends a step, in place of step_started and the rest,
	// that its `when` or its branch left out.
	StepSkipped EventType = "step_skipped"
)

// Event is one thing that happened in a run, as `flowhost events` prints
// it (one JSON object per line) and observers receive it. For a dataflow
// run, a "step" is a task node.
type Event struct {
	Time  time.Time `json:"time"`
	Type  EventType `json:"type"`
	RunID string    `json:"run_id"`
	// Step is the 1-based step (sequential) or node index + 1 (dataflow).
	Step int `json:"step,omitempty"`
	// Name is the step's label (or the run's name, on run_started).
	Name string        `json:"name,omitempty"`
	Kind pipeline.Kind `json:"kind,omitempty"`
	// Worker is the worker that recorded the event (distributed runs).
	Worker string `json:"worker,omitempty"`
	// Status is the run's final state, on run_finished.
	Status State `json:"status,omitempty"`
	// Error is the failure of a call (step_retried), a step (step_failed)
	// or the run (run_finished).
	Error string `json:"error,omitempty"`
	// Attempt is the retry's number (from 1), on step_retried.
	Attempt int `json:"attempt,omitempty"`
	// Element is the call's index among the step's calls, for the retry
	// or failure of a map, filter or group element.
	Element *int `json:"element,omitempty"`
	// Total is the number of calls of the step; Done and Failed count
	// those settled, failed ones (skipped by skip_errors) included.
	Total  int `json:"total,omitempty"`
	Done   int `json:"done,omitempty"`
	Failed int `json:"failed,omitempty"`
	// Case is the case a branch chose ("" for none), on its
	// step_finished.
	Case string `json:"case,omitempty"`
	// Child is the run a flow step started, on its step_started and
	// step_finished; Parent and ParentStep, on a sub-flow's run_started,
	// the run and step that started it.
	Child      string `json:"child,omitempty"`
	Parent     string `json:"parent,omitempty"`
	ParentStep int    `json:"parent_step,omitempty"`
	// Cached counts the calls served from the result cache, on
	// step_finished.
	Cached int `json:"cached,omitempty"`
	// Fuel and PeakMemory, on step_finished: what the step's calls burned
	// and the most memory one ended with (StepStatus).
	Fuel       uint64 `json:"fuel,omitempty"`
	PeakMemory uint64 `json:"peak_memory,omitempty"`
	// Steps is the number of steps or nodes, StepNames their names (in
	// plan order) and Tenant the tenant the run runs as, on run_started.
	Steps     int      `json:"steps,omitempty"`
	StepNames []string `json:"step_names,omitempty"`
	// StepDeps, on a dataflow run's run_started, are the nodes each
	// node's inputs come from (1-based).
	StepDeps [][]int `json:"step_deps,omitempty"`
	Tenant   string  `json:"tenant,omitempty"`

	// Err is the error behind Error, in this process only.
	Err error `json:"-"`
}

// Elem returns a pointer to i, for Event.Element.
func Elem(i int) *int { return &i }

// Encode is the event as one line of JSON, its time set to now (UTC)
// when it has none.
func (e Event) Encode() string {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if e.Error == "" && e.Err != nil {
		e.Error = e.Err.Error()
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// Observer receives a run's events. Event is called from the drivers'
// goroutines: it must be quick and safe for concurrent use.
type Observer interface {
	Event(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Event calls f.
func (f ObserverFunc) Event(e Event) { f(e) }

// Observers sends every event to each of obs (nil ones skipped).
func Observers(obs ...Observer) Observer {
	var list []Observer
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	return ObserverFunc(func(e Event) {
		for _, o := range list {
			o.Event(e)
		}
	})
}
