package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// TestSubFlow: a flow step runs its child as a run of its own, linked
// both ways; the child's failure fails the step with the child's error;
// cancelling the parent cancels the child.
func TestSubFlow(t *testing.T) {
	child := &pipeline.SubFlow{Name: "child", Sequential: seq().Map("m.double", pipeline.Param("x")).CallNext("m.sum"),
		Inputs: map[string]string{"x": "result"}}
	l := newLab(t, Config{})
	out, err, st := l.run(context.Background(), seq().Map("m.double", pipeline.Param("x")).Flow(child).CallNext("m.double"), nil, in("x", "[1,2,3]"))
	if err != nil || out != "48" { // ((2+4+6)·2)·2
		t.Fatalf("result %s error %v", out, err)
	}
	id := st.Steps[1].Child
	cst, ok := l.memory.Run(id)
	if id == "" || !ok || cst.Parent != st.RunID || cst.ParentStep != 2 || cst.Status != track.Succeeded || string(cst.Result) != "24" {
		t.Fatalf("the child run %q: %+v", id, cst)
	}

	// The child's failure is the step's.
	failing := &pipeline.SubFlow{Name: "failing", Sequential: seq().Map("m.fail", pipeline.Param("x")), Inputs: map[string]string{"x": "inputs.x"}}
	_, err, st = l.run(context.Background(), seq().Flow(failing), nil, in("x", "[1,2]"))
	if err == nil || !strings.Contains(err.Error(), "step 1 (flow failing): sub-flow failing (run ") || !strings.Contains(err.Error(), "element 1: m.fail: boom 2") {
		t.Fatalf("error %v", err)
	}
	if st.Steps[0].Status != track.Failed {
		t.Fatalf("the flow step is %s", st.Steps[0].Status)
	}

	// Cancelling the parent cancels the child.
	slow := &pipeline.SubFlow{Name: "slow", Sequential: seq().Map("m.slow", pipeline.Param("x"), pipeline.MaxParallel(1)), Inputs: map[string]string{"x": "inputs.x"}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err, st = l.run(ctx, seq().Flow(slow), nil, in("x", "["+strings.Repeat("1,", 999)+"1]"))
	cst, _ = l.memory.Run(st.Steps[0].Child)
	if st.Status != track.Cancelled || cst == nil || cst.Status != track.Cancelled {
		t.Fatalf("parent %s (%v), child %+v", st.Status, err, cst)
	}
}
