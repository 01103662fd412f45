package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

// fixme is a module whose one task fails in its first version and returns
// "fixed" in its second: a bug fixed between a run and its rerun.
func fixme(t *testing.T, fixed bool) []byte {
	body := `(call $error_set (call $block (i32.const 0) (i32.const 6))) (i32.const 1)`
	if fixed {
		body = `(call $output_set (call $block (i32.const 16) (i32.const 7)) (i64.const 7)) (i32.const 0)`
	}
	wat := `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "broken")
  (data (i32.const 16) "\"fixed\"")
  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $off))
  (func (export "check") (result i32) ` + body + `))`
	return testmod.WithManifest(t, testmod.WATText(t, wat),
		`{"abi": 1, "name": "fixme", "tasks": [{"name": "check", "inputs": ["values"], "outputs": ["ok"]}]}`)
}

// rerunLab is a flow whose second of three steps fails until its module
// is fixed: a map of squares, the broken check, then a sum.
type rerunLab struct {
	dir, flow string
}

func newRerunLab(t *testing.T) *rerunLab {
	l := &rerunLab{dir: t.TempDir()}
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	os.WriteFile(filepath.Join(l.dir, "fixme.wasm"), fixme(t, false), 0o644)
	l.flow = filepath.Join(l.dir, "flow.toml")
	os.WriteFile(l.flow, []byte("[plugins]\nstats = "+strconvQuote(stats)+"\nfix = \"fixme.wasm\"\n[inputs]\nx = [1, 2, 3, 4, 5]\n"+
		"[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\ncall = \"fix.check\"\n[[step]]\nafter = \"stats.sum\"\nargs = { values = [1, 2] }\n"), 0o644)
	return l
}

func (l *rerunLab) fix(t *testing.T) {
	os.WriteFile(filepath.Join(l.dir, "fixme.wasm"), fixme(t, true), 0o644)
}

// cachedCalls reads a run summary's CALLS and CACHED columns, by step.
func cachedCalls(t *testing.T, summary string) (calls, cached []string) {
	for _, line := range strings.Split(summary, "\n") {
		f := strings.Fields(line)
		if len(f) >= 7 && f[0] >= "1" && f[0] <= "9" && (f[1] == "map" || f[1] == "call" || f[1] == "after") {
			calls, cached = append(calls, f[3]), append(cached, f[4])
		}
	}
	return calls, cached
}

// TestRerunInProcess: a failed run, re-run after its broken module is
// fixed, runs exactly the failed step and what follows it; the first step's
// calls are all cache hits. --from runs a step again whatever the cache
// holds; --no-cache neither reads nor writes.
func TestRerunInProcess(t *testing.T) {
	l := newRerunLab(t)
	cache := t.TempDir()
	run := func(args ...string) result {
		return flowhost(t, append([]string{"--cache-dir", cache}, args...)...)
	}
	first, r := runJSONOutArgs(t, run, "run", "--json", l.flow)
	if first.Status != "failed" || !strings.Contains(*first.Error, "step 2 (call fix.check)") {
		t.Fatalf("first run: %s %s", r.stdout, r.stderr)
	}
	l.fix(t)
	r = run("rerun", first.RunID)
	calls, cached := cachedCalls(t, r.stderr)
	if r.code != 0 || strings.Join(calls, " ") != "5 1 1" || strings.Join(cached, " ") != "5 0 0" {
		t.Fatalf("rerun: exit %d, calls %v, cached %v (want 5 cached of 5, then 0 of 1, 0 of 1)\n%s", r.code, calls, cached, r.stderr)
	}
	if !strings.Contains(r.stderr, "re-runs "+first.RunID) || strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("rerun output: %s %s", r.stdout, r.stderr)
	}
	// Everything is cached now; --from 2 runs steps 2 and 3 again.
	r = run("run", l.flow)
	if _, cached := cachedCalls(t, r.stderr); strings.Join(cached, " ") != "5 1 1" {
		t.Fatalf("a third run: cached %v, want all\n%s", cached, r.stderr)
	}
	second, _ := runJSONOutArgs(t, run, "run", "--json", l.flow)
	r = run("rerun", "--from", "2", second.RunID)
	if _, cached := cachedCalls(t, r.stderr); strings.Join(cached, " ") != "5 0 0" {
		t.Fatalf("rerun --from 2: cached %v, want 5 0 0\n%s", cached, r.stderr)
	}
	r = run("run", "--no-cache", l.flow)
	if _, cached := cachedCalls(t, r.stderr); strings.Join(cached, " ") != "0 0 0" {
		t.Fatalf("--no-cache: cached %v\n%s", cached, r.stderr)
	}
	// cache stats and clear.
	if r := run("cache", "stats", "--json"); !strings.Contains(r.stdout, `"entries":7`) {
		t.Fatalf("cache stats: %s %s", r.stdout, r.stderr)
	}
	if r := run("cache", "clear"); !strings.Contains(r.stdout, "7 results removed") {
		t.Fatalf("cache clear: %s %s", r.stdout, r.stderr)
	}
	if r := run("rerun", "00000000000deadbeef0000"); r.code != 2 || !strings.Contains(r.stderr, "no in-process run 00000000000deadbeef0000") {
		t.Fatalf("rerun of an unknown run: exit %d %s", r.code, r.stderr)
	}
}

