package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkMap runs a 20,000-element map of a trivial task (the C
// example's square): through the whole `flowhost run` process, through
// the runner embedded in this process, and as a loop of Extism Go SDK
// Plugin.Call on one warm plugin, the baseline. The metric to compare is
// µs/element.
func BenchmarkMap(b *testing.B) {
	ctx := context.Background()
	stats, err := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		b.Fatal(err)
	}
	inputPath, inputRaw := mapInput(b)

	b.Run("extism-go-sdk-loop", func(b *testing.B) {
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

	b.Run("flowhost-run-process", func(b *testing.B) {
		dir := b.TempDir()
		bin := filepath.Join(dir, "flowhost")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/flowhost").CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		flow := filepath.Join(dir, "map.toml")
		src := fmt.Sprintf("[plugins]\nstats = %q\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n", stats)
		if err := os.WriteFile(flow, []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		cache := filepath.Join(dir, "cache")
		run := func() {
			cmd := exec.Command(bin, "run", "--json", "-q", "--input", "x=@"+inputPath, flow)
			cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cache)
			out, err := cmd.Output()
			if err != nil || !strings.HasPrefix(string(out), `{"run_id"`) || !strings.Contains(string(out), `"succeeded"`) {
				b.Fatalf("run: %v\n%.300s", err, out)
			}
		}
		run() // fill the compilation cache, as any earlier run would have
		b.ResetTimer()
		for b.Loop() {
			run()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*mapN), "µs/element")
	})

	b.Run("flowhost-embedded", func(b *testing.B) {
		e := engine(b, b.TempDir())
		defer e.Close(ctx)
		m, err := e.Load(ctx, mustRead(b, stats))
		if err != nil {
			b.Fatal(err)
		}
		br := inproc.New(0)
		defer br.Close()
		r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": m}})
		p := pipeline.New(nil).Map("stats.square", pipeline.Param("x"))
		in := pipeline.Inputs{"x": inputRaw}
		plan, err := dag.PlanSequential(r.Catalog(), p, in)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := r.ExecSequential(ctx, "bench", plan); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*mapN), "µs/element")
	})
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
