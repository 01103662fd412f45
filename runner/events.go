package runner

import (
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

// EventType says what happened.
type EventType string

// Event types.
const (
	RunStarted   EventType = "run_started"
	StepStarted  EventType = "step_started"
	StepProgress EventType = "step_progress"
	StepRetried  EventType = "step_retried"
	StepFinished EventType = "step_finished"
	RunFinished  EventType = "run_finished"
)

// Event is one thing that happened in a run. For a dataflow run, a "step"
// is a task node.
type Event struct {
	Type  EventType
	RunID string
	Time  time.Time
	// Step is the 1-based step (sequential) or node index + 1 (dataflow).
	Step  int
	Label string
	Kind  pipeline.Kind
	// Done, Failed and Total count the calls of a step.
	Done, Failed, Total int
	// Attempt and Element describe a retry.
	Attempt, Element int
	// Err is the failure of a step or run.
	Err error
	// Steps is the number of steps or nodes, on RunStarted.
	Steps int
}

// Observer receives a run's events. Event is called from the runner's
// goroutines: it must be quick and safe for concurrent use.
type Observer interface {
	Event(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Event calls f.
func (f ObserverFunc) Event(e Event) { f(e) }

type nopObserver struct{}

func (nopObserver) Event(Event) {}

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