func runJSONOutArgs(t *testing.T, run func(...string) result, args ...string) (runJSON, result) {
	t.Helper()
	r := run(args...)
	var out runJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, r.stdout, r.stderr)
	}
	return out, r
}

// TestRerunOnRedis: the same on workers, counted in the status: the first
// step of the rerun is all cache hits, the fixed step runs.
func TestRerunOnRedis(t *testing.T) {
	l := newRerunLab(t)
	srv := redistest.Start(t)
	worker(t, srv, "r1", "--concurrency", "2")
	worker(t, srv, "r2", "--concurrency", "2")
	first, r := runJSONOut(t, "--broker", srv.URL(), l.flow)
	if first.Status != "failed" {
		t.Fatalf("first run: %s %s", r.stdout, r.stderr)
	}
	l.fix(t)
	// The stored run names its modules by sha256: the fixed module is a new
	// upload, so the rerun of the stored spec would run the broken one.
	// Re-running a Redis run with a fixed module is a new submission of
	// the fixed flow, whose first step then hits the workers' cache.
	second, r := runJSONOut(t, "--broker", srv.URL(), l.flow)
	if second.Status != "succeeded" || string(second.Result) != "3" {
		t.Fatalf("fixed run: %s %s", r.stdout, r.stderr)
	}
	st := status(t, srv, second.RunID)
	if len(st.Steps) != 3 || st.Steps[0].Cached != 5 || st.Steps[1].Cached != 0 {
		t.Fatalf("steps of the fixed run: %+v", st.Steps)
	}
	// rerun of a stored run: every call that succeeded is a hit.
	r = flowhost(t, "rerun", "--json", "--broker", srv.URL(), second.RunID)
	var third runJSON
	if err := json.Unmarshal([]byte(r.stdout), &third); err != nil || third.Status != "succeeded" {
		t.Fatalf("rerun: %s %s", r.stdout, r.stderr)
	}
	st = status(t, srv, third.RunID)
	if st.RerunOf != second.RunID || st.Steps[0].Cached != 5 || st.Steps[1].Cached != 1 || st.Steps[2].Cached != 1 {
		t.Fatalf("rerun status: rerun_of %q, steps %+v", st.RerunOf, st.Steps)
	}
	// --from 2 runs steps 2 and 3 again.
	r = flowhost(t, "rerun", "--json", "--from", "2", "--broker", srv.URL(), second.RunID)
	var fourth runJSON
	json.Unmarshal([]byte(r.stdout), &fourth)
	st = status(t, srv, fourth.RunID)
	if st.Steps[0].Cached != 5 || st.Steps[1].Cached != 0 || st.Steps[2].Cached != 0 {
		t.Fatalf("rerun --from 2: steps %+v", st.Steps)
	}
	if r := flowhost(t, "cache", "stats", "--json", "--broker", srv.URL()); !strings.Contains(r.stdout, `"entries":7`) {
		t.Fatalf("cache stats: %s %s", r.stdout, r.stderr)
	}
}

// TestCacheProcessesAtOnce: two processes filling the same cache at once
// leave it whole: a third run finds every result.
func TestCacheProcessesAtOnce(t *testing.T) {
	dir := t.TempDir()
	cache := t.TempDir()
	flow := filepath.Join(dir, "flow.toml")
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	os.WriteFile(flow, []byte("[plugins]\nstats = "+strconvQuote(stats)+"\n[inputs]\nx = ["+jsonInts(500)+"]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n"), 0o644)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := flowhost(t, "--cache-dir", cache, "run", "-q", flow); r.code != 0 {
				t.Errorf("exit %d %s", r.code, r.stderr)
			}
		}()
	}
	wg.Wait()
	r := flowhost(t, "--cache-dir", cache, "run", flow)
	if _, cached := cachedCalls(t, r.stderr); strings.Join(cached, " ") != "500" {
		t.Fatalf("after two processes at once: cached %v\n%s", cached, r.stderr)
	}
}

func jsonInts(n int) string {
	xs := make([]string, n)
	for i := range xs {
		b, _ := json.Marshal(i)
		xs[i] = string(b)
	}
	return strings.Join(xs, ",")
}
