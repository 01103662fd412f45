package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// TestForgedInline: a tenant that marks a step of no call, or of many
// batches, as run inline (inline=1, no b:0, which its keys allow) and
// sends its start again gets no batch run for it: startScript's "run it
// again" (2) was taken to mean the step's last batch, which for a step of
// no call was no message at all (no tenant, no run, no inputs), run as
// the first step's batch.
func TestForgedInline(t *testing.T) {
	for _, c := range []struct {
		name  string
		input string
	}{{"no call", `[]`}, {"many batches", `[1,2,3,4,5,6]`}} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			ctx := context.Background()
			var logs bytes.Buffer
			w := NewWorker(f.client, WorkerConfig{Engine: f.eng, BatchSize: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			spec := &Spec{ID: runner.NewRunID(), Modules: f.mods,
				Seq:    pipeline.New(nil).Map("stats.square", pipeline.Param("x")).Group([]string{"stats.sum"}),
				Inputs: pipeline.Inputs{"x": json.RawMessage(c.input)}}
			if err := f.client.Submit(ctx, spec); err != nil {
				t.Fatal(err)
			}
			rdb := f.srv.Client()
			ds, err := w.read(ctx, 1) // the init message: it starts step 1
			if err != nil || len(ds) != 1 {
				t.Fatal(len(ds), err)
			}
			w.handle(ds[0])
			rdb.HSet(ctx, f.client.k.stepKey("default", spec.ID, 0), "inline", 1)
			before := rdb.XLen(ctx, f.client.k.streamKey("default")).Val()
			rdb.XAdd(ctx, &goredis.XAddArgs{Stream: f.client.k.streamKey("default"), Values: []any{"m", `{"k":"step","r":"` + spec.ID + `","s":0}`}})
			// Everything on the stream but the forged message is what the
			// start of step 1 enqueued: hand the worker only the forgery.
			all := rdb.XRange(ctx, f.client.k.streamKey("default"), "-", "+").Val()
			forged := all[len(all)-1]
			rdb.XGroupSetID(ctx, f.client.k.streamKey("default"), group, all[len(all)-2].ID)
			ds, err = w.read(ctx, 1)
			if err != nil || len(ds) != 1 || ds[0].id != forged.ID {
				t.Fatalf("read %d messages, %v; want the forgery", len(ds), err)
			}
			w.handle(ds[0])
			if n := rdb.XLen(ctx, f.client.k.streamKey("default")).Val(); n != before+1 {
				t.Fatalf("the forged start enqueued %d messages", n-before-1)
			}
			if keys := rdb.Keys(ctx, "fh:t::*").Val(); len(keys) != 0 {
				t.Fatalf("keys of no tenant written: %v", keys)
			}
			if h := rdb.HGetAll(ctx, f.client.k.stepKey("default", spec.ID, 0)).Val(); h["done"] != "0" {
				t.Fatalf("step 1 after the forgery: done %s (a batch ran for it)", h["done"])
			}
			if strings.Contains(logs.String(), "level=WARN") {
				t.Fatalf("the worker warned: %s", logs.String())
			}
			if p := rdb.XPending(ctx, f.client.k.streamKey("default"), group).Val(); p.Count != 0 {
				t.Fatalf("%d messages left unacknowledged", p.Count)
			}
		})
	}
}
