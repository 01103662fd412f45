package redis

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
)

// This file holds what travels on a tenant's stream (message) and what a
// batch stores in its step's hash (batchResult), and the checks of both:
// a tenant may write anything to its own stream and keys.

// Message kinds.
const (
	kindInit   = "init"   // start a run
	kindStep   = "step"   // enqueue the calls of a step (sequential) or node (dataflow)
	kindCall   = "call"   // run a batch of calls
	kindDone   = "done"   // a dataflow node finished: start what became ready
	kindFinish = "finish" // assemble the result and end the run
	kindChild  = "child"  // a flow step's sub-flow run ended: settle the step
)

// message is a stream entry's body.
type message struct {
	Kind string `json:"k"`
	Run  string `json:"r"`
	// Tenant is the tenant whose stream the message was read from: a fact
	// of the read, never a claim of the body, which its tenant may write.
	Tenant string            `json:"-"`
	Step   int               `json:"s"`
	Index  int               `json:"i,omitempty"`  // step-wide index of the batch's first call
	Task   int               `json:"ti,omitempty"` // which of the step's tasks (group)
	Inputs []json.RawMessage `json:"in,omitempty"`
	Elems  []json.RawMessage `json:"el,omitempty"` // a filter's elements, kept when the task says true
	// Attempt is how many times the batch's first call failed before: a
	// retry is this message again, from the failed call, delayed.
	Attempt int `json:"a,omitempty"`
	// Priority is the priority of the stream a delayed retry goes back
	// to (0: the default), set from the stream the batch was read from.
	// Only a tenant's own streams are ever named by it.
	Priority int `json:"p,omitempty"`
	// starts is set on the first step of a run that its init message
	// starts: the script that starts the step moves the run to running.
	starts bool
}

// batchResult is what a call batch stores in its step's hash.
type batchResult struct {
	Index   int               `json:"i"`
	Outputs []json.RawMessage `json:"o"`
	Errs    []string          `json:"e,omitempty"`
	Kept    []json.RawMessage `json:"k,omitempty"`
}

