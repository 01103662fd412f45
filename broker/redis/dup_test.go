package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// TestDuplicateDelivery hands every message to the worker twice, as a
// redelivery after a lease expired would: each result is stored once,
// each step enqueued once, the run ends once, with the right result.
func TestDuplicateDelivery(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	w := NewWorker(f.client, WorkerConfig{Engine: f.eng, BatchSize: 2})
	spec := &Spec{ID: runner.NewRunID(), Modules: f.mods,
		Seq:    pipeline.New(nil).Map("stats.square", pipeline.Param("x")).Group([]string{"stats.sum"}),
		Inputs: pipeline.Inputs{"x": json.RawMessage(`[1,2,3,4,5,6]`)}}
	if err := f.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	handled := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := f.client.Status(ctx, "default", spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ended() {
			if st.Status != "succeeded" || string(st.Result) != "[91]" {
				t.Fatalf("status %s result %s error %q", st.Status, st.Result, st.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not end")
		}
		ds, err := w.read(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			w.handle(d)
			w.handle(d) // the duplicate
			handled++
		}
	}
	// init (which starts the map), the map's batches and the group step
	// (whose one call the worker that starts it runs, ending the run):
	// each once.
	calls := make([]runner.Call, 6)
	want := int64(1 + len(runner.Batches(calls, w.cfg.Concurrency, w.cfg.BatchSize)) + 1)
	if n := f.client.rdb.XLen(ctx, f.client.k.streamKey("default")).Val(); n != want || handled != int(want) {
		t.Fatalf("%d messages enqueued, %d handled; want %d each", n, handled, want)
	}
	h := f.client.rdb.HGetAll(ctx, f.client.k.stepKey("default", spec.ID, 0)).Val()
	if h["done"] != "6" || h["total"] != "6" || h["left"] != "0" {
		t.Fatalf("step 1 counts: done %s total %s left %s", h["done"], h["total"], h["left"])
	}
	if p := f.client.rdb.XPending(ctx, f.client.k.streamKey("default"), group).Val(); p.Count != 0 {
		t.Fatalf("%d messages left unacknowledged", p.Count)
	}
}
