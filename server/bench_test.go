package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/server"
)

// seedRuns stores n finished runs of tenant default as the workers leave
// them (a run hash, its place in the index), and one run of a map of
// elems elements whose step hash holds its batch results; it returns the
// map run's id.
func seedRuns(b *testing.B, rdb goredis.UniversalClient, n, elems int) string {
	ctx := context.Background()
	now := time.Now()
	pipe := rdb.Pipeline()
	for i := range n {
		id := fmt.Sprintf("1a%020d", i)
		at := now.Add(time.Duration(i-n) * time.Second)
		pipe.HSet(ctx, "fh:t:default:run:"+id, "name", fmt.Sprintf("flow%d", i%7), "status", "succeeded", "result", `[1,4,9]`,
			"created_at", at.UTC().Format(time.RFC3339Nano), "finished_at", at.Add(time.Second).UTC().Format(time.RFC3339Nano), "spec", `{}`)
		pipe.ZAdd(ctx, "fh:t:default:runs", goredis.Z{Score: float64(at.UnixMilli()), Member: id})
		if i%1000 == 999 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	// The map run: its spec (the input array) and its step's batches.
	xs := make([]int, elems)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	spec := fmt.Sprintf(`{"id":"1amap","tenant":"default","name":"map","modules":{},"sequential":{"steps":[{"kind":"map","tasks":["stats.square"],"param":"x"}]},"inputs":{"x":%s},"steps":[{"name":"map stats.square","fanning":true}]}`, xj)
	rdb.HSet(ctx, "fh:t:default:run:1amap", "name", "map", "status", "succeeded", "spec", spec, "result", "null",
		"steps", `[{"name":"map stats.square","fanning":true}]`, "created_at", now.UTC().Format(time.RFC3339Nano))
	fields := []any{"started", "1", "started_at", now.UTC().Format(time.RFC3339Nano), "finished_at", now.UTC().Format(time.RFC3339Nano),
		"total", elems, "done", elems, "worker", "w1"}
	for i := 0; i < elems; i += 256 {
		outs := make([]string, min(256, elems-i))
		for k := range outs {
			outs[k] = fmt.Sprint((i + k) * (i + k))
		}
		fields = append(fields, fmt.Sprintf("b:%d", i), fmt.Sprintf(`{"i":%d,"o":[%s]}`, i, strings.Join(outs, ",")))
	}
	rdb.HSet(ctx, "fh:t:default:run:1amap:step:0", fields...)
	return "1amap"
}

// latencies GETs url n times and reports its p50 and p99 in ms.
func latencies(b *testing.B, client *http.Client, url string) {
	var ds []time.Duration
	for b.Loop() {
		t0 := time.Now()
		res, err := client.Get(url)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("GET %s: %v %v", url, err, res)
		}
		var v json.RawMessage
		json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkAPI measures the API on a real redis-server holding 10,000
// runs and a 20,000-element map: a page of 50 runs (list), beside the
// same page read as the command line's Runs read it before (an HGETALL
// a run, one round trip each); the map run's page (run-page-20k), beside
// the same page read as status read it before (the spec, with its input
// of 20,000 elements, decoded, and every step's hash whole: its batches).
func BenchmarkAPI(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	c, err := redis.Dial(ctx, srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	mapRun := seedRuns(b, c.Redis(), 10000, 20000)
	ts := httptest.NewServer(server.New(server.Config{Source: c}))
	defer ts.Close()
	b.Run("list", func(b *testing.B) { latencies(b, ts.Client(), ts.URL+"/api/v1/runs?limit=50") })
	b.Run("list-filtered", func(b *testing.B) { latencies(b, ts.Client(), ts.URL+"/api/v1/runs?limit=50&name=flow3") })
	b.Run("list-baseline-hgetall-each", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.Runs(ctx, "default", 50); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
	})
	b.Run("run-page-20k", func(b *testing.B) { latencies(b, ts.Client(), ts.URL+"/api/v1/runs/"+mapRun) })
	b.Run("run-page-20k-baseline-spec-hgetall", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.Status(ctx, "default", mapRun); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Spec(ctx, "default", mapRun); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Redis().HGetAll(ctx, "fh:t:default:run:1amap:step:0").Result(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
	})

}
