package bench

import (
	"context"
	"testing"

	"github.com/flowhost/flowhost/host"
)

var sink int

func spinWork() int {
	s := 0
	for i := 0; i < 1000; i++ {
		s += i*i ^ (s >> 3)
	}
	return s
}

// BenchmarkScaling shows how much a second goroutine adds on this
// machine: a pure Go loop (the machine's own scaling, the baseline) and a
// flowhost call of the C example's square, each serial and parallel.
func BenchmarkScaling(b *testing.B) {
	b.Run("go-loop/serial", func(b *testing.B) {
		for b.Loop() {
			sink += spinWork()
		}
	})
	b.Run("go-loop/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			s := 0
			for pb.Next() {
				s += spinWork()
			}
			sink += s
		})
	})
	ctx := context.Background()
	t := flowhostTask(b, mustRead(b, "../plugins/examples/stats-c/stats.wasm"), "square")
	in := []byte(`{"x":12}`)
	b.Run("flowhost-square/serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := t.Call(ctx, in, host.DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("flowhost-square/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := t.Call(ctx, in, host.DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
