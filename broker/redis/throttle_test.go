package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// TestThrottleScript drives the slots and buckets on a real Redis: a
// key's limit holds across holders, a release frees a slot, a lease
// that is not renewed ends, and a bucket its tenant filled with
// nonsense starts afresh instead of stalling or flooding.
func TestThrottleScript(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	w := NewWorker(f.client, WorkerConfig{Engine: f.eng, Lease: 300 * time.Millisecond})
	rs, _, err := w.runState(ctx, "default", submitSpec(t, f))
	if err != nil {
		t.Fatal(err)
	}
	task, _ := rs.task(rs.seq.Steps[0].Tasks[0].TaskRef)
	key, _ := expr.Compile(`"k"`, dag.KeyVars, expr.Any)
	th := &dag.Throttle{Key: key, Limit: 2}
	one := [][]byte{[]byte(`{"x":1}`)}
	take := func(holder string) (int, *throttled, time.Duration) {
		n, held, again, kerr, err := w.throttle(ctx, "default", th, task, rs, one, holder)
		if err != nil || kerr != nil {
			t.Fatal(err, kerr)
		}
		return n, held, again
	}
	_, a, _ := take("a")
	if n, _, _ := take("b"); n != 1 {
		t.Fatal("the second holder of a key of limit 2 got no slot")
	}
	if n, _, again := take("c"); n != 0 || again <= 0 || again > slotPoll*2 {
		t.Fatalf("a third holder got %d, again in %v", n, again)
	}
	if n, _, _ := take("a"); n != 1 {
		t.Fatal("a holder taking its own slot again was refused")
	}
	w.release(ctx, a)
	if n, _, _ := take("c"); n != 1 {
		t.Fatal("a released slot was not given to the next holder")
	}
	time.Sleep(400 * time.Millisecond) // b's and c's leases end unrenewed
	if n, _, _ := take("d"); n != 1 {
		t.Fatal("leases that ended still hold their slots")
	}

	// A rate of 10/s: a burst of one, then a token every 100 ms.
	rth := &dag.Throttle{Rate: 10, RateText: "10/s"}
	_, rate, _ := runner.CallKeys(rth, task, nil, one[0])
	two := [][]byte{one[0], one[0]}
	n, _, again, _, err := w.throttle(ctx, "default", rth, task, rs, two, "r")
	if err != nil || n != 1 || again <= 0 || again > 100*time.Millisecond {
		t.Fatalf("a 10/s rate let %d of 2 through, again in %v (%v)", n, again, err)
	}
	for _, junk := range [][]any{{"t", "-1e308", "ts", "0"}, {"t", "1e308", "ts", "1"}, {"t", "x", "ts", "9e18"}} {
		f.srv.Client().HSet(ctx, f.client.k.bucketKey("default", rate), junk...)
		n, _, again, _, err := w.throttle(ctx, "default", rth, task, rs, two, "r")
		if err != nil || n != 1 || again > time.Minute {
			t.Fatalf("bucket %v: %d of 2 through, again in %v (%v)", junk, n, again, err)
		}
	}
}

// submitSpec stores a one-step run for the throttle's plan, unstarted.
func submitSpec(t *testing.T, f *fixture) string {
	t.Helper()
	in, _ := json.Marshal([]int{1})
	spec := &Spec{ID: runner.NewRunID(), Tenant: "default", Name: "t", Modules: f.mods, ResultTTL: time.Hour,
		Seq: pipeline.New(nil).Map("stats.square", pipeline.Param("x")), Inputs: pipeline.Inputs{"x": in}}
	b, _ := json.Marshal(spec)
	f.srv.Client().HSet(context.Background(), f.client.k.runKey("default", spec.ID), "spec", b, "status", "pending")
	return spec.ID
}
