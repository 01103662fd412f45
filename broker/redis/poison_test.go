package redis

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// TestPoisonMessage: a message delivered more than MaxDeliveries times
// (here: claimed by consumers that never finish it, as workers that die on
// it would) goes to the dead-letter stream and fails its run.
func TestPoisonMessage(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	spec := &Spec{ID: runner.NewRunID(), Modules: f.mods, Seq: pipeline.New(nil).CallNext("text.upper"),
		Inputs: pipeline.Inputs{"text": json.RawMessage(`"x"`)}}
	if err := f.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	rdb := f.client.rdb
	stream := f.client.k.streamKey("default")
	// A doomed consumer takes the message, then three more "die" on it.
	res, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "doomed", Streams: []string{stream, ">"}, Count: 1}).Result()
	if err != nil || len(res[0].Messages) != 1 {
		t.Fatalf("read: %v", err)
	}
	id := res[0].Messages[0].ID
	for i := 0; i < 3; i++ {
		if err := rdb.XClaim(ctx, &goredis.XClaimArgs{Stream: stream, Group: group, Consumer: "doomed", MinIdle: 0, Messages: []string{id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // past the lease below
	f.workers(t, 1, WorkerConfig{Lease: 200 * time.Millisecond, MaxDeliveries: 3})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := f.client.Wait(wctx, "default", spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "failed" || !strings.Contains(st.Error, "delivered 5 times without completing") || !strings.Contains(st.Error, "fh:t:default:dead") {
		t.Fatalf("status %s error %q", st.Status, st.Error)
	}
	dead, err := rdb.XRange(ctx, f.client.k.deadKey("default"), "-", "+").Result()
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].Values["reason"].(string), id) {
		t.Fatalf("dead letters: %v %v", dead, err)
	}
	if p := rdb.XPending(ctx, stream, group).Val(); p.Count != 0 {
		t.Fatalf("%d messages still pending", p.Count)
	}
}
