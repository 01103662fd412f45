package flowhost_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
)

func TestHostStatus(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flaky := filepath.Join(t.TempDir(), "flaky.wasm")
	if err := os.WriteFile(flaky, testmod.Module(t, "tests/testdata/flaky.wat", "tests/testdata/flaky.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for alias, path := range map[string]string{"text": "plugins/examples/textkit-go/textkit.wasm", "flaky": flaky} {
		if err := h.Load(ctx, alias, path); err != nil {
			t.Fatal(err)
		}
	}
	in := pipeline.Inputs{"text": json.RawMessage(`"a bb ccc dddd"`)}

	ok, err := pipeline.New(h).CallNext("text.split").Map("text.upper", pipeline.Named("shout")).Run(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	st, found := h.Status(ok.RunID)
	if !found || st.Status != "succeeded" || len(st.Steps) != 2 || st.Steps[1].Name != "shout" || st.Steps[1].Status != "succeeded" ||
		*st.Steps[1].Done != 4 || *st.Steps[1].Total != 4 || st.Steps[0].Done != nil || st.Steps[0].Attempts != 1 {
		t.Fatalf("succeeded run: %+v", st)
	}
	if st.Steps[1].Fuel == 0 || st.Steps[1].PeakMemory == 0 || st.Steps[0].Fuel == 0 {
		t.Fatalf("a step's fuel and peak memory: %+v", st.Steps)
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Steps[1].StartedAt); err != nil {
		t.Fatalf("started_at %q", st.Steps[1].StartedAt)
	}

	retried, err := pipeline.New(h).CallNext("flaky.flaky", pipeline.Retries(2), pipeline.WithLimits(pipeline.Limits{State: policy.StateKeep})).Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := h.Status(retried.RunID); st.Steps[0].Attempts != 2 || st.Status != "succeeded" {
		t.Fatalf("retried run: %+v", st)
	}

	_, err = pipeline.New(h).CallNext("text.fail_if", pipeline.Arg("flag", true), pipeline.Arg("message", "no good")).Run(ctx, nil)
	if err == nil {
		t.Fatal("fail_if succeeded")
	}
	runs := h.Runs()
	if len(runs) != 3 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "no good") ||
		runs[0].Steps[0].Status != "failed" || runs[2].RunID != ok.RunID {
		t.Fatalf("runs: %+v", runs)
	}
}

// TestFirstFailureWins: a run whose one task fails while its siblings
// run reports that task's error, every time, never a sibling canceled on
// its account nor "context canceled".
func TestFirstFailureWins(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for alias, path := range map[string]string{"text": "plugins/examples/textkit-go/textkit.wasm", "stats": "plugins/examples/stats-c/stats.wasm"} {
		if err := h.Load(ctx, alias, path); err != nil {
			t.Fatal(err)
		}
	}
	df := &pipeline.Dataflow{Tasks: []string{"text.split", "text.profile", "text.slugify", "stats.describe"},
		Outputs: []string{"vocab", "total", "slug", "stddev", "mean"}}
	in := pipeline.Inputs{"text": json.RawMessage(`"to be or not to be"`), "values": json.RawMessage(`[]`)}
	seq := pipeline.New(h).Map("stats.square")
	seqIn := pipeline.Inputs{"x": json.RawMessage(`[1, 2, 3, "four", 5, 6, 7, 8, 9, 10, 11, 12]`)}
	for i := range 100 {
		_, err := h.RunDataflow(ctx, df, in)
		if err == nil || !strings.Contains(err.Error(), "stats.describe") || !strings.Contains(err.Error(), "non-empty array") {
			t.Fatalf("dataflow run %d: %v", i, err)
		}
		_, err = seq.Run(ctx, seqIn)
		if err == nil || !strings.Contains(err.Error(), "stats.square") || strings.Contains(err.Error(), "cancel") {
			t.Fatalf("map run %d: %v", i, err)
		}
	}
}

// TestCacheMetrics: the calls a run serves from the cache (a map's, and
// a group's of two tasks) are counted as hits (and as started and
// succeeded), those it runs and stores as misses, whichever part of the
// host served them.
func TestCacheMetrics(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir(), Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stats, _ := filepath.Abs("plugins/examples/stats-c/stats.wasm")
	path := filepath.Join(t.TempDir(), "flow.toml")
	os.WriteFile(path, []byte("[plugins]\nstats = "+strconv.Quote(stats)+"\n[inputs]\nx = [1, 2, 3, 4, 5]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\ngroup = [\"stats.sum\", \"stats.minmax\"]\n"), 0o644)
	f, err := flowhost.LoadFlow(ctx, h.Engine(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.OpenDisk(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for run, want := range []map[string]float64{
		{"flowhost_cache_misses_total": 7, "flowhost_cache_hits_total": 0, "flowhost_tasks_started_total": 7, "flowhost_tasks_succeeded_total": 7},
		{"flowhost_cache_misses_total": 7, "flowhost_cache_hits_total": 7, "flowhost_tasks_started_total": 14, "flowhost_tasks_succeeded_total": 14},
	} {
		if _, out, err := h.Exec(ctx, f, flowhost.ExecOptions{Cache: store}); err != nil || string(out) != `[55,{"min":1,"max":25}]` {
			t.Fatalf("run %d: %s, %v", run+1, out, err)
		}
		rec := httptest.NewRecorder()
		h.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		got := map[string]float64{}
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			name, rest, _ := strings.Cut(line, "{")
			if _, ok := want[name]; ok {
				v, _ := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
				got[name] += v
			}
		}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("after run %d: %s = %v, want %v", run+1, name, got[name], n)
			}
		}
	}
}

// TestLoadAliases: an alias is loaded once, and has no dot.
func TestLoadAliases(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stats, text := "plugins/examples/stats-c/stats.wasm", "plugins/examples/textkit-go/textkit.wasm"
	if err := h.Load(ctx, "m", stats); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ alias, path, want string }{
		{"m", text, `alias "m" is already loaded (module stats`},
		{"m", stats, `alias "m" is already loaded`},
		{"my.text", text, `"my.text" is not a valid alias`},
		{"", text, `"" is not a valid alias`},
	} {
		if err := h.Load(ctx, c.alias, c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q, %s): %v; want %q", c.alias, c.path, err, c.want)
		}
	}
	if m, _ := h.Module("m"); m.Name != "stats" {
		t.Fatalf("m is %s now", m.Name)
	}
}

