package redis

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// The new workflow controls, attacked through keys a tenant may write
// (each case a finding of an attack on them, now held).

// TestHostileSubFlows: a run id shorter than a timestamp (valid, but
// no prefix to borrow) still names its child; a children set names
// runs that are not the run's children, and the run itself: only its
// own children are cancelled, and the walk ends.
func TestHostileSubFlows(t *testing.T) {
	f := setup(t)
	f.workers(t, 1, WorkerConfig{Concurrency: 2})
	ctx := context.Background()
	child := &pipeline.SubFlow{Name: "child", Sequential: pipeline.New(nil).CallNext("text.upper"), Inputs: map[string]string{"text": "inputs.text"}}
	spec := &Spec{ID: "abc", Tenant: "default", Modules: f.mods, ResultTTL: time.Hour, Seq: pipeline.New(nil).Flow(child), Inputs: pipeline.Inputs{"text": json.RawMessage(`"hi"`)}}
	if err := f.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := f.client.Wait(wctx, "default", "abc")
	if err != nil || st.Status != track.Succeeded || string(st.Result) != `"HI"` {
		t.Fatalf("a run with a short id: %+v %v", st, err)
	}

	rdb := f.srv.Client()
	running := func(id, parent string) {
		rdb.HSet(ctx, f.client.k.runKey("default", id), "status", "running", "parent", parent)
	}
	running("1a0000000000000000000aa", "")                        // a run of its own
	running("1a0000000000000000000bb", "1a0000000000000000000ff") // the parent's child
	running("1a0000000000000000000ff", "")
	rdb.SAdd(ctx, f.client.k.childrenKey("default", "1a0000000000000000000ff"), "1a0000000000000000000aa", "1a0000000000000000000bb", "1a0000000000000000000ff", "../x")
	rdb.SAdd(ctx, f.client.k.childrenKey("default", "1a0000000000000000000bb"), "1a0000000000000000000ff")
	if ok, err := cancelRun(ctx, f.client.rdb, f.client.k, "default", "1a0000000000000000000ff", "test"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	status := func(id string) string { return rdb.HGet(ctx, f.client.k.runKey("default", id), "status").Val() }
	if status("1a0000000000000000000bb") != "cancelled" || status("1a0000000000000000000aa") != "running" {
		t.Fatalf("child %s, stranger %s: only the child is cancelled", status("1a0000000000000000000bb"), status("1a0000000000000000000aa"))
	}
}

// TestHostileSchedules: a schedules hash too large to read every second
// is not read, and a definition past its bound is left in Redis.
func TestHostileSchedules(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	w := NewWorker(f.client, WorkerConfig{Engine: f.eng})
	rdb := f.srv.Client()
	rdb.HSet(ctx, f.client.k.schedulesKey("acme"), "d:big", strings.Repeat("x", maxScheduleBytes+1), "d:small", "{}", "l:small", "1")
	h, err := w.readSchedules(ctx, "acme")
	if err != nil || h["d:big"] != "" || h["d:small"] != "{}" || h["l:small"] != "1" {
		t.Fatalf("read %d fields (big %d bytes), %v", len(h), len(h["d:big"]), err)
	}
	p := rdb.Pipeline()
	for i := range 3*maxSchedules + 1 {
		p.HSet(ctx, f.client.k.schedulesKey("bulk"), "d:"+strconv.Itoa(i), "{}")
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := w.readSchedules(ctx, "bulk"); err != nil || h != nil {
		t.Fatalf("a hash of %d fields was read: %d fields, %v", 3*maxSchedules+1, len(h), err)
	}
}

// TestHostileSlots: a concurrency key's slots replaced by another type
// fail neither the completion of a batch that held them (its result is
// stored, its message acknowledged) nor a delay.
func TestHostileSlots(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	rdb := f.srv.Client()
	rdb.XGroupCreateMkStream(ctx, "fh:t:default:q", group, "0")
	id := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: "fh:t:default:q", Values: []any{"m", "{}"}}).Val()
	rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{"fh:t:default:q", ">"}, Count: 1})
	sem := f.client.k.semKey("default", "ckey")
	rdb.Set(ctx, sem, "not a set", 0)
	step := f.client.k.stepKey("default", "1a0000000000000000000cc", 0)
	rdb.HSet(ctx, step, "left", 1, "total", 1, "done", 0)
	err := completeScript.Run(ctx, f.client.rdb, []string{step, "fh:t:default:q", f.client.k.eventsKey("default", "r"), f.client.k.delayedKey("default"), delayedIndex, f.client.k.timesKey("default", "r", 0), f.client.k.runKey("default", "r"), sem},
		batchField(0), `{"i":0,"o":[1]}`, `{"k":"finish","r":"1a0000000000000000000cc"}`, id, 1, 0, "now", `{"type":"step_finished"}`, "", "", "default", 0, 0, "0:0", "{}", "holder",
		"", 1, 1000, f.client.k.doneTopic("default"), "r", "{}", 0).Err()
	if err != nil || rdb.HGet(ctx, step, batchField(0)).Val() == "" {
		t.Fatalf("completion with a slot key of another type: %v", err)
	}
	if n := rdb.XPending(ctx, "fh:t:default:q", group).Val().Count; n != 0 {
		t.Fatalf("%d messages still pending", n)
	}
}
