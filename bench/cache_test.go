package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
)

// distinct is a map input of n distinct elements from base.
func distinct(n, base int) []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprint(&sb, base+i)
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

// BenchmarkCache measures the result cache on the embedded runner, each
// beside the same work with the cache off, in one run:
//   - map20k: a 20,000-element map of the C example's square; off, cold
//     (an empty cache: every call a miss, stored), warm (every call a
//     hit), and 100-new (19,900 hits and 100 new elements).
//   - pipeline10: ten maps of 2,000 squares, off, and re-run from step 9
//     (steps 1 to 8 hits, 9 and 10 computed again).
//   - dataflow1000: the 1,000-node graph of BenchmarkDataflow1000, off and
//     warm (every node a hit).
func BenchmarkCache(b *testing.B) {
	ctx := context.Background()
	e, stats, br := statsModule(b)
	mapPlan := func(r *runner.Runner, in []byte) *dag.SeqPlan {
		p, err := dag.PlanSequential(r.Catalog(), pipeline.New(nil).Map("stats.square", pipeline.Param("x")), pipeline.Inputs{"x": in})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	run := func(b *testing.B, store cache.Store, plan *dag.SeqPlan) {
		r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": stats}, Cache: store})
		if _, err := r.ExecSequential(ctx, "bench", plan); err != nil {
			b.Fatal(err)
		}
	}
	base := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": stats}})
	full := mapPlan(base, distinct(mapN, 0))
	perElem := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*mapN)/1000, "µs/element")
	}
	b.Run("map20k/off", func(b *testing.B) {
		for b.Loop() {
			run(b, nil, full)
		}
		perElem(b)
	})
	b.Run("map20k/cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			store, _ := cache.OpenDisk(b.TempDir(), 0, 0)
			b.StartTimer()
			run(b, store, full)
		}
		perElem(b)
	})
	warm, _ := cache.OpenDisk(b.TempDir(), 0, 0)
	run(b, warm, full)
	b.Run("map20k/warm", func(b *testing.B) {
		for b.Loop() {
			run(b, warm, full)
		}
		perElem(b)
	})
	b.Run("map20k/100-new", func(b *testing.B) {
		i := 0
		for b.Loop() {
			b.StopTimer()
			in := string(distinct(mapN-100, 0))
			in = in[:len(in)-1] + "," + string(distinct(100, 1_000_000+100*i))[1:] // 100 elements never seen
			plan := mapPlan(base, []byte(in))
			i++
			b.StartTimer()
			run(b, warm, plan)
		}
		perElem(b)
	})

	// A 10-step pipeline (each a map of 2,000 squares) whose 9th step
	// failed and was fixed: re-run from step 9, steps 1 to 8 are hits.
	var fractions strings.Builder
	fractions.WriteByte('[')
	for i := range 2000 {
		if i > 0 {
			fractions.WriteByte(',')
		}
		fmt.Fprintf(&fractions, "%g", 0.5+float64(i)/4000)
	}
	fractions.WriteByte(']')
	ten := pipeline.New(nil).Map("stats.square", pipeline.Param("x"))
	for range 9 {
		ten = ten.Map("stats.square")
	}
	tenPlan, err := dag.PlanSequential(base.Catalog(), ten, pipeline.Inputs{"x": []byte(fractions.String())})
	if err != nil {
		b.Fatal(err)
	}
	steps := func(b *testing.B, store cache.Store, from int) {
		r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"stats": stats}, Cache: store, RunFrom: from})
		if _, err := r.ExecSequential(ctx, "bench", tenPlan); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("pipeline10/off", func(b *testing.B) {
		for b.Loop() {
			steps(b, nil, 0)
		}
	})
	b.Run("pipeline10/rerun-from-9", func(b *testing.B) {
		store, _ := cache.OpenDisk(b.TempDir(), 0, 0)
		steps(b, store, 0)
		for b.Loop() {
			steps(b, store, 9)
		}
	})

	const n = 1000
	g, err := e.Load(ctx, graphModule(b, n, true))
	if err != nil {
		b.Fatal(err)
	}
	seed := 0
	df := func(store cache.Store) (*runner.Runner, func() *dag.DataflowPlan) {
		r := runner.New(runner.Config{Broker: br, Modules: map[string]*host.Module{"g": g}, Cache: store})
		return r, func() *dag.DataflowPlan {
			seed++
			plan, err := dag.PlanDataflow(r.Catalog(), &pipeline.Dataflow{Tasks: []string{"g.*"}, Outputs: []string{fmt.Sprintf("o%d", n-1)}},
				pipeline.Inputs{"seed": fmt.Appendf(nil, "%d", seed)})
			if err != nil {
				b.Fatal(err)
			}
			return plan
		}
	}
	perNode := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/node")
	}
	exec := func(b *testing.B, r *runner.Runner, plan *dag.DataflowPlan) {
		if _, err := r.ExecDataflow(ctx, "bench", plan); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("dataflow1000/off", func(b *testing.B) {
		r, next := df(nil)
		plan := next()
		for b.Loop() {
			exec(b, r, plan)
		}
		perNode(b)
	})
	b.Run("dataflow1000/warm", func(b *testing.B) {
		store, _ := cache.OpenDisk(b.TempDir(), 0, 0)
		r, next := df(store)
		plan := next()
		exec(b, r, plan)
		for b.Loop() {
			exec(b, r, plan)
		}
		perNode(b)
	})
	// The leaf's input changes every run: t0 runs again, and since its
	// output is the same, the 999 nodes after it are hits.
	b.Run("dataflow1000/leaf-changed", func(b *testing.B) {
		store, _ := cache.OpenDisk(b.TempDir(), 0, 0)
		r, next := df(store)
		exec(b, r, next())
		for b.Loop() {
			b.StopTimer()
			plan := next()
			b.StartTimer()
			exec(b, r, plan)
		}
		perNode(b)
	})
}