// TestHostGrants: the Go API's runs have the grants, tenant and limits
// the command line gives a flow: a granted directory is read, the
// tenant's policy must permit the grant, and a missing directory is
// refused when the host starts.
func TestHostGrants(t *testing.T) {
	ctx := context.Background()
	wasm := filepath.Join(t.TempDir(), "wasi.wasm")
	os.WriteFile(wasm, testmod.Module(t, "host/testdata/wasi_read.wat", "host/testdata/wasi_read.json"), 0o644)
	shared := t.TempDir()
	os.MkdirAll(filepath.Join(shared, "etc"), 0o755)
	os.WriteFile(filepath.Join(shared, "etc", "passwd"), []byte("x"), 0o644)
	run := func(opts flowhost.Options) (string, error) {
		opts.CacheDir = t.TempDir()
		h, err := flowhost.New(ctx, opts)
		if err != nil {
			return "", err
		}
		defer h.Close()
		if err := h.Load(ctx, "w", wasm); err != nil {
			t.Fatal(err)
		}
		res, err := pipeline.New(h).CallNext("w.read").Run(ctx, nil)
		if err != nil {
			return "", err
		}
		return string(res.Value), nil
	}
	grants := pipeline.Grants{Files: map[string]string{"/data": shared}}
	if out, err := run(flowhost.Options{}); err != nil || out != "4" {
		t.Fatalf("no grant: %s %v", out, err)
	}
	if out, err := run(flowhost.Options{Grants: grants}); err != nil || out != "0" {
		t.Fatalf("granted: %s %v", out, err)
	}
	strict := &policy.Tenant{}
	if _, err := run(flowhost.Options{Grants: grants, Tenant: "acme", Policy: strict}); err == nil || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("a tenant not permitted the grant: %v", err)
	}
	if _, err := run(flowhost.Options{Grants: pipeline.Grants{Files: map[string]string{"/data": filepath.Join(shared, "missing")}}}); err == nil || !strings.Contains(err.Error(), "Options.Grants: grant files") {
		t.Fatalf("a missing directory: %v", err)
	}
}

