package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/internal/redistest"
)

// BenchmarkRedisThrottle runs a 10,000-call map of the C example's
// square on two worker processes through a local redis-server, from
// submit to result, with no concurrency key ("off") and beside it with
// one that never makes a call wait, so that what is measured is its
// cost: "one-key" (every call's key the same, limit 10,000) and
// "key-per-call" (every call a key of its own, limit 1), and a rate
// that never makes one wait ("rate", 1,000,000/s).
func BenchmarkRedisThrottle(b *testing.B) {
	bin := flowhostBin(b)
	dir := b.TempDir()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	xs := make([]int, 10000)
	for i := range xs {
		xs[i] = i
	}
	xj, _ := json.Marshal(xs)
	in := filepath.Join(dir, "x.json")
	os.WriteFile(in, xj, 0o644)
	srv := redistest.Start(b, "--appendfsync", "everysec")
	startWorkers(b, bin, srv, 2, "--concurrency", "1", "--no-cache")
	for _, tc := range []struct{ name, opts string }{
		{"off", ""},
		{"one-key", `concurrency = { key = "'all'", limit = 10000 }`},
		{"key-per-call", `concurrency = { key = "args.x", limit = 1 }`},
		{"rate", `rate = "1000000/s"`},
	} {
		flow := filepath.Join(dir, tc.name+".toml")
		os.WriteFile(flow, []byte(fmt.Sprintf("[plugins]\nstats = %q\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n%s\n", stats, tc.opts)), 0o644)
		run := func() {
			out, err := exec.Command(bin, "run", "--json", "--broker", srv.URL(), "--input", "x=@"+in, flow).Output()
			if err != nil || !strings.Contains(string(out), `"succeeded"`) {
				b.Fatalf("run: %v %.300s", err, out)
			}
		}
		run() // the workers fetch and compile the module
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(len(xs)*b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
