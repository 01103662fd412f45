package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	fh "github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/pipeline"
)

// TestHostileNeighbours runs every kind of misbehaving task at once, next
// to a well-behaved pipeline on the same host: the good one finishes,
// correctly and on time, every bad one fails with its own class of error,
// and the host's memory stays bounded.
func TestHostileNeighbours(t *testing.T) {
	ctx := context.Background()
	h, err := fh.New(ctx, fh.Options{CacheDir: cacheDir,
		Limits: pipeline.Limits{Timeout: time.Second, Memory: 32 << 20, MaxOutput: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for alias, path := range map[string]string{
		"bad":   write("hostile.wasm", testmod.Module(t, "../host/testdata/hostile.wat", "../host/testdata/hostile.json")),
		"wasi":  write("wasi.wasm", testmod.Module(t, "../host/testdata/wasi_read.wat", "../host/testdata/wasi_read.json")),
		"stats": "../plugins/examples/stats-c/stats.wasm",
	} {
		if err := h.Load(ctx, alias, path); err != nil {
			t.Fatal(err)
		}
	}
	// A module importing something it may not is refused at load.
	unknown := write("unknown.wasm", testmod.WithManifest(t, testmod.WAT(t, "../host/testdata/unknown_import.wat"),
		`{"abi":1,"name":"u","tasks":[{"name":"run","inputs":[],"outputs":["y"]}]}`))
	if err := h.Load(ctx, "unknown", unknown); err == nil || !strings.Contains(err.Error(), "env.get_secret") {
		t.Fatalf("unknown import: %v", err)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	bad := []struct {
		task, class string
		limits      pipeline.Limits
	}{
		{"bad.spin", "timeout", pipeline.Limits{}},
		{"bad.spin", "fuel exhausted", pipeline.Limits{Fuel: 20_000_000, Timeout: time.Minute}},
		{"bad.grow", "memory limit", pipeline.Limits{}},
		{"bad.recurse", "stack overflow", pipeline.Limits{}},
		{"bad.huge_output", "memory limit", pipeline.Limits{}},
		{"bad.big_alloc", "memory limit", pipeline.Limits{}},
		{"bad.trap", "trap", pipeline.Limits{}},
		{"bad.bad_json", "bad output", pipeline.Limits{}},
		{"bad.http", "denied", pipeline.Limits{}},
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	stop := make(chan struct{})
	for _, b := range bad {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := pipeline.New(h).CallNext(b.task, pipeline.WithLimits(b.limits)).Run(ctx, nil)
				if err == nil || !strings.Contains(err.Error(), b.class) {
					errs <- b.task + ": " + errString(err) + "; want " + b.class
					return
				}
			}
		}()
	}
	// The sandbox hides the host's files and environment.
	for _, c := range []struct{ task, want string }{{"wasi.read", "4"}, {"wasi.env", "0"}} {
		res, err := pipeline.New(h).CallNext(c.task).Run(ctx, nil)
		if err != nil || string(res.Value) != c.want {
			t.Errorf("%s: %v %v; want %s", c.task, res, err, c.want)
		}
	}
	// The well-behaved tenant, meanwhile.
	xs := make([]int, 2000)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	start := time.Now()
	for range 5 {
		res, err := pipeline.New(h).Map("stats.square", pipeline.Param("x")).Group([]string{"stats.sum"}).
			Run(ctx, pipeline.Inputs{"x": xj})
		if err != nil || string(res.Value) != "[2664667000]" {
			t.Fatalf("good pipeline: %v %v", res, err)
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if took > 30*time.Second {
		t.Errorf("the good pipeline took %s beside the hostile ones", took)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 256<<20 {
		t.Errorf("the heap grew by %d MiB", grown>>20)
	}
	t.Logf("good pipeline: 5 × 2,000-element map in %s beside %d hostile loops; heap %d → %d MiB",
		took, len(bad), before.HeapInuse>>20, after.HeapInuse>>20)
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
