package bench

import (
	"context"
	"testing"

	"github.com/flowhost/flowhost/broker/inproc"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// statsModule loads the C example module on an engine and starts an
// in-process broker, both closed when b ends.
func statsModule(b *testing.B) (*host.Engine, *host.Module, *inproc.Broker) {
	ctx := context.Background()
	e := engine(b, b.TempDir())
	b.Cleanup(func() { e.Close(ctx) })
	stats, err := e.Load(ctx, mustRead(b, "../plugins/examples/stats-c/stats.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	br := inproc.New(0)
	b.Cleanup(func() { br.Close() })
	return e, stats, br
}

// BenchmarkWhen measures what a `when` costs a 20,000-element map step
// of the C example's square, beside the same flow without it, in one
// run: "inputs" tests a flow input; "result" reads the previous
// result, the 20,000-element array the map runs over, which is decoded
// for the condition. Each flow is two maps of 20,000 squares, the
// condition on the second.
func BenchmarkWhen(b *testing.B) {
	ctx := context.Background()
	_, stats, br := statsModule(b)
	r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": stats}})
	in := pipeline.Inputs{"x": distinct(mapN, 0), "go": []byte("true")}
	for _, c := range []struct{ name, when string }{{"off", ""}, {"inputs", "inputs.go"}, {"result", "size(result) > 0"}} {
		p := pipeline.New(nil).Map("stats.square", pipeline.Param("x")).Map("stats.square", pipeline.When(c.when))
		if c.when == "" { // no condition: the go input is read by none
			delete(in, "go")
		}
		plan, err := dag.PlanSequential(r.Catalog(), p, in)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.ExecSequential(ctx, "bench", plan); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*mapN)/1000, "µs/element")
		})
		in["go"] = []byte("true")
	}
}
