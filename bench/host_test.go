// Package bench holds side-by-side benchmarks of flowhost against its
// anchors: a bare wazero call (the floor) and the Extism Go SDK (what a
// user would write by hand), measured in the same run.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
)

var echoInput = []byte(`{"value":1}`)

func trivial(b *testing.B) []byte {
	return testmod.Module(b, "testdata/trivial.wat", "testdata/trivial.json")
}

// BenchmarkCall compares the cost of one call of a trivial task.
func BenchmarkCall(b *testing.B) {
	wasm := trivial(b)
	ctx := context.Background()

	b.Run("floor=wazero-bare-nop", func(b *testing.B) {
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		// Satisfy the imports with no-op host functions: nop never calls them.
		env := rt.NewHostModuleBuilder("extism:host/env")
		for name, sig := range map[string][2][]api.ValueType{
			"input_length":   {nil, {api.ValueTypeI64}},
			"input_load_u64": {{api.ValueTypeI64}, {api.ValueTypeI64}},
			"input_load_u8":  {{api.ValueTypeI64}, {api.ValueTypeI32}},
			"alloc":          {{api.ValueTypeI64}, {api.ValueTypeI64}},
			"store_u64":      {{api.ValueTypeI64, api.ValueTypeI64}, nil},
			"store_u8":       {{api.ValueTypeI64, api.ValueTypeI32}, nil},
			"output_set":     {{api.ValueTypeI64, api.ValueTypeI64}, nil},
		} {
			env.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), sig[0], sig[1]).Export(name)
		}
		if _, err := env.Instantiate(ctx); err != nil {
			b.Fatal(err)
		}
		mod, err := rt.Instantiate(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		fn := mod.ExportedFunction("nop")
		stack := make([]uint64, 1)
		b.ReportAllocs()
		for b.Loop() {
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})

	for _, g := range guests(b) {
		b.Run("extism-go-sdk/"+g.name, func(b *testing.B) {
			p := extismPlugin(b, g.wasm)
			defer p.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if _, out, err := p.Call(g.task, g.input); err != nil || len(out) == 0 {
					b.Fatal(out, err)
				}
			}
		})
		b.Run("flowhost/"+g.name, func(b *testing.B) {
			t := flowhostTask(b, g.wasm, g.task)
			warm(b, t, g.input, host.DefaultLimits)
			b.ReportAllocs()
			for b.Loop() {
				if out, err := t.Call(ctx, g.input, host.DefaultLimits); err != nil || len(out) == 0 {
					b.Fatal(out, err)
				}
			}
		})
	}
}

// guest is a trivial task in one guest language.
type guest struct {
	name, task string
	wasm       []byte
	input      []byte
}

