package redis

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

type fixture struct {
	srv    *redistest.Server
	client *Client
	eng    *host.Engine
	mods   map[string]string // alias → sha
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := setupAt(t, srv.URL())
	f.srv = srv
	return f
}

// setupAt is setup on the broker at url (a cluster's, say).
func setupAt(t *testing.T, url string) *fixture {
	t.Helper()
	ctx := context.Background()
	c, err := Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	eng, err := host.New(ctx, host.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(ctx) })
	f := &fixture{client: c, eng: eng, mods: map[string]string{}}
	for alias, path := range map[string]string{
		"text":  "../../plugins/examples/textkit-go/textkit.wasm",
		"stats": "../../plugins/examples/stats-c/stats.wasm",
	} {
		wasm, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := eng.Load(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"default", "acme"} {
			if err := c.Upload(ctx, tenant, m.SHA256, wasm); err != nil {
				t.Fatal(err)
			}
		}
		f.mods[alias] = m.SHA256
	}
	return f
}

// workers starts n workers in this process; they stop when the test ends.
func (f *fixture) workers(t *testing.T, n int, cfg WorkerConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		c := cfg
		c.Engine = f.eng
		w := NewWorker(f.client, c)
		go func() { w.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for i := 0; i < n; i++ {
			<-done
		}
	})
}

