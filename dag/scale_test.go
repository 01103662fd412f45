package dag

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/pipeline"
)

// chain returns a catalog of one module whose n tasks form a chain, t0
// consuming the flow input v0 and each ti consuming the output of t(i-1),
// and the dataflow pipeline selecting them all by name.
func chain(tb testing.TB, n int) (Catalog, *pipeline.Dataflow, pipeline.Inputs) {
	tb.Helper()
	tasks := make([]string, n)
	refs := make([]string, n)
	for i := range n {
		tasks[i] = fmt.Sprintf(`{"name":"t%d","inputs":["v%d"],"outputs":["v%d"]}`, i, i, i+1)
		refs[i] = fmt.Sprintf("m.t%d", i)
	}
	m, err := abi.ParseManifest([]byte(`{"abi":1,"name":"chain","tasks":[` + strings.Join(tasks, ",") + `]}`))
	if err != nil {
		tb.Fatal(err)
	}
	return Catalog{"m": m}, &pipeline.Dataflow{Tasks: refs}, pipeline.Inputs{"v0": json.RawMessage("1")}
}

// steps returns a sequential pipeline of n call steps.
func steps(n int) *pipeline.Sequential {
	p := pipeline.New(nil)
	for range n {
		p.CallNext("text.upper")
	}
	return p
}

// TestPlanLinear: planning n steps or n tasks costs about n times the
// allocations of one, not n² (a count, so the test cannot flake).
func TestPlanLinear(t *testing.T) {
	plans := []struct {
		name string
		plan func(tb testing.TB, n int) func()
	}{
		{"sequential", func(tb testing.TB, n int) func() {
			c, p := catalog(t), steps(n)
			return func() {
				if _, err := PlanSequential(c, p, inputs("text", `"x"`)); err != nil {
					tb.Fatal(err)
				}
			}
		}},
		{"dataflow", func(tb testing.TB, n int) func() {
			c, p, in := chain(tb, n)
			return func() {
				if _, err := PlanDataflow(c, p, in); err != nil {
					tb.Fatal(err)
				}
			}
		}},
	}
	for _, pl := range plans {
		t.Run(pl.name, func(t *testing.T) {
			small := testing.AllocsPerRun(3, pl.plan(t, 1000))
			big := testing.AllocsPerRun(3, pl.plan(t, 10000))
			if ratio := big / small; ratio > 20 {
				t.Fatalf("10,000 allocate %.0f times, 1,000 %.0f times: %.1f×, want about 10×", big, small, ratio)
			}
		})
	}
}

// BenchmarkPlan compares planning 1,000 and 10,000 steps or tasks.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("sequential/steps=%d", n), func(b *testing.B) {
			c, p := catalog(b), steps(n)
			for b.Loop() {
				if _, err := PlanSequential(c, p, inputs("text", `"x"`)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("dataflow/tasks=%d", n), func(b *testing.B) {
			c, p, in := chain(b, n)
			for b.Loop() {
				if _, err := PlanDataflow(c, p, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
