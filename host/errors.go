package host

import (
	"errors"
	"fmt"
)

// Kind classifies why a task call failed.
type Kind int

// Failure classes. Every failed call returns a *TaskError with one of them.
const (
	KindTrap           Kind = iota + 1 // the guest trapped (unreachable, bad memory access, exit, …)
	KindGuestError                     // the guest returned non-zero, with its error_set text if any
	KindTimeout                        // the call ran past its deadline
	KindCanceled                       // the caller's context was canceled
	KindMemory                         // linear memory or host-side allocations went past the limit
	KindStackOverflow                  // the guest's call stack went past the limit
	KindFuel                           // the call used up its fuel budget
	KindOutputTooLarge                 // output_set with more bytes than allowed
	KindBadOutput                      // output not JSON, or missing a declared output
	KindDenied                         // the guest asked for something it was not granted (HTTP, …)
	KindBadInput                       // the input is not what the task declares
)

var kindNames = map[Kind]string{
	KindTrap:           "trap",
	KindGuestError:     "task error",
	KindTimeout:        "timeout",
	KindCanceled:       "canceled",
	KindMemory:         "memory limit",
	KindStackOverflow:  "stack overflow",
	KindFuel:           "fuel exhausted",
	KindOutputTooLarge: "output too large",
	KindBadOutput:      "bad output",
	KindDenied:         "denied",
	KindBadInput:       "bad input",
}

// String names the class, e.g. "timeout".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// TaskError is the error of a failed task call.
type TaskError struct {
	Kind   Kind
	Module string // module name from its manifest
	Task   string
	// Msg is the detail: the guest's error_set text verbatim for
	// KindGuestError, the wasm trap message for KindTrap, and so on.
	Msg string
	// Err is the underlying runtime error, if any.
	Err error
	// Hint, when set, is what the host saw that may explain the failure:
	// a path the task asked for where no directory is granted.
	Hint string
}

// Error renders "module.task: class: detail (hint)".
func (e *TaskError) Error() string {
	s := e.Module + "." + e.Task + ": "
	switch {
	case e.Kind == KindGuestError:
		s += e.Msg
	case e.Msg == "":
		s += e.Kind.String()
	default:
		s += e.Kind.String() + ": " + e.Msg
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the underlying runtime error.
func (e *TaskError) Unwrap() error { return e.Err }

// KindOf returns the failure class of err, or 0 when err is not a task failure.
func KindOf(err error) Kind {
	var te *TaskError
	if errors.As(err, &te) {
		return te.Kind
	}
	return 0
}

// ErrModuleRefused is wrapped by Load's refusals of a module that
// declares what the host will not instantiate: too many or too large
// tables, data beyond its own initial memory, or table.grow without the
// meter to bound it.
var ErrModuleRefused = errors.New("module refused")

// startError is why a new instance could not start, classed: the call
// that needed the instance fails with it.
type startError struct {
	kind Kind
	msg  string
	err  error
}

func (e *startError) Error() string { return e.kind.String() + ": " + e.msg }
func (e *startError) Unwrap() error { return e.err }

// startFailed is the TaskError of a call of task whose instance could not
// start.
func (m *Module) startFailed(task string, err error) *TaskError {
	te := &TaskError{Kind: KindTrap, Module: m.Name, Task: task, Msg: err.Error(), Err: err}
	var se *startError
	if errors.As(err, &se) {
		te.Kind, te.Msg, te.Err = se.kind, se.msg, se.err
	}
	return te
}

// hostPanic is what a host function panics with to stop the guest; the
// call path turns it back into a TaskError.
type hostPanic struct {
	kind Kind
	msg  string
}

func (p *hostPanic) Error() string { return p.kind.String() + ": " + p.msg }

func fail(kind Kind, format string, args ...any) {
	panic(&hostPanic{kind: kind, msg: fmt.Sprintf(format, args...)})
}