func (f *fixture) submit(t *testing.T, spec *Spec) *Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec.ID = runner.NewRunID()
	spec.Modules = f.mods
	if err := f.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	st, err := f.client.Wait(ctx, spec.Tenant, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSequentialAndDataflow(t *testing.T) {
	testRuns(t, setup(t))
}

// TestClusterRuns runs the same flows on a Redis Cluster of three
// masters (each with a replica), for tenants whose keys are on
// different masters.
func TestClusterRuns(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	f := setupAt(t, c.URL())
	masters := map[string]bool{}
	for _, tenant := range []string{"default", "acme"} {
		masters[c.MasterOf(f.client.k.streamKey(tenant)).Addr] = true
	}
	if len(masters) != 2 {
		t.Fatalf("tenants default and acme on %d master(s): the test needs two", len(masters))
	}
	testRuns(t, f)
}

// testRuns runs sequential and dataflow flows of two tenants on f.
func testRuns(t *testing.T, f *fixture) {
	f.workers(t, 2, WorkerConfig{Concurrency: 2, BatchSize: 7})
	xs := make([]int, 100)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	cases := []struct {
		name string
		spec *Spec
		want string
	}{
		{"sequential", &Spec{Seq: pipeline.New(nil).
			Filter("stats.is_even", pipeline.Param("x")).
			Map("stats.square").
			Group([]string{"stats.sum", "stats.mean"}), Inputs: pipeline.Inputs{"x": xj}},
			`[161700,3234]`},
		{"empty map", &Spec{Seq: pipeline.New(nil).Map("stats.square", pipeline.Param("x")), Inputs: pipeline.Inputs{"x": json.RawMessage(`[]`)}}, `[]`},
		{"skip errors", &Spec{Seq: pipeline.New(nil).Map("text.fail_if", pipeline.Param("flag"), pipeline.SkipErrors()),
			Inputs: pipeline.Inputs{"flag": json.RawMessage(`[false,true,false]`)}}, `[false,false]`},
		{"dataflow", &Spec{DF: pipeline.FromTasks(nil, "text.*").Want("report"),
			Inputs: pipeline.Inputs{"text": json.RawMessage(`"a b a c"`)}}, `{"report":"report: 4 words, 75% distinct"}`},
		{"other tenant", &Spec{Tenant: "acme", Seq: pipeline.New(nil).CallNext("text.upper"), Inputs: pipeline.Inputs{"text": json.RawMessage(`"hi"`)}}, `"HI"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := f.submit(t, c.spec)
			if st.Status != "succeeded" || string(st.Result) != c.want {
				t.Fatalf("status %s result %s error %q; want %s", st.Status, st.Result, st.Error, c.want)
			}
		})
	}
}

func TestFailureAndCancel(t *testing.T) {
	f := setup(t)
	f.workers(t, 1, WorkerConfig{Concurrency: 2})
	st := f.submit(t, &Spec{Seq: pipeline.New(nil).Map("text.fail_if", pipeline.Param("flag")),
		Inputs: pipeline.Inputs{"flag": json.RawMessage(`[false,true]`)}})
	if st.Status != "failed" || st.Error == "" || string(st.Result) != "null" {
		t.Fatalf("status %s error %q", st.Status, st.Error)
	}
	if want := "step 1 (map text.fail_if), element 1: textkit.fail_if: fail_if: flag is true"; st.Error != want {
		t.Fatalf("error %q\nwant  %q", st.Error, want)
	}
}

// squares is a running map of the C square over 0..n-1 on two workers
// with a 1 s lease, submitted by startSquares.
type squares struct {
	f    *fixture
	spec *Spec
	n    int
	ctx  context.Context
}

func startSquares(t *testing.T, f *fixture, n int) *squares {
	t.Helper()
	f.workers(t, 2, WorkerConfig{Concurrency: 2, BatchSize: 20, Lease: time.Second})
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	spec := &Spec{ID: runner.NewRunID(), Modules: f.mods, Seq: pipeline.New(nil).Map("stats.square", pipeline.Param("x")), Inputs: pipeline.Inputs{"x": xj}}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	if err := f.client.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	return &squares{f: f, spec: spec, n: n, ctx: ctx}
}

// check waits for the map and checks every element is right and
// present once.
func (m *squares) check(t *testing.T) {
	t.Helper()
	st, err := m.f.client.Wait(m.ctx, "default", m.spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	if err := json.Unmarshal(st.Result, &got); err != nil || st.Status != "succeeded" || len(got) != m.n {
		t.Fatalf("status %s, error %q, %d results", st.Status, st.Error, len(got))
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("element %d = %d", i, v)
		}
	}
}

// TestClusterFailover kills the master of a tenant's slot in the middle
// of a map: its replica takes over, and the run completes with every
// element right, each present once.
func TestClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	f := setupAt(t, c.URL())
	m := startSquares(t, f, 4000)
	master := c.MasterOf(f.client.k.streamKey("default"))
	time.Sleep(150 * time.Millisecond) // part way through the map
	master.Stop()
	killed := time.Now()
	m.check(t)
	// The failover takes ~2 s; a client's map of slots follows it within
	// a second, and a lease later the dead master's messages run again.
	if d := time.Since(killed); d > 30*time.Second {
		t.Fatalf("the run ended %s after its master died", d)
	}
}

// TestClusterReshard moves a tenant's slot, with its keys, to another
// master in the middle of a map: the run completes with every element
// right, each present once.
func TestClusterReshard(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	f := setupAt(t, c.URL())
	m := startSquares(t, f, 20000)
	key := f.client.k.streamKey("default")
	from := c.MasterOf(key)
	var to *redistest.Server
	for _, s := range c.Nodes[:3] { // the masters
		if s != from {
			to = s
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // part way through the map
	if st, err := f.client.Status(m.ctx, "default", m.spec.ID); err != nil || st.Ended() {
		t.Fatalf("the run ended before the move: %v", err)
	}
	c.MoveSlot(key, to)
	if got := c.MasterOf(key); got != to {
		t.Fatalf("the slot is on %s, not %s", got.Addr, to.Addr)
	}
	m.check(t)
}

// TestClusterBrokenStream: on a cluster, where a worker reads each
// tenant with a command of its own, a tenant that turns its stream into
// a string, and one whose consumer group is gone, cost the others
// nothing: their runs complete, and the missing group is made again.
func TestClusterBrokenStream(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	f := setupAt(t, c.URL())
	ctx := context.Background()
	cc := c.Client()
	for _, tenant := range []string{"acme", "bravo"} {
		if err := ensureTenant(ctx, f.client.rdb, f.client.k, tenant); err != nil {
			t.Fatal(err)
		}
	}
	cc.Del(ctx, f.client.k.streamKey("acme"))
	cc.Set(ctx, f.client.k.streamKey("acme"), "not a stream", 0)
	cc.XGroupDestroy(ctx, f.client.k.priorityStream("bravo", 5), group)
	f.workers(t, 1, WorkerConfig{Concurrency: 2})
	start := time.Now()
	st := f.submit(t, &Spec{Seq: pipeline.New(nil).CallNext("stats.square"), Inputs: pipeline.Inputs{"x": json.RawMessage("12")}})
	if st.Status != "succeeded" || string(st.Result) != "144" {
		t.Fatalf("status %s result %s error %q", st.Status, st.Result, st.Error)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("default's run took %s beside acme's broken stream", d)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		groups, _ := cc.XInfoGroups(ctx, f.client.k.priorityStream("bravo", 5)).Result()
		if len(groups) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bravo's consumer group was not made again")
		}
	}
}
