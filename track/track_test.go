package track

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

func TestMemory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cases := []struct {
		name   string
		events []Event
		want   RunStatus
	}{
		{"a map that succeeds, with a skipped element", []Event{
			{Type: RunStarted, Time: at(0), Steps: 2, StepNames: []string{"map m.t", "call m.u"}, Tenant: "acme", Name: "f"},
			{Type: StepStarted, Time: at(1), Step: 1, Name: "map m.t", Kind: pipeline.Map, Total: 3},
			{Type: StepProgress, Time: at(2), Step: 1, Done: 2, Failed: 1},
			{Type: StepRetried, Time: at(2), Step: 1, Attempt: 1, Element: Elem(2)},
			{Type: StepFinished, Time: at(3), Step: 1, Total: 3, Done: 3, Failed: 1},
			{Type: StepStarted, Time: at(4), Step: 2, Name: "call m.u", Kind: pipeline.Call, Total: 1},
			{Type: StepFinished, Time: at(5), Step: 2, Total: 1, Done: 1},
			{Type: RunFinished, Time: at(6), Status: Succeeded},
		}, RunStatus{Tenant: "acme", Name: "f", Status: Succeeded, Steps: []StepStatus{
			{Name: "map m.t", Status: Succeeded, Attempts: 2, Done: ptr(3), Total: ptr(3), Failed: 1},
			{Name: "call m.u", Status: Succeeded, Attempts: 1},
		}}},
		{"a failed step: the next is cancelled, never started", []Event{
			{Type: RunStarted, Time: at(0), Steps: 2, StepNames: []string{"call m.t", "call m.u"}},
			{Type: StepStarted, Time: at(1), Step: 1, Name: "call m.t", Kind: pipeline.Call, Total: 1},
			{Type: StepFailed, Time: at(2), Step: 1, Error: "step 1 (call m.t): boom", Failed: 1},
			{Type: RunFinished, Time: at(3), Status: Failed, Error: "step 1 (call m.t): boom"},
		}, RunStatus{Status: Failed, Error: "step 1 (call m.t): boom", Steps: []StepStatus{
			{Name: "call m.t", Status: Failed, Attempts: 1, Error: "step 1 (call m.t): boom", Failed: 1},
			{Name: "call m.u", Status: Cancelled},
		}}},
		{"cancelled while running", []Event{
			{Type: RunStarted, Time: at(0), Steps: 1, StepNames: []string{"map m.t"}},
			{Type: StepStarted, Time: at(1), Step: 1, Name: "map m.t", Kind: pipeline.Map, Total: 5},
			{Type: StepProgress, Time: at(2), Step: 1, Done: 2},
			{Type: RunFinished, Time: at(3), Status: Cancelled, Error: "canceled"},
		}, RunStatus{Status: Cancelled, Error: "canceled", Steps: []StepStatus{
			{Name: "map m.t", Status: Cancelled, Attempts: 1, Done: ptr(2), Total: ptr(5)},
		}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMemory(0)
			for _, e := range c.events {
				e.RunID = "r1"
				m.Event(e)
			}
			got, ok := m.Run("r1")
			if !ok {
				t.Fatal("no run")
			}
			got.RunID, got.CreatedAt, got.FinishedAt, got.Result = "", "", "", nil
			for i := range got.Steps {
				got.Steps[i].StartedAt, got.Steps[i].FinishedAt, got.Steps[i].DurationMS = "", "", 0
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(c.want)
			if string(g) != string(w) {
				t.Fatalf("status\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestMemoryKeepsTheLast(t *testing.T) {
	m := NewMemory(2)
	for _, id := range []string{"a", "b", "c"} {
		m.Event(Event{Type: RunStarted, RunID: id})
	}
	if _, ok := m.Run("a"); ok {
		t.Fatal("the oldest run was kept past the bound")
	}
	if runs := m.Runs(); len(runs) != 2 || runs[0].RunID != "c" {
		t.Fatalf("runs %v", runs)
	}
}

func TestEncode(t *testing.T) {
	e := Event{Type: StepFailed, RunID: "r", Err: errors.New("boom"), Element: Elem(0)}
	var back Event
	if err := json.Unmarshal([]byte(e.Encode()), &back); err != nil || back.Error != "boom" || back.Time.IsZero() || back.Element == nil || *back.Element != 0 {
		t.Fatalf("%s → %+v (%v)", e.Encode(), back, err)
	}
}

func ptr(i int) *int { return &i }