// encode is m as JSON, as json.Marshal writes it. Written by hand: a
// batch's inputs are JSON already (made by the runner from checked
// values), and json.Marshal would check and compact each again, which
// cost a 100,000-element map 27 ms of its start.
func (m *message) encode() string {
	n := 64
	for _, in := range m.Inputs {
		n += len(in) + 1
	}
	for _, e := range m.Elems {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"k":`...)
	b = appendJSONString(b, m.Kind)
	b = append(b, `,"r":`...)
	b = appendJSONString(b, m.Run)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, int64(m.Step), 10)
	if m.Index != 0 {
		b = append(b, `,"i":`...)
		b = strconv.AppendInt(b, int64(m.Index), 10)
	}
	if m.Task != 0 {
		b = append(b, `,"ti":`...)
		b = strconv.AppendInt(b, int64(m.Task), 10)
	}
	if len(m.Inputs) != 0 {
		b = appendRawArray(append(b, `,"in":`...), m.Inputs)
	}
	if len(m.Elems) != 0 {
		b = appendRawArray(append(b, `,"el":`...), m.Elems)
	}
	if m.Attempt != 0 {
		b = append(b, `,"a":`...)
		b = strconv.AppendInt(b, int64(m.Attempt), 10)
	}
	if m.Priority != 0 {
		b = append(b, `,"p":`...)
		b = strconv.AppendInt(b, int64(m.Priority), 10)
	}
	return string(append(b, '}'))
}

// encode is br as JSON, as json.Marshal writes it (see message.encode):
// its outputs are JSON the host checked.
func (br *batchResult) encode() []byte {
	n := 32
	for _, o := range br.Outputs {
		n += len(o) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(br.Index), 10)
	b = appendRawArray(append(b, `,"o":`...), br.Outputs)
	if len(br.Errs) != 0 {
		b = append(b, `,"e":[`...)
		for i, e := range br.Errs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		b = append(b, ']')
	}
	if len(br.Kept) != 0 {
		b = appendRawArray(append(b, `,"k":`...), br.Kept)
	}
	return append(b, '}')
}

// appendRawArray appends the JSON array of vs (a nil one as null).
func appendRawArray(b []byte, vs []json.RawMessage) []byte {
	if vs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		if v == nil {
			v = json.RawMessage("null")
		}
		b = append(b, v...)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string, as json.Marshal does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf { // rare (an error's text): json.Marshal's rules for the rest
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// MaxBatchSize is the most calls one message may carry.
const MaxBatchSize = 10000

// maxMessageBytes bounds a message a worker parses: a batch carries at
// most a step's inputs.
const maxMessageBytes = runner.MaxStepInput + 1<<20

// maxBatchCalls bounds the calls of a message a worker accepts.
const maxBatchCalls = MaxBatchSize

// check refuses a message no worker would have written, before anything
// is read for it.
func (m *message) check() error {
	switch m.Kind {
	case kindInit, kindStep, kindCall, kindDone, kindFinish, kindChild:
	default:
		return fmt.Errorf("unknown message kind %.40q", m.Kind)
	}
	if err := policy.CheckRunID(m.Run); err != nil {
		return err
	}
	if m.Step < 0 || m.Index < 0 || m.Task < 0 || m.Attempt < 0 {
		return fmt.Errorf("negative step, index, task or attempt (%d, %d, %d, %d)", m.Step, m.Index, m.Task, m.Attempt)
	}
	if err := policy.CheckPriority(m.Priority); err != nil {
		return err
	}
	if m.Attempt > pipeline.MaxRetries {
		return fmt.Errorf("attempt %d: at most %d retries", m.Attempt, pipeline.MaxRetries)
	}
	if m.Kind != kindCall {
		if len(m.Inputs) != 0 || len(m.Elems) != 0 {
			return fmt.Errorf("a %s message carries no inputs", m.Kind)
		}
		return nil
	}
	if len(m.Inputs) == 0 || len(m.Inputs) > maxBatchCalls {
		return fmt.Errorf("a call message carries 1 to %d inputs, not %d", maxBatchCalls, len(m.Inputs))
	}
	if m.Elems != nil && len(m.Elems) != len(m.Inputs) {
		return fmt.Errorf("a filter batch carries one element per input, not %d for %d", len(m.Elems), len(m.Inputs))
	}
	if m.Index > math.MaxInt32 {
		return fmt.Errorf("call index %d out of range", m.Index)
	}
	return nil
}

// check refuses a message that names a step, node or task its run's plan
// does not have.
func (rs *runState) check(m *message) error {
	if m.Kind == kindInit || m.Kind == kindFinish {
		return nil
	}
	if rs.seq != nil {
		if m.Kind == kindDone {
			return errors.New("a sequential run has no node to mark done")
		}
		if m.Step >= len(rs.seq.Steps) {
			return fmt.Errorf("no step %d (the run has %d)", m.Step+1, len(rs.seq.Steps))
		}
		st := &rs.seq.Steps[m.Step]
		if m.Kind == kindChild && st.Kind != pipeline.Flow {
			return fmt.Errorf("step %d runs no sub-flow", m.Step+1)
		}
		if m.Kind == kindCall {
			if m.Task >= len(st.Tasks) {
				return fmt.Errorf("step %d has no task %d", m.Step+1, m.Task)
			}
			if (st.Kind == pipeline.Filter) != (m.Elems != nil) {
				return fmt.Errorf("step %d: elements belong to filter batches only", m.Step+1)
			}
		}
		return nil
	}
	if m.Kind == kindChild {
		return errors.New("a dataflow run has no flow step")
	}
	if m.Step >= len(rs.df.Nodes) {
		return fmt.Errorf("no node %d (the run has %d)", m.Step, len(rs.df.Nodes))
	}
	if m.Kind == kindCall && (m.Task != 0 || m.Elems != nil || len(m.Inputs) != 1 || m.Index != 0) {
		return fmt.Errorf("node %s is one call of one task", rs.df.Nodes[m.Step].Ref())
	}
	return nil
}

// maxStepCalls bounds the calls of one step.
const maxStepCalls = 1 << 24

// parseBatches reads a step hash's count of calls and batch results,
// checking each batch lies within the count and that they add up to it,
// before anything is allocated for them. The batches come back in call
// order.
func parseBatches(h map[string]string) (int, []batchResult, error) {
	total, err := strconv.Atoi(h["total"])
	if err != nil || total < 0 || total > maxStepCalls {
		return 0, nil, fmt.Errorf("unreadable count of calls %.20q", h["total"])
	}
	var brs []batchResult
	n := 0
	for k, v := range h {
		if !isBatchField(k) {
			continue
		}
		var br batchResult
		if err := json.Unmarshal([]byte(v), &br); err != nil {
			return 0, nil, fmt.Errorf("batch %.20s: %v", k, err)
		}
		if br.Index < 0 || br.Index > total || len(br.Outputs) > total-br.Index || len(br.Errs) > len(br.Outputs) || len(br.Kept) > len(br.Outputs) {
			return 0, nil, fmt.Errorf("batch %.20s lies outside the step's %d calls", k, total)
		}
		n += len(br.Outputs)
		brs = append(brs, br)
	}
	if n != total {
		return 0, nil, fmt.Errorf("%d results for %d calls", n, total)
	}
	sortBatches(brs)
	return total, brs, nil
}

func sortBatches(brs []batchResult) {
	slices.SortFunc(brs, func(a, b batchResult) int { return cmp.Compare(a.Index, b.Index) })
}
