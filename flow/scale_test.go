package flow_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/flow"
)

// bigFlow returns a flow of n steps (sequential) or n tasks, each with
// its own [task."…"] table (dataflow), of the textkit module.
func bigFlow(mode string, n int) []byte {
	var b strings.Builder
	if mode == flow.Dataflow {
		b.WriteString("tasks = [\n")
		for i := range n {
			fmt.Fprintf(&b, "  \"text.t%d\",\n", i)
		}
		b.WriteString("]\n")
	}
	b.WriteString("[plugins]\ntext = \"textkit.wasm\"\n\n[inputs]\ntext = \"a b\"\n")
	for i := range n {
		if mode == flow.Dataflow {
			fmt.Fprintf(&b, "\n[task.\"text.t%d\"]\nretries = 1\n", i)
		} else {
			fmt.Fprintf(&b, "\n[[step]]\ncall = \"text.upper\"\nretries = %d\n", i%3)
		}
	}
	return []byte(b.String())
}

// TestParseLinear: parsing a flow of n steps or tasks costs about n times
// the allocations of one step, not n² (a count, so the test cannot flake).
func TestParseLinear(t *testing.T) {
	for _, mode := range []string{flow.Sequential, flow.Dataflow} {
		t.Run(mode, func(t *testing.T) {
			allocs := func(n int) float64 {
				src := bigFlow(mode, n)
				return testing.AllocsPerRun(2, func() {
					if _, err := flow.Parse("flow.toml", src); err != nil {
						t.Fatal(err)
					}
				})
			}
			small, big := allocs(1000), allocs(10000)
			if ratio := big / small; ratio > 20 {
				t.Fatalf("10,000 %s allocate %.0f times, 1,000 %.0f times: %.1f×, want about 10×", mode, big, small, ratio)
			}
		})
	}
}

// BenchmarkLoad parses and plans a sequential flow of 1,000 and 10,000
// steps on the textkit module's manifest.
func BenchmarkLoad(b *testing.B) {
	js, err := os.ReadFile("../plugins/examples/textkit-go/manifest.json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := abi.ParseManifest(js)
	if err != nil {
		b.Fatal(err)
	}
	cat := dag.Catalog{"text": m}
	for _, n := range []int{1000, 10000} {
		src := bigFlow(flow.Sequential, n)
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			for b.Loop() {
				f, err := flow.Parse("flow.toml", src)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := dag.PlanSequential(cat, f.Sequential, f.Inputs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
