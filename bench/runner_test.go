package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/broker/inproc"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/metrics"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

const mapN = 20000

// mapInput writes the map's input array, 0..mapN-1, to a file.
func mapInput(b *testing.B) (path string, raw []byte) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range mapN {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprint(&sb, i%1000)
	}
	sb.WriteByte(']')
	path = filepath.Join(b.TempDir(), "x.json")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path, []byte(sb.String())
}

// BenchmarkMap runs a 20,000-element map of a trivial task, the C
// example's square and the WAT echo (the ABI's cost alone): through the
// whole `flowhost run` process (with the result cache off, and warm: every
// element a hit), through the runner embedded in this process, and as a
// loop of Extism Go SDK Plugin.Call on one warm plugin, the baseline. The
// metric to compare is µs/element.
func BenchmarkMap(b *testing.B) {
	ctx := context.Background()
	stats, err := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		b.Fatal(err)
	}
	echoPath := filepath.Join(b.TempDir(), "trivial.wasm")
	if err := os.WriteFile(echoPath, trivial(b), 0o644); err != nil {
		b.Fatal(err)
	}
	inputPath, inputRaw := mapInput(b)
	tasks := []struct{ name, path, task, param string }{
		{"c-square", stats, "square", "x"},
		{"wat-echo", echoPath, "echo", "value"},
	}

	b.Run("extism-go-sdk-loop/c-square", func(b *testing.B) {
		p := extismPlugin(b, mustRead(b, stats))
		defer p.Close(ctx)
		var elems []json.RawMessage
		if err := json.Unmarshal(inputRaw, &elems); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			for _, e := range elems {
				if _, _, err := p.Call("square", []byte(`{"x":`+string(e)+`}`)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*mapN), "µs/element")
	})

	dir := b.TempDir()
	bin := filepath.Join(dir, "flowhost")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/flowhost").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range tasks {
		flow := filepath.Join(dir, tc.name+".toml")
		src := fmt.Sprintf("[plugins]\nm = %q\n[[step]]\nmap = \"m.%s\"\nparam = %q\n", tc.path, tc.task, tc.param)
		if err := os.WriteFile(flow, []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		for _, cached := range []bool{false, true} {
			name := "flowhost-run-process/" + tc.name + "/no-cache"
			if cached {
				name = "flowhost-run-process/" + tc.name + "/cache-warm"
			}
			b.Run(name, func(b *testing.B) {
				cache := filepath.Join(b.TempDir(), "cache")
				run := func() {
					args := []string{"run", "--json", "-q", "--input", tc.param + "=@" + inputPath}
					if !cached {
						args = append(args, "--no-cache")
					}
					cmd := exec.Command(bin, append(args, flow)...)
					cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cache)
					out, err := cmd.Output()
					if err != nil || !strings.HasPrefix(string(out), `{"run_id"`) || !strings.Contains(string(out), `"succeeded"`) {
						b.Fatalf("run: %v\n%.300s", err, out)
					}
				}
				run() // fill the compilation cache (and the result cache), as any earlier run would have
				b.ResetTimer()
				for b.Loop() {
					run()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*mapN), "µs/element")
			})
		}
	}

	for _, tc := range tasks {
		b.Run("flowhost-embedded/"+tc.name, func(b *testing.B) {
			e := engine(b, b.TempDir())
			defer e.Close(ctx)
			m, err := e.Load(ctx, mustRead(b, tc.path))
			if err != nil {
				b.Fatal(err)
			}
			br := inproc.New(0)
			defer br.Close()
			r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"m": m}})
			p := pipeline.New(nil).Map("m."+tc.task, pipeline.Param(tc.param))
			in := pipeline.Inputs{tc.param: inputRaw}
			plan, err := dag.PlanSequential(r.Catalog(), p, in)
			if err != nil {
				b.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.ExecSequential(ctx, "bench", plan); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*mapN), "µs/element")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*mapN), "allocs/element")
		})
	}
}

// chainWAT is a module of n trivial tasks, all one export: each returns 1.
func dataflowModule(b *testing.B, n int) []byte { return graphModule(b, n, false) }

// graphModule is dataflowModule's graph; with seed, its leaf t0 takes the
// flow input "seed".
func graphModule(b *testing.B, n int, seed bool) []byte {
	wasm := testmod.WAT(b, "testdata/one.wat")
	// A layered DAG: node i consumes the outputs of nodes i-1 and i/2, so
	// the graph has fan-in, fan-out and long paths.
	var tasks []string
	for i := range n {
		var ins []string
		if i == 0 && seed {
			ins = append(ins, `"seed"`)
		}
		if i > 0 {
			ins = append(ins, fmt.Sprintf(`"o%d"`, i-1))
		}
		if i > 1 && i/2 != i-1 {
			ins = append(ins, fmt.Sprintf(`"o%d"`, i/2))
		}
		tasks = append(tasks, fmt.Sprintf(`{"name":"t%d","export":"one","inputs":[%s],"outputs":["o%d"]}`, i, strings.Join(ins, ","), i))
	}
	man := `{"abi":1,"name":"graph","tasks":[` + strings.Join(tasks, ",") + `]}`
	return testmod.WithManifest(b, wasm, man)
}

// BenchmarkDataflow1000 measures the scheduling overhead of a 1,000-node
// dataflow graph of trivial tasks: the whole run, next to the same 1,000
// calls made directly, one after the other (the floor).
func BenchmarkDataflow1000(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	e := engine(b, b.TempDir())
	defer e.Close(ctx)
	m, err := e.Load(ctx, dataflowModule(b, n))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("direct-calls", func(b *testing.B) {
		t, _ := m.Task("t0")
		for b.Loop() {
			for range n {
				if _, err := t.Call(ctx, []byte(`{}`), host.DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/node")
	})
	b.Run("runner", func(b *testing.B) {
		br := inproc.New(0)
		defer br.Close()
		r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"g": m}})
		plan, err := dag.PlanDataflow(r.Catalog(), &pipeline.Dataflow{Tasks: []string{"g.*"}, Outputs: []string{fmt.Sprintf("o%d", n-1)}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Nodes) != n {
			b.Fatalf("%d nodes", len(plan.Nodes))
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := r.ExecDataflow(ctx, "bench", plan); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/node")
	})
	b.Run("plan", func(b *testing.B) {
		c := dag.Catalog{"g": m.Manifest}
		for b.Loop() {
			if _, err := dag.PlanDataflow(c, &pipeline.Dataflow{Tasks: []string{"g.*"}}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/node")
	})
}

func mustRead(b *testing.B, path string) []byte {
	w, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkTracking runs the 20,000-element map embedded, with tracking
// and metrics off (the baseline) and on (track.Memory and Prometheus
// metrics on every call), and reports items/s.
func BenchmarkTracking(b *testing.B) {
	ctx := context.Background()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	_, inputRaw := mapInput(b)
	e := engine(b, b.TempDir())
	defer e.Close(ctx)
	m, err := e.Load(ctx, mustRead(b, stats))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}} {
		b.Run(c.name, func(b *testing.B) {
			var opts []inproc.Option
			var obs track.Observer
			if c.on {
				opts = append(opts, inproc.WithMetrics(metrics.New(e)))
				obs = track.NewMemory(0)
			}
			br := inproc.New(0, opts...)
			defer br.Close()
			r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": m}, Observer: obs})
			plan, err := dag.PlanSequential(r.Catalog(), pipeline.New(nil).Map("stats.square", pipeline.Param("x")), pipeline.Inputs{"x": inputRaw})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.ExecSequential(ctx, runner.NewRunID(), plan); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*mapN)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