// guests are the trivial tasks measured: an echo in WAT (the ABI's cost
// alone), the Go example's echo (a standard Go guest with the Extism Go
// PDK), and the C example's square.
func guests(b *testing.B) []guest {
	read := func(path string) []byte {
		w, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	return []guest{
		{"wat-echo", "echo", trivial(b), echoInput},
		{"go-echo", "echo", read("../plugins/examples/textkit-go/textkit.wasm"), echoInput},
		{"c-square", "square", read("../plugins/examples/stats-c/stats.wasm"), []byte(`{"x":12}`)},
	}
}

// BenchmarkReset measures what starting every call from the instance's
// state after start-up costs, per guest language, against the same warm
// call that keeps whatever the previous call left (Limits.KeepState). The
// snapshot's size is reported as mem-KiB.
func BenchmarkReset(b *testing.B) {
	ctx := context.Background()
	gs := append(guests(b), guest{"as-count-keys", "count_keys", mustRead(b, "../plugins/examples/jsonkit-as/jsonkit.wasm"), []byte(`{"object":{"a":1}}`)})
	for _, g := range gs {
		for _, keep := range []bool{true, false} {
			name := g.name + "/reset"
			if keep {
				name = g.name + "/keep"
			}
			b.Run(name, func(b *testing.B) {
				t := flowhostTask(b, g.wasm, g.task)
				lim := host.DefaultLimits
				lim.State = policy.StateReset
				if keep {
					lim.State = policy.StateKeep
				}
				warm(b, t, g.input, lim)
				b.ReportAllocs()
				for b.Loop() {
					if out, err := t.Call(ctx, g.input, lim); err != nil || len(out) == 0 {
						b.Fatal(out, err)
					}
				}
				b.ReportMetric(float64(t.Module().Stats().IdleMemory)/1024, "mem-KiB")
				if t.Module().Stats().MarksWrites {
					b.ReportMetric(1, "marks")
				} else {
					b.ReportMetric(0, "marks")
				}
			})
		}
	}
}

// warm makes the calls after which the host decides whether a module's
// resetting calls mark what they write (host.MarkAuto), and waits for the
// marking variant's build, so that what is measured is the steady state.
func warm(b *testing.B, t *host.Task, input []byte, lim host.Limits) {
	for range 20 {
		if _, err := t.Call(context.Background(), input, lim); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); lim.State != policy.StateKeep && !t.Module().Stats().MarksWrites && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkParallel measures calls/s with both cores busy.
func BenchmarkParallel(b *testing.B) {
	ctx := context.Background()
	for _, g := range guests(b) {
		b.Run("extism-go-sdk/"+g.name, func(b *testing.B) {
			// One warm plugin per goroutine, made before the clock starts.
			n := runtime.GOMAXPROCS(0)
			plugins := make(chan *extism.Plugin, n)
			for range n {
				p := extismPlugin(b, g.wasm)
				defer p.Close(ctx)
				plugins <- p
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				p := <-plugins
				for pb.Next() {
					if _, _, err := p.Call(g.task, g.input); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run("flowhost/"+g.name, func(b *testing.B) {
			t := flowhostTask(b, g.wasm, g.task)
			// Warm one instance per goroutine before the clock starts.
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t.Call(ctx, g.input, host.DefaultLimits)
				}()
			}
			wg.Wait()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := t.Call(ctx, g.input, host.DefaultLimits); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkInstantiate measures starting a fresh instance (the pool's miss path).
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct{ name, path string }{
		{"wat", ""},
		{"go-guest", "../plugins/examples/textkit-go/textkit.wasm"},
	} {
		b.Run(c.name, func(b *testing.B) {
			wasm := trivial(b)
			task := "echo"
			if c.path != "" {
				var err error
				if wasm, err = os.ReadFile(c.path); err != nil {
					b.Fatal(err)
				}
			}
			e := engine(b, b.TempDir())
			m, err := e.Load(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			tk, ok := m.Task(task)
			if !ok {
				b.Fatalf("no task %s", task)
			}
			// A failing call discards its instance, so every iteration starts one.
			lim := host.Limits{Memory: 64 << 20, MaxOutput: 1}
			for b.Loop() {
				if _, err := tk.Call(ctx, []byte(`{"value":"too long for the output cap"}`), lim); err == nil {
					b.Fatal("expected output too large")
				}
			}
			b.ReportMetric(float64(m.Stats().Created)/float64(b.N), "instances/op")
		})
	}
}

// BenchmarkCompile compares a cold compile of the Go example with a
// compile served by the on-disk cache (as in a second process).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../plugins/examples/textkit-go/textkit.wasm")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			e := engine(b, "off")
			if _, err := e.Load(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			e.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "cache")
		e := engine(b, dir)
		if _, err := e.Load(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		e.Close(ctx)
		for b.Loop() {
			e := engine(b, dir)
			if _, err := e.Load(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			e.Close(ctx)
		}
	})
}

func engine(b *testing.B, cacheDir string) *host.Engine {
	e, err := host.New(context.Background(), host.Config{CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func flowhostTask(b *testing.B, wasm []byte, name string) *host.Task {
	e := engine(b, b.TempDir())
	b.Cleanup(func() { e.Close(context.Background()) })
	m, err := e.Load(context.Background(), wasm)
	if err != nil {
		b.Fatal(err)
	}
	t, ok := m.Task(name)
	if !ok {
		b.Fatalf("no task %s", name)
	}
	return t
}

func extismPlugin(b *testing.B, wasm []byte) *extism.Plugin {
	p, err := extism.NewPlugin(context.Background(), extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm}}}, extism.PluginConfig{EnableWasi: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkLargeCall measures calls that do real work on a large input
// (the C example's describe over 10,000 numbers, the AssemblyScript
// example's count_keys over a 2,000-key object), keeping the guest's
// state and resetting it: what the meter's marks of written memory cost
// a guest's own code, against what they save its reset.
func BenchmarkLargeCall(b *testing.B) {
	ctx := context.Background()
	var nums, obj []byte
	nums = append(nums, `{"values":[`...)
	for i := range 10000 {
		if i > 0 {
			nums = append(nums, ',')
		}
		nums = append(nums, []byte(fmt.Sprint(i%977))...)
	}
	nums = append(nums, "]}"...)
	obj = append(obj, `{"object":{`...)
	for i := range 2000 {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = append(obj, []byte(fmt.Sprintf(`"k%d":[%d,"v"]`, i, i))...)
	}
	obj = append(obj, "}}"...)
	for _, g := range []guest{
		{"c-describe-10k", "describe", mustRead(b, "../plugins/examples/stats-c/stats.wasm"), nums},
		{"as-count-keys-2k", "count_keys", mustRead(b, "../plugins/examples/jsonkit-as/jsonkit.wasm"), obj},
	} {
		for _, state := range []string{policy.StateKeep, policy.StateReset} {
			b.Run(g.name+"/"+state, func(b *testing.B) {
				t := flowhostTask(b, g.wasm, g.task)
				lim := host.DefaultLimits
				lim.State = state
				for b.Loop() {
					if out, err := t.Call(ctx, g.input, lim); err != nil || len(out) == 0 {
						b.Fatal(out, err)
					}
				}
			})
		}
	}
}
