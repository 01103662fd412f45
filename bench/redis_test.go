package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	fhredis "github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

const redisN = 100000

// flowhostBin builds the command once per benchmark.
func flowhostBin(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "flowhost")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/flowhost").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startWorkers starts n worker processes on the server.
func startWorkers(b *testing.B, bin string, srv interface{ URL() string }, n int, args ...string) {
	cache := filepath.Join(b.TempDir(), "cache")
	for i := range n {
		cmd := exec.Command(bin, append([]string{"worker", "--broker", srv.URL(), "--name", fmt.Sprintf("w%d", i)}, args...)...)
		cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cache)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
}

// BenchmarkRedisMap runs a 100,000-element map of the C example's square
// on two worker processes (one core each) through a local redis-server,
// from submit to result, and reports items/s:
//   - off: the workers cache nothing (BullMQ's figure on the same server,
//     from bench/bullmq, is beside this one: see bench/redis.sh);
//   - cold: the cache on, every element new (each call a miss, stored);
//   - warm: the cache on, the same input again (each call a hit: one
//     round trip per batch).
func BenchmarkRedisMap(b *testing.B) {
	bin := flowhostBin(b)
	dir := b.TempDir()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	flow := filepath.Join(dir, "map.toml")
	os.WriteFile(flow, []byte(fmt.Sprintf("[plugins]\nstats = %q\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n", stats)), 0o644)
	input := func(base int) string {
		xs := make([]int, redisN)
		for i := range xs {
			xs[i] = base + i // distinct: the cold run's every call a miss
		}
		xj, _ := json.Marshal(xs)
		path := filepath.Join(dir, fmt.Sprintf("x%d.json", base))
		os.WriteFile(path, xj, 0o644)
		return path
	}
	for _, tc := range []struct {
		name   string
		args   []string
		varied bool // a new input each run
	}{
		{"off", []string{"--no-cache"}, false},
		{"cold", nil, true},
		{"warm", nil, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := redistest.Start(b, "--appendfsync", "everysec") // the production setting (docs/distributed.md)
			startWorkers(b, bin, srv, 2, append([]string{"--concurrency", "1"}, tc.args...)...)
			run := func(in string) {
				out, err := exec.Command(bin, "run", "--json", "--broker", srv.URL(), "--input", "x=@"+in, flow).Output()
				if err != nil || !strings.Contains(string(out), `"succeeded"`) {
					b.Fatalf("run: %v %.300s", err, out)
				}
			}
			same := input(0)
			run(same) // warm: workers fetch and compile the module (and, for warm, fill the cache)
			base := 0
			for b.Loop() {
				in := same
				if tc.varied {
					b.StopTimer()
					base += redisN
					in = input(base)
					b.StartTimer()
				}
				run(in)
			}
			b.ReportMetric(float64(redisN*b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

func BenchmarkRedisLatency(b *testing.B) {
	srv := redistest.Start(b, "--appendfsync", "everysec") // the production setting (docs/distributed.md)
	bin := flowhostBin(b)
	startWorkers(b, bin, srv, 2, "--concurrency", "1")
	ctx := context.Background()
	c, err := fhredis.Dial(ctx, srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	wasm := mustRead(b, "../plugins/examples/stats-c/stats.wasm")
	e := engine(b, b.TempDir())
	m, err := e.Load(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	c.Upload(ctx, "default", m.SHA256, wasm)
	one := func() time.Duration { return oneSquare(b, c, m.SHA256) }
	one()
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for range 100 { // percentiles need samples: 100 runs per op
			lat = append(lat, one())
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// oneSquare is a one-task run of the C example's square (module sha,
// uploaded for the default tenant) through c, submit to result.
func oneSquare(b *testing.B, c *fhredis.Client, sha string) time.Duration {
	ctx := context.Background()
	spec := &fhredis.Spec{ID: runner.NewRunID(), Modules: map[string]string{"stats": sha},
		Seq: pipeline.New(nil).CallNext("stats.square"), Inputs: pipeline.Inputs{"x": json.RawMessage("12")},
		Steps: []fhredis.StepInfo{{Name: "call stats.square"}}}
	start := time.Now()
	if err := c.Submit(ctx, spec); err != nil {
		b.Fatal(err)
	}
	if st, err := c.Wait(ctx, "default", spec.ID); err != nil || string(st.Result) != "144" {
		b.Fatalf("%v %+v", err, st)
	}
	return time.Since(start)
}

// BenchmarkStreamsCeiling is the bare Redis Streams loop, the ceiling:
// XADD pipelined 1,000 at a time, then XREADGROUP COUNT 1000, each
// batch acknowledged by one XACK; entries/s.
func BenchmarkStreamsCeiling(b *testing.B) {
	srv := redistest.Start(b, "--appendfsync", "everysec") // the production setting (docs/distributed.md)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		stream := fmt.Sprintf("s%d", i)
		rdb.XGroupCreateMkStream(ctx, stream, "g", "0")
		for j := 0; j < redisN; j += 1000 {
			p := rdb.Pipeline()
			for k := j; k < j+1000; k++ {
				p.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"m", "{}"}})
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for got := 0; got < redisN; {
			res, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 1000}).Result()
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, len(res[0].Messages))
			for k, m := range res[0].Messages {
				ids[k] = m.ID
			}
			if err := rdb.XAck(ctx, stream, "g", ids...).Err(); err != nil {
				b.Fatal(err)
			}
			got += len(res[0].Messages)
		}
		rdb.Del(ctx, stream)
	}
	b.ReportMetric(float64(redisN*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkFairness measures a one-task run of tenant B submitted while
// tenant A's 200 tasks of ~50 ms wait on two workers: B in its own tenant
// (its own stream), and B in A's tenant (one FIFO queue: the baseline).
func BenchmarkFairness(b *testing.B) {
	srv := redistest.Start(b, "--appendfsync", "everysec")
	bin := flowhostBin(b)
	startWorkers(b, bin, srv, 2, "--concurrency", "1", "--batch-size", "1")
	ctx := context.Background()
	c, err := fhredis.Dial(ctx, srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	busy := testmod.Module(b, "../tests/testdata/flaky.wat", "../tests/testdata/flaky.json")
	stats := mustRead(b, "../plugins/examples/stats-c/stats.wasm")
	e := engine(b, b.TempDir())
	mods := map[string]string{}
	for alias, w := range map[string][]byte{"flaky": busy, "stats": stats} {
		m, err := e.Load(ctx, w)
		if err != nil {
			b.Fatal(err)
		}
		for _, tenant := range []string{"a", "b"} {
			c.Upload(ctx, tenant, m.SHA256, w)
		}
		mods[alias] = m.SHA256
	}
	xs := make([]int, 200)
	xj, _ := json.Marshal(xs)
	submit := func(tenant string, seq *pipeline.Sequential, in pipeline.Inputs) string {
		spec := &fhredis.Spec{ID: runner.NewRunID(), Tenant: tenant, Modules: mods, Seq: seq, Inputs: in,
			Steps: []fhredis.StepInfo{{Name: "step"}, {Name: "step"}}}
		if err := c.Submit(ctx, spec); err != nil {
			b.Fatal(err)
		}
		return spec.ID
	}
	for _, tc := range []struct{ name, tenant string }{{"own-tenant", "b"}, {"fifo-same-tenant", "a"}} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				flood := submit("a", pipeline.New(nil).Map("flaky.busy", pipeline.Param("x")), pipeline.Inputs{"x": xj})
				time.Sleep(300 * time.Millisecond) // the flood is queued and running
				start := time.Now()
				id := submit(tc.tenant, pipeline.New(nil).CallNext("stats.square"), pipeline.Inputs{"x": json.RawMessage("3")})
				if st, err := c.Wait(ctx, tc.tenant, id); err != nil || st.Status != "succeeded" {
					b.Fatalf("%v %+v", err, st)
				}
				total += time.Since(start)
				c.Cancel(ctx, "a", flood)
				time.Sleep(200 * time.Millisecond) // let the workers drop the cancelled flood
				c.Redis().Del(ctx, "fh:t:a:q")
				c.Redis().XGroupCreateMkStream(ctx, "fh:t:a:q", "workers", "$")
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-result")
		})
	}
}

// BenchmarkRedisCluster runs, in one run, the 100,000-element map on 2
// workers (cache off) and the one-task latency (p50, p99 of 100 runs an
// op) on one redis-server and on a Redis Cluster of three masters with
// a replica each, all on this machine: the cluster's price.
func BenchmarkRedisCluster(b *testing.B) {
	bin := flowhostBin(b)
	dir := b.TempDir()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	flow := filepath.Join(dir, "map.toml")
	os.WriteFile(flow, []byte(fmt.Sprintf("[plugins]\nstats = %q\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n", stats)), 0o644)
	xs := make([]int, redisN)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	in := filepath.Join(dir, "x.json")
	os.WriteFile(in, xj, 0o644)
	one := filepath.Join(dir, "one.toml")
	os.WriteFile(one, []byte(fmt.Sprintf("[plugins]\nstats = %q\n[inputs]\nx = 12\n[[step]]\ncall = \"stats.square\"\n", stats)), 0o644)
	for _, tc := range []struct {
		name  string
		start func() interface{ URL() string }
	}{
		{"server", func() interface{ URL() string } { return redistest.Start(b, "--appendfsync", "everysec") }},
		{"cluster", func() interface{ URL() string } { return redistest.StartCluster(b, 3, 1) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := tc.start()
			startWorkers(b, bin, srv, 2, "--concurrency", "1", "--no-cache")
			run := func(args ...string) {
				out, err := exec.Command(bin, append([]string{"run", "--json", "--broker", srv.URL()}, args...)...).Output()
				if err != nil || !strings.Contains(string(out), `"succeeded"`) {
					b.Fatalf("run: %v %.300s", err, out)
				}
			}
			run("--input", "x=@"+in, flow) // the workers fetch and compile the module
			ctx := context.Background()
			c, err := fhredis.Dial(ctx, srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			wasm := mustRead(b, stats)
			e := engine(b, b.TempDir())
			m, err := e.Load(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			c.Upload(ctx, "default", m.SHA256, wasm)
			oneRun := func() time.Duration { return oneSquare(b, c, m.SHA256) }
			oneRun()
			var lat []time.Duration
			var mapTime time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				run("--input", "x=@"+in, flow)
				mapTime += time.Since(t0)
				for range 100 {
					lat = append(lat, oneRun())
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(redisN*b.N)/mapTime.Seconds(), "map-items/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
