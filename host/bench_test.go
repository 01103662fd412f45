package host_test

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

// BenchmarkCall measures one call on a warm instance beside its floor, a
// bare wazero call of a function that returns at once, in the same run:
// echo goes through the ABI (input, alloc, store, output), bytes also
// reads 16 random bytes (restarting the fixed stream every call).
func BenchmarkCall(b *testing.B) {
	ctx := context.Background()
	b.Run("floor=wazero-bare-nop", func(b *testing.B) {
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		mod, err := rt.Instantiate(ctx, testmod.WATText(b, `(module (func (export "nop") (result i32) (i32.const 0)))`))
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
	e := newEngine(b)
	for _, c := range []struct {
		name, wat, manifest, task string
		input                     []byte
	}{
		{"echo", "testdata/hostile.wat", "testdata/hostile.json", "echo", []byte(`{"value":1}`)},
		{"random-bytes", "testdata/random.wat", "testdata/random.json", "bytes", []byte(`{}`)},
	} {
		b.Run("flowhost/"+c.name, func(b *testing.B) {
			tk := task(b, load(b, e, testmod.Module(b, c.wat, c.manifest)), c.task)
			b.ReportAllocs()
			for b.Loop() {
				if out, err := tk.Call(ctx, c.input, host.DefaultLimits); err != nil || len(out) == 0 {
					b.Fatal(out, err)
				}
			}
		})
	}
}
