package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

// span is when one call of clock.hold ran, by its own clock.
type span struct{ start, end int64 }

// clockFlow writes a flow mapping clock.hold over n elements, with opts
// in the step.
func clockFlow(t *testing.T, n int, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "clock.wasm"), testmod.Module(t, "testdata/clock.wat", "testdata/clock.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	b, _ := json.Marshal(xs)
	path := filepath.Join(dir, "flow.toml")
	src := fmt.Sprintf("[plugins]\nclock = \"clock.wasm\"\n[grants]\nclock = true\n[inputs]\nx = %s\n[[step]]\nmap = \"clock.hold\"\nparam = \"x\"\nmax_parallel = 8\n%s\n", b, opts)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// spans runs the flow (args say where) and reads each call's span.
func spans(t *testing.T, flow string, args ...string) []span {
	t.Helper()
	out, r := runJSONOut(t, append(args, flow)...)
	if out.Status != "succeeded" {
		t.Fatalf("run: %s %s", r.stdout, r.stderr)
	}
	var texts []string
	if err := json.Unmarshal(out.Result, &texts); err != nil {
		t.Fatalf("result %s: %v", out.Result, err)
	}
	var ss []span
	for _, s := range texts {
		a, b, _ := strings.Cut(s, "-")
		start, err1 := strconv.ParseInt(a, 16, 64)
		end, err2 := strconv.ParseInt(b, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			t.Fatalf("span %q", s)
		}
		ss = append(ss, span{start, end})
	}
	return ss
}

// overlap is the most spans running at one instant.
func overlap(ss []span) int {
	type edge struct {
		at int64
		d  int
	}
	var es []edge
	for _, s := range ss {
		es = append(es, edge{s.start, 1}, edge{s.end, -1})
	}
	slices.SortFunc(es, func(a, b edge) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.d - b.d // an end before a start at the same instant
	})
	n, most := 0, 0
	for _, e := range es {
		n += e.d
		most = max(most, n)
	}
	return most
}

// TestConcurrencyKey: a concurrency key of limit 2 never has a third
// call running, by the calls' own start and end times: in this process,
// and across two worker processes of four slots each. Without the key
// the same map runs wider, so the check can fail.
func TestConcurrencyKey(t *testing.T) {
	srv := redistest.Start(t)
	for _, name := range []string{"k1", "k2"} {
		worker(t, srv, name, "--concurrency", "4")
	}
	keyed := clockFlow(t, 40, `concurrency = { key = "'shared'", limit = 2 }`)
	perUser := clockFlow(t, 40, `concurrency = { key = "args.x % 2", limit = 1 }`)
	free := clockFlow(t, 40, "")
	for _, d := range []struct {
		name string
		args []string
	}{{"in-process", []string{"--workers", "8"}}, {"redis", []string{"--broker", srv.URL()}}} {
		if n := overlap(spans(t, keyed, d.args...)); n != 2 {
			t.Errorf("%s: %d calls of one key at once, limit 2", d.name, n)
		}
		if n := overlap(spans(t, perUser, d.args...)); n > 2 {
			t.Errorf("%s: %d calls at once with two keys of limit 1", d.name, n)
		}
		if n := overlap(spans(t, free, d.args...)); n <= 2 {
			t.Errorf("%s: without a key, only %d calls at once: the check above proves nothing", d.name, n)
		}
	}
}

// TestRateLimit: a rate of 50/s is held within 10 % over 10 s, by the
// calls' own start times, on both drivers.
func TestRateLimit(t *testing.T) {
	srv := redistest.Start(t)
	for _, name := range []string{"r1", "r2"} {
		worker(t, srv, name, "--concurrency", "4")
	}
	flow := clockFlow(t, 501, `rate = "50/s"`)
	for _, d := range []struct {
		name string
		args []string
	}{{"in-process", []string{"--workers", "8"}}, {"redis", []string{"--broker", srv.URL()}}} {
		ss := spans(t, flow, d.args...)
		slices.SortFunc(ss, func(a, b span) int { return int(a.start - b.start) })
		took := time.Duration(ss[len(ss)-1].start - ss[0].start)
		rate := float64(len(ss)-1) / took.Seconds()
		t.Logf("%s: %d calls started over %s: %.1f/s", d.name, len(ss), took.Round(time.Millisecond), rate)
		if rate < 45 || rate > 55 {
			t.Errorf("%s: %.1f calls/s, want 50/s ±10%%", d.name, rate)
		}
	}
}