// TestRunOnSchedule: a flow's schedule fired in this process runs it
// once a tick, each run its own, until the context ends.
func TestRunOnSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3200*time.Millisecond)
	defer cancel()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stats, _ := filepath.Abs("plugins/examples/stats-c/stats.wasm")
	path := filepath.Join(t.TempDir(), "tick.toml")
	os.WriteFile(path, []byte("[schedule]\nevery = \"1s\"\n[plugins]\nstats = "+strconv.Quote(stats)+"\n[inputs]\nx = 3\n[[step]]\ncall = \"stats.square\"\n"), 0o644)
	f, err := flowhost.LoadFlow(ctx, h.Engine(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ticks []time.Time
	ids := map[string]bool{}
	err = h.RunOnSchedule(ctx, f, flowhost.ExecOptions{}, func(tick time.Time, id string, v json.RawMessage, err error) {
		if err != nil || string(v) != "9" {
			t.Errorf("tick %s: %s %v", tick, v, err)
		}
		ticks, ids[id] = append(ticks, tick), true
	}, nil)
	if err != nil || len(ticks) < 2 || len(ids) != len(ticks) {
		t.Fatalf("%d runs (%d ids) in 3.2 s of a 1 s schedule: %v", len(ticks), len(ids), err)
	}
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i].Sub(ticks[i-1]); d != time.Second {
			t.Fatalf("ticks %v: %v apart", ticks, d)
		}
	}
}

// TestPluginsLoadAtOnce: a flow's modules load concurrently, and of
// several that fail, the first in the file is the one reported, with its
// line; the good ones load all the same.
func TestPluginsLoadAtOnce(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stats, _ := filepath.Abs("plugins/examples/stats-c/stats.wasm")
	json, _ := filepath.Abs("plugins/examples/jsonkit-as/jsonkit.wasm")
	dir := t.TempDir()
	path := filepath.Join(dir, "flow.toml")
	src := "[plugins]\nstats = " + strconv.Quote(stats) + "\nbad1 = \"missing-1.wasm\"\njson = " + strconv.Quote(json) + "\nbad2 = \"missing-2.wasm\"\n[[step]]\ncall = \"stats.square\"\n"
	os.WriteFile(path, []byte(src), 0o644)
	for range 5 {
		_, err := flowhost.LoadFlow(ctx, h.Engine(), path, nil)
		if err == nil || !strings.Contains(err.Error(), "flow.toml:3") || !strings.Contains(err.Error(), "plugin bad1") || strings.Contains(err.Error(), "bad2") {
			t.Fatalf("err = %v, want plugin bad1's, at line 3", err)
		}
	}
	os.WriteFile(path, []byte("[plugins]\nstats = "+strconv.Quote(stats)+"\njson = "+strconv.Quote(json)+"\n[[step]]\ncall = \"stats.square\"\n[inputs]\nx = 3\n"), 0o644)
	f, err := flowhost.LoadFlow(ctx, h.Engine(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Modules["stats"] == nil || f.Modules["json"] == nil || f.Modules["json"].Name != "jsonkit" {
		t.Fatalf("modules %v", f.Modules)
	}
}
