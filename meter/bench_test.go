package meter

import (
	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// benchModes are the three ways of bounding a guest the benchmarks compare.
var benchModes = []string{
	"plain",              // uninstrumented, unbounded
	"fuel",               // instrumented; the host refills 1M fuel at a time
	"closeOnContextDone", // uninstrumented, WithCloseOnContextDone(true), context with a deadline
}

const refill = 1_000_000

// benchSetup instantiates bench.wat for a mode and returns the function,
// the context to call it with, and what to do before each call.
func benchSetup(b *testing.B, mode, fn string) (api.Function, context.Context, func()) {
	b.Helper()
	ctx := context.Background()
	wasm := wat(b, "bench.wat")
	cfg := wazero.NewRuntimeConfigCompiler()
	before := func() {}
	switch mode {
	case "fuel":
		wasm = mustInstrument(b, wasm)
	case "fuel+marks":
		var err error
		if wasm, _, err = InstrumentWith(wasm, Options{MarkWrites: true}); err != nil {
			b.Fatal(err)
		}
	case "closeOnContextDone":
		cfg = cfg.WithCloseOnContextDone(true)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Hour)
		b.Cleanup(cancel)
	}
	r := wazero.NewRuntimeWithConfig(context.Background(), cfg)
	b.Cleanup(func() { r.Close(context.Background()) })
	h := &host{refill: refill, maxRefills: -1}
	if _, err := r.NewHostModuleBuilder(ImportModule).
		NewFunctionBuilder().WithFunc(h.onOutOfFuel).Export(FuncOutOfFuel).
		NewFunctionBuilder().WithFunc(h.onTooDeep).Export(FuncTooDeep).
		Instantiate(context.Background()); err != nil {
		b.Fatal(err)
	}
	m, err := r.Instantiate(context.Background(), wasm)
	if err != nil {
		b.Fatal(err)
	}
	if mode != "plain" && mode != "closeOnContextDone" {
		// What a host does before each call: a fresh budget and depth.
		fuel, depth := meterGlobals(b, m)
		before = func() {
			fuel.Set(refill)
			depth.Set(10_000)
		}
	}
	return m.ExportedFunction(fn), ctx, before
}

// BenchmarkHotLoop runs 10M iterations of arithmetic per op.
func BenchmarkHotLoop(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			f, ctx, before := benchSetup(b, mode, "hot")
			stack := make([]uint64, 1)
			var want uint64
			for i := 0; b.Loop(); i++ {
				before()
				stack[0] = 10_000_000
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					want = stack[0]
				} else if stack[0] != want {
					b.Fatalf("result %d, then %d", want, stack[0])
				}
			}
		})
	}
}

// BenchmarkStoreLoop runs 10M iterations of a loop with two stores per
// op: what marking dirty chunks (Options.MarkWrites) costs a store-bound
// guest.
func BenchmarkStoreLoop(b *testing.B) {
	for _, mode := range []string{"plain", "fuel", "fuel+marks"} {
		b.Run(mode, func(b *testing.B) {
			f, ctx, before := benchSetup(b, mode, "stores")
			stack := make([]uint64, 1)
			for b.Loop() {
				before()
				stack[0] = 10_000_000
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCall measures the cost of calling a trivial function.
func BenchmarkCall(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			f, ctx, before := benchSetup(b, mode, "nop")
			stack := make([]uint64, 1)
			for b.Loop() {
				before()
				stack[0] = 41
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			if stack[0] != 42 {
				b.Fatalf("nop(41) = %d", stack[0])
			}
		})
	}
}
