package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/leb128"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
)

func newEngine(t testing.TB) *host.Engine {
	return newEngineMode(t, host.InterruptMeter)
}

func newEngineMode(t testing.TB, mode host.Interrupt) *host.Engine {
	t.Helper()
	ctx := context.Background()
	e, err := host.New(ctx, host.Config{CacheDir: t.TempDir(), Interrupt: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	return e
}

func load(t testing.TB, e *host.Engine, wasm []byte) *host.Module {
	t.Helper()
	m, err := e.Load(context.Background(), wasm)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return m
}

func hostile(t testing.TB) (*host.Engine, *host.Module) {
	e := newEngine(t)
	return e, load(t, e, testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json"))
}

func task(t testing.TB, m *host.Module, name string) *host.Task {
	t.Helper()
	tk, ok := m.Task(name)
	if !ok {
		t.Fatalf("no task %q", name)
	}
	return tk
}

var testLimits = host.Limits{Timeout: 2 * time.Second, Memory: 32 << 20, MaxOutput: 1 << 20}

func TestFailureClasses(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode host.Interrupt
	}{{"meter", host.InterruptMeter}, {"context", host.InterruptContext}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEngineMode(t, mode.mode)
			testFailureClasses(t, load(t, e, testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json")))
		})
	}
}

func testFailureClasses(t *testing.T, m *host.Module) {
	cases := []struct {
		task string
		kind host.Kind
		msg  string // must appear in the error text
	}{
		{"spin", host.KindTimeout, "did not finish within 2s"},
		{"grow", host.KindMemory, "limit is 33554432 bytes"},
		{"recurse", host.KindStackOverflow, "stack overflow"},
		{"huge_output", host.KindMemory, "alloc of 67108864 bytes"},
		{"big_alloc", host.KindMemory, "alloc of 1073741824 bytes"},
		{"trap", host.KindTrap, "unreachable"},
		{"div_zero", host.KindTrap, "integer divide by zero"},
		{"bad_json", host.KindBadOutput, `output is not valid JSON: "not json at all"`},
		{"half_outputs", host.KindBadOutput, `lacks declared output "b"`},
		{"fail", host.KindGuestError, "hostile.fail: boom: the guest's own words"},
		{"fail_silently", host.KindGuestError, "returned 7"},
		{"no_output", host.KindBadOutput, "set no output"},
		{"bad_offset", host.KindTrap, "load_u64: offset 999999999 length 8 is outside host memory"},
		{"http", host.KindDenied, "granted no HTTP hosts"},
	}
	for _, c := range cases {
		t.Run(c.task, func(t *testing.T) {
			_, err := task(t, m, c.task).Call(context.Background(), []byte(`{}`), testLimits)
			if err == nil {
				t.Fatal("call succeeded; want a failure")
			}
			if k := host.KindOf(err); k != c.kind {
				t.Fatalf("kind = %v, want %v (err: %v)", k, c.kind, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not contain %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "goroutine ") || strings.Contains(err.Error(), "wasm stack trace") {
				t.Fatalf("error leaks a stack trace: %q", err)
			}
			// The host survives and keeps serving.
			out, err := task(t, m, "echo").Call(context.Background(), []byte(`{"value":42}`), testLimits)
			if err != nil || string(out) != `{"value":42}` {
				t.Fatalf("echo after %s: %s, %v", c.task, out, err)
			}
		})
	}
}

func TestOutputTooLarge(t *testing.T) {
	_, m := hostile(t)
	lim := testLimits
	lim.Memory = 128 << 20 // room for the block; the output cap must refuse it
	_, err := task(t, m, "huge_output").Call(context.Background(), []byte(`{}`), lim)
	if host.KindOf(err) != host.KindOutputTooLarge || !strings.Contains(err.Error(), "67108864 bytes; the limit is 1048576") {
		t.Fatalf("err = %v, want output too large", err)
	}
}

func TestCancel(t *testing.T) {
	_, m := hostile(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	lim := testLimits
	lim.Timeout = time.Minute
	start := time.Now()
	_, err := task(t, m, "spin").Call(ctx, []byte(`{}`), lim)
	if host.KindOf(err) != host.KindCanceled {
		t.Fatalf("err = %v, want canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %s", d)
	}
}

func TestPoolReuseAndDiscard(t *testing.T) {
	_, m := hostile(t)
	count := task(t, m, "count")
	// KeepState lets the count show which instance served a call.
	keep := testLimits
	keep.State = policy.StateKeep
	call := func() string {
		out, err := count.Call(context.Background(), []byte(`{}`), keep)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// One goroutine: the same warm instance serves every call.
	for want := 1; want <= 3; want++ {
		if got := call(); got != string(rune('0'+want)) {
			t.Fatalf("call %d served by a fresh instance: count = %s", want, got)
		}
	}
	// A trap discards the instance: the next call starts afresh.
	if _, err := task(t, m, "trap").Call(context.Background(), []byte(`{}`), keep); err == nil {
		t.Fatal("trap succeeded")
	}
	if got := call(); got != "1" {
		t.Fatalf("call after a trap: count = %s, want 1 (a new instance)", got)
	}
	// A guest error (non-zero return) leaves the instance usable.
	if _, err := task(t, m, "fail").Call(context.Background(), []byte(`{}`), keep); err == nil {
		t.Fatal("fail succeeded")
	}
	if got := call(); got != "2" {
		t.Fatalf("call after a guest error: count = %s, want 2 (the same instance)", got)
	}
	st := m.Stats()
	if st.Created != 2 || st.Discarded != 1 {
		t.Fatalf("stats = %+v, want 2 created, 1 discarded", st)
	}
}

func TestConcurrentCalls(t *testing.T) {
	_, m := hostile(t)
	echo := task(t, m, "echo")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				in, _ := json.Marshal(map[string]int{"value": g*1000 + i})
				out, err := echo.Call(context.Background(), in, testLimits)
				if err != nil || string(out) != string(in) {
					errs <- errors.New("echo mismatch: " + string(in) + " -> " + string(out))
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Created > 8 {
		t.Fatalf("created %d instances for 8 goroutines", st.Created)
	}
}

func TestInput(t *testing.T) {
	_, m := hostile(t)
	echo := task(t, m, "echo")
	cases := []struct {
		in   map[string]json.RawMessage
		want string
		err  string
	}{
		{map[string]json.RawMessage{"value": json.RawMessage(`[1,2]`)}, `{"value":[1,2]}`, ""},
		{nil, `{"value":null}`, ""}, // the default
		{map[string]json.RawMessage{"nope": json.RawMessage(`1`)}, "", `has no input "nope" (inputs: value)`},
		{map[string]json.RawMessage{"value": json.RawMessage(`{`)}, "", `input "value" is not valid JSON`},
	}
	for _, c := range cases {
		b, err := echo.Input(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || host.KindOf(err) != host.KindBadInput {
				t.Errorf("Input(%v) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(b) != c.want {
			t.Errorf("Input(%v) = %s, %v; want %s", c.in, b, err, c.want)
		}
	}
	count := task(t, m, "count")
	if _, err := count.Input(map[string]json.RawMessage{"x": json.RawMessage("1")}); err == nil || !strings.Contains(err.Error(), "(inputs: none)") {
		t.Errorf("err = %v", err)
	}
}

func TestWASISandbox(t *testing.T) {
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/wasi_read.wat", "testdata/wasi_read.json"))
	out, err := task(t, m, "read").Call(context.Background(), []byte(`{}`), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) == "0" {
		t.Fatal("the guest opened /etc/passwd")
	}
	out, err = task(t, m, "env").Call(context.Background(), []byte(`{}`), testLimits)
	if err != nil || string(out) != "0" {
		t.Fatalf("the guest sees %s environment variables (err %v); want 0", out, err)
	}
}

func TestLoadRefusals(t *testing.T) {
	e := newEngine(t)
	hostileWasm := testmod.WAT(t, "testdata/hostile.wat")
	cases := []struct {
		name string
		wasm []byte
		is   error
		msg  string
	}{
		{"not wasm", []byte("hello"), abi.ErrNotWasm, "not a WebAssembly module"},
		{"truncated", hostileWasm[:40], nil, "runs past the end"},
		{"unknown import", testmod.WithManifest(t, testmod.WAT(t, "testdata/unknown_import.wat"), `{"abi":1,"name":"x","tasks":[{"name":"run","inputs":[],"outputs":["y"]}]}`),
			abi.ErrImportRefused, `env.get_secret (func): modules may import only from "extism:host/env" and "wasi_snapshot_preview1"`},
		{"no manifest", hostileWasm, abi.ErrNoManifest, `neither a "flowhost.manifest" custom section nor a "flowhost_manifest" export`},
		{"bad json", testmod.WithManifest(t, hostileWasm, `{"abi":1,"name":"x",}`), abi.ErrBadManifest, "line 1, column 21 (byte 20): invalid character '}'"},
		{"abi 2", testmod.WithManifest(t, hostileWasm, `{"abi":2,"name":"x","tasks":[]}`), abi.ErrBadManifest, `"abi" is 2; this host implements abi 1`},
		{"missing export", testmod.WithManifest(t, hostileWasm, `{"abi":1,"name":"x","tasks":[{"name":"nope","inputs":[],"outputs":["y"]}]}`),
			abi.ErrExportMismatch, `task "nope": the module has no export "nope"`},
		{"export not a func", testmod.WithManifest(t, hostileWasm, `{"abi":1,"name":"x","tasks":[{"name":"m","export":"memory","inputs":[],"outputs":["y"]}]}`),
			abi.ErrExportMismatch, `export "memory" is not a function`},
		{"duplicate input", testmod.WithManifest(t, hostileWasm, `{"abi":1,"name":"x","tasks":[{"name":"echo","inputs":["a","a"],"outputs":["y"]}]}`),
			abi.ErrBadManifest, `input "a" is declared twice`},
		{"bad output name", testmod.WithManifest(t, hostileWasm, `{"abi":1,"name":"x","tasks":[{"name":"echo","inputs":[],"outputs":["a b"]}]}`),
			abi.ErrBadManifest, `output name "a b" is not an identifier`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Load(context.Background(), c.wasm)
			if err == nil {
				t.Fatal("loaded; want a refusal")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err %q does not contain %q", err, c.msg)
			}
		})
	}
}

func TestManifestProbe(t *testing.T) {
	e := newEngine(t)
	m := load(t, e, testmod.WAT(t, "testdata/probe.wat"))
	if m.ManifestSource != "export" || m.Name != "probed" {
		t.Fatalf("source %q name %q", m.ManifestSource, m.Name)
	}
	out, err := task(t, m, "one").Call(context.Background(), []byte(`{}`), testLimits)
	if err != nil || string(out) != "1" {
		t.Fatalf("one: %s %v", out, err)
	}
	// The section wins over the export.
	m2 := load(t, e, testmod.WithManifest(t, testmod.WAT(t, "testdata/probe.wat"),
		`{"abi":1,"name":"sectioned","tasks":[{"name":"one","inputs":[],"outputs":["n"]}]}`))
	if m2.ManifestSource != "section" || m2.Name != "sectioned" {
		t.Fatalf("source %q name %q", m2.ManifestSource, m2.Name)
	}
}

func TestLoadSameBytesTwice(t *testing.T) {
	e, m := hostile(t)
	m2 := load(t, e, testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json"))
	if m != m2 {
		t.Fatal("the same bytes loaded twice gave two modules")
	}
	if len(m.SHA256) != 64 || m.Size == 0 {
		t.Fatalf("sha %q size %d", m.SHA256, m.Size)
	}
}

func TestMemoryBounded(t *testing.T) {
	// A recursion bomb and a memory bomb, many times: the host's heap stays bounded.
	_, m := hostile(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 3; i++ {
		for _, name := range []string{"grow", "huge_output", "big_alloc", "recurse"} {
			if _, err := task(t, m, name).Call(context.Background(), []byte(`{}`), testLimits); err == nil {
				t.Fatalf("%s succeeded", name)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB", grown>>20)
	}
}

func TestFuel(t *testing.T) {
	_, m := hostile(t)
	lim := testLimits
	lim.Timeout = time.Minute
	lim.Fuel = 5_000_000
	for i := 0; i < 2; i++ {
		_, err := task(t, m, "spin").Call(context.Background(), []byte(`{}`), lim)
		if host.KindOf(err) != host.KindFuel || !strings.Contains(err.Error(), "fuel exhausted: the call used up its budget of 5000000 units") {
			t.Fatalf("err = %v, want fuel exhausted", err)
		}
	}
	// A task well within its budget succeeds.
	if _, err := task(t, m, "echo").Call(context.Background(), []byte(`{"value":1}`), lim); err != nil {
		t.Fatal(err)
	}
}

// TestForgedIndices: a module whose code names a global, local or label
// past its own is invalid, but would be valid once metered, naming what
// the meter adds. Setting "global 0" in a module with no globals would
// refuel the guest forever, past its fuel budget, its timeout and
// cancellation. Such a module is refused at load, naming the index.
func TestForgedIndices(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ name, body, want string }{
		{"fuel", `(loop $l (i64.const 100000000) (global.set 0) (br $l))`, "global index 0 out of range (0 globals)"},
		{"depth", `(i32.const 100000000) (global.set 1)`, "global index 1 out of range (0 globals)"},
		{"local", `(i32.const 1) (local.set 0)`, "local index 0 out of range (0 locals)"},
		{"label", `(br 1)`, "branch to label 1 out of range (1 labels)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `(module (memory (export "memory") 1) (func (export "spin") (result i32) ` + tc.body + ` (i32.const 0)))`
			wasm := testmod.WithManifest(t, testmod.UncheckedWATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"spin","inputs":[],"outputs":["x"]}]}`)
			_, err := e.Load(context.Background(), wasm)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: err = %v, want it refused naming %q", err, tc.want)
			}
		})
	}
}

func TestCompilationCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json")
	for i := 0; i < 2; i++ { // the second engine stands for a second process
		e, err := host.New(ctx, host.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Load(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := task(t, m, "echo").Call(ctx, []byte(`{"value":1}`), testLimits); err != nil || string(out) != `{"value":1}` {
			t.Fatalf("echo: %s %v", out, err)
		}
		e.Close(ctx)
	}
	// The metered module (with what the meter found of its state) and
	// wazero's compiled code are all on disk.
	var metered, states, compiled int
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			switch {
			case strings.Contains(path, "metered") && strings.HasSuffix(path, ".state"):
				states++
			case strings.Contains(path, "metered"):
				metered++
			default:
				compiled++
			}
		}
		return nil
	})
	if metered != 1 || states != 1 || compiled == 0 {
		t.Fatalf("cache holds %d metered modules, %d states and %d compiled files", metered, states, compiled)
	}
}

func TestGuestLogs(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	e, err := host.New(ctx, host.Config{CacheDir: t.TempDir(), Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m := load(t, e, testmod.Module(t, "testdata/hostile.wat", "testdata/hostile.json"))
	// A budget of 5 lines and no refill: the third call's lines are dropped.
	cctx := host.WithLogInfo(ctx, "run-1", "step 2 (map x.chatty)", host.NewLogBudget(0, 5))
	for i := 0; i < 3; i++ {
		if _, err := task(t, m, "chatty").Call(cctx, []byte(`{}`), testLimits); err != nil {
			t.Fatal(err)
		}
	}
	var lines, warnings int
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["run"] != "run-1" || rec["step"] != "step 2 (map x.chatty)" || rec["module"] != "hostile" || rec["task"] != "chatty" {
			t.Fatalf("log record lacks its labels: %s", l)
		}
		switch rec["msg"] {
		case "hello from the guest":
			lines++
		case "guest logs rate-limited: dropping lines":
			warnings++
		}
	}
	if lines != 5 || warnings != 1 {
		t.Fatalf("%d guest lines and %d warnings; want 5 and 1:\n%s", lines, warnings, buf.String())
	}
}

// TestCallStats: a call reports the fuel it burned, the same on a fresh
// instance and on a warm one when every call starts from the same state
// (what reproducing a worker's call on a laptop relies on), and a budget
// of that fuel is enough while one unit less is not. A call that keeps
// its instance's state may burn less after the first (a guest's lazy
// start-up work is done once), which is why such calls are not cached.
func TestCallStats(t *testing.T) {
	ctx := context.Background()
	for _, state := range []string{policy.StateReset} {
		e := newEngine(t)
		m, err := e.LoadFile(ctx, "../plugins/examples/stats-c/stats.wasm")
		if err != nil {
			t.Fatal(err)
		}
		tk := task(t, m, "describe")
		lim := host.DefaultLimits
		lim.State = state
		in := []byte(`{"values":[3,1,4,1,5,9,2,6]}`)
		var fuel []uint64
		for range 3 {
			out, st, err := tk.CallWithStats(ctx, in, lim)
			if err != nil || st.Output != len(out) || st.Memory == 0 || st.Duration <= 0 {
				t.Fatalf("%s: %s %+v %v", state, out, st, err)
			}
			fuel = append(fuel, st.Fuel)
		}
		if fuel[0] == 0 || fuel[0] != fuel[1] || fuel[1] != fuel[2] {
			t.Fatalf("%s: fuel %v: want the same non-zero figure each call", state, fuel)
		}
		lim.Fuel = fuel[0]
		if _, _, err := tk.CallWithStats(ctx, in, lim); err != nil {
			t.Fatalf("%s: a budget of the fuel it burned: %v", state, err)
		}
		lim.Fuel = fuel[0] - 1
		if _, _, err := tk.CallWithStats(ctx, in, lim); host.KindOf(err) != host.KindFuel {
			t.Fatalf("%s: a budget one unit short: %v", state, err)
		}
	}
}

// BenchmarkCheckInput is the type check of a typed input before a call
// (the C square's {"x": number}): it walks the input without decoding it.
func BenchmarkCheckInput(b *testing.B) {
	e := newEngine(b)
	m, err := e.LoadFile(context.Background(), "../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		b.Fatal(err)
	}
	tk := task(b, m, "square")
	in := []byte(`{"x":12345}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := tk.CheckInput(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUngrantedPathNamed: a task that fails after asking for a file where
// no directory is granted is told which path and which grant: the error
// names the path, and the directories that are granted; a guest that asks
// for many paths keeps the host's memory bounded.
func TestUngrantedPathNamed(t *testing.T) {
	wasm := testmod.WithManifest(t, testmod.WATText(t, `(module
		(import "wasi_snapshot_preview1" "path_open"
			(func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
		(import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
		(import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
		(import "extism:host/env" "error_set" (func $error_set (param i64)))
		(memory (export "memory") 1)
		(data (i32.const 0) "data/in.txt")
		(func $open (param $fd i32) (param $len i32) (result i32)
			(call $path_open (local.get $fd) (i32.const 0) (i32.const 0) (local.get $len)
				(i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 100)))
		(func $fail (result i32) (local $o i64)
			(local.set $o (call $alloc (i64.const 1)))
			(call $store_u8 (local.get $o) (i32.const 33))
			(call $error_set (local.get $o))
			(i32.const 1))
		;; read: opens data/in.txt on fd 3 or 4; fails if neither opens.
		(func (export "read") (result i32)
			(if (i32.eqz (call $open (i32.const 3) (i32.const 11))) (then (return (i32.const 0))))
			(if (i32.eqz (call $open (i32.const 4) (i32.const 11))) (then (return (i32.const 0))))
			(call $fail))
		;; many: asks for 1000 paths of up to 11 bytes, then fails.
		(func (export "many") (result i32) (local $i i32)
			(loop $more
				(drop (call $open (i32.const 3) (i32.add (i32.const 1) (i32.rem_u (local.get $i) (i32.const 11)))))
				(local.set $i (i32.add (local.get $i) (i32.const 1)))
				(br_if $more (i32.lt_u (local.get $i) (i32.const 1000))))
			(call $fail))
		(func (export "plain") (result i32) (call $fail)))`),
		`{"abi":1,"name":"reader","tasks":[{"name":"read","inputs":[],"outputs":["ok"]},{"name":"many","inputs":[],"outputs":["ok"]},
		  {"name":"plain","inputs":[],"outputs":["ok"]}]}`)
	e := newEngine(t)
	m := load(t, e, wasm)
	ctx := context.Background()
	_, err := task(t, m, "read").Call(ctx, []byte(`{}`), testLimits)
	if err == nil || !strings.Contains(err.Error(), "reader.read: ! (the task asked for /data/in.txt, but no directory is granted: grant one in the flow's [grants] files") {
		t.Fatalf("no grant: %v", err)
	}
	lim := testLimits
	lim.Grants = &host.Grants{Files: map[string]string{"/other": t.TempDir()}}
	_, err = task(t, m, "read").Call(ctx, []byte(`{}`), lim)
	if err == nil || !strings.Contains(err.Error(), "the task asked for /data/in.txt, but no directory is granted there (granted: /other)") {
		t.Fatalf("another directory granted: %v", err)
	}
	_, err = task(t, m, "many").Call(ctx, []byte(`{}`), testLimits)
	if err == nil || strings.Count(err.Error(), "/d") != 4 {
		t.Fatalf("many paths: %v; want the first 4", err)
	}
	// What one call asked for is not told of the next, on the same
	// (pooled) instance.
	if _, err := task(t, m, "plain").Call(ctx, []byte(`{}`), testLimits); err == nil || strings.Contains(err.Error(), "asked for") {
		t.Fatalf("a call that asked for nothing: %v", err)
	}
}

// TestMeteringCannotBeOutrun: the work a guest gets for one unit of fuel
// is bounded, so the deadline, cancellation and the budget are checked
// often enough whatever it does: a bulk memory operation is charged by
// its length, a random_get by its size, an alloc by what it zeroes, a
// var_get or config_get by what it copies, and a region that costs more than
// the fuel handed out at a time runs only once the budget covers it.
func TestMeteringCannotBeOutrun(t *testing.T) {
	e := newEngine(t)
	man := `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`
	for _, tc := range []struct{ name, src string }{
		{"memory.fill", `(module (memory 32) (func (export "run") (result i32)
			(loop $l (memory.fill (i32.const 0) (i32.const 0) (i32.const 2097152)) (br $l)) (i32.const 0)))`},
		{"memory.copy", `(module (memory 32) (func (export "run") (result i32)
			(loop $l (memory.copy (i32.const 0) (i32.const 1048576) (i32.const 1048576)) (br $l)) (i32.const 0)))`},
		{"random_get", `(module (import "wasi_snapshot_preview1" "random_get" (func $rg (param i32 i32) (result i32)))
			(memory 1) (func (export "run") (result i32) (loop $l (drop (call $rg (i32.const 0) (i32.const 65536))) (br $l)) (i32.const 0)))`},
		// The host zeroes the block an alloc makes, and copies a var
		// into one: the guest pays for both.
		{"alloc and free", `(module (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
			(import "extism:host/env" "free" (func $free (param i64)))
			(memory 1) (func (export "run") (result i32) (loop $l (call $free (call $alloc (i64.const 1048576))) (br $l)) (i32.const 0)))`},
		{"var_get", `(module (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
			(import "extism:host/env" "free" (func $free (param i64)))
			(import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
			(import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
			(import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
			(memory 1) (func (export "run") (result i32) (local $k i64)
			(local.set $k (call $alloc (i64.const 1)))
			(call $store_u8 (local.get $k) (i32.const 120))
			(call $var_set (local.get $k) (call $alloc (i64.const 1048576)))
			(loop $l (call $free (call $var_get (local.get $k))) (br $l)) (i32.const 0)))`},
		// A var's name is hashed (and, by var_set, copied) whatever its
		// length: a 16 MB name in a loop ran 29 s (var_set, deleting) and
		// 6.6 s (var_get, beside nine vars) past a 100 ms timeout.
		{"var_set of a long name", `(module (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
			(import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
			(memory 1) (func (export "run") (result i32) (local $k i64)
			(local.set $k (call $alloc (i64.const 16000000)))
			(loop $l (call $var_set (local.get $k) (i64.const 0)) (br $l)) (i32.const 0)))`},
		{"var_get of a long name", `(module (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
			(import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
			(import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
			(import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
			(memory 1) (func (export "run") (result i32) (local $k i64) (local $i i32)
			(local.set $k (call $alloc (i64.const 1)))
			(loop $vars ;; nine vars: the map hashes its keys
				(call $store_u8 (local.get $k) (local.get $i))
				(call $var_set (local.get $k) (local.get $k))
				(local.set $i (i32.add (local.get $i) (i32.const 1)))
				(br_if $vars (i32.lt_u (local.get $i) (i32.const 9))))
			(local.set $k (call $alloc (i64.const 16000000)))
			(loop $l (drop (call $var_get (local.get $k))) (br $l)) (i32.const 0)))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, e, testmod.WithManifest(t, testmod.WATText(t, tc.src), man))
			lim := testLimits
			lim.Timeout = 100 * time.Millisecond
			start := time.Now()
			_, err := task(t, m, "run").Call(context.Background(), []byte(`{}`), lim)
			if host.KindOf(err) != host.KindTimeout {
				t.Fatalf("err = %v, want a timeout", err)
			}
			// Before the charges, these ran 5 to 20 s past a 100 ms timeout.
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("the 100ms timeout stopped the call after %s", d)
			}
		})
	}
	t.Run("region past a chunk", func(t *testing.T) {
		// One straight-line function of 3,000,001 instructions, against a
		// budget of one chunk and a unit: it must not run on the chunk.
		body := []byte{0x00}
		for range 1_000_000 {
			body = append(body, 0x41, 0x01, 0x1a) // i32.const 1; drop
		}
		body = append(body, 0x41, 0x00, 0x0b)
		wasm := []byte("\x00asm\x01\x00\x00\x00")
		wasm = append(wasm, 1, 5, 1, 0x60, 0, 1, 0x7f) // type () -> i32
		wasm = append(wasm, 3, 2, 1, 0)                // function 0: type 0
		wasm = append(wasm, 5, 3, 1, 0, 1)             // memory 1
		wasm = append(wasm, 7, 7, 1, 3, 'r', 'u', 'n', 0, 0)
		code := leb128.AppendUint([]byte{1}, uint64(len(body)))
		code = append(code, body...)
		wasm = append(leb128.AppendUint(append(wasm, 10), uint64(len(code))), code...)
		m := load(t, e, testmod.WithManifest(t, wasm, man))
		lim := testLimits
		lim.Fuel = 1<<20 + 1
		_, err := task(t, m, "run").Call(context.Background(), []byte(`{}`), lim)
		if host.KindOf(err) != host.KindFuel {
			t.Fatalf("err = %v, want fuel exhausted", err)
		}
	})
}

// TestInitializeMustBeAFunction: an export called _initialize that is
// not a () -> () function is refused at load (the host would otherwise
// call what is not a function).
func TestInitializeMustBeAFunction(t *testing.T) {
	e := newEngine(t)
	man := `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`
	for _, tc := range []struct{ name, src, want string }{
		{"memory", `(module (memory (export "_initialize") 1) (func (export "run") (result i32) (i32.const 0)))`, "export _initialize is not a function"},
		{"global", `(module (memory 1) (global (export "_initialize") i32 (i32.const 0)) (func (export "run") (result i32) (i32.const 0)))`, "export _initialize is not a function"},
		{"type", `(module (memory 1) (func (export "_initialize") (param i32)) (func (export "run") (result i32) (i32.const 0)))`, "export _initialize has type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Load(context.Background(), testmod.WithManifest(t, testmod.WATText(t, tc.src), man))
			if !errors.Is(err, host.ErrModuleRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: err = %v, want it refused: %s", err, tc.want)
			}
		})
	}
}

// TestWideGlobalsStartAfresh: a v128 global, which the host cannot save
// and restore through the runtime, makes every call start on a new
// instance, so that each sees the global's initial value.
func TestWideGlobalsStartAfresh(t *testing.T) {
	src := `(module (memory 1) (global $g (mut v128) (v128.const i64x2 1 2))
		(func (export "run") (result i32)
			(i32.wrap_i64 (i64x2.extract_lane 1 (global.get $g)))
			(global.set $g (v128.const i64x2 5 9))))`
	m := load(t, newEngine(t), testmod.WithManifest(t, testmod.WATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`))
	if m.Reset() != host.ResetFresh {
		t.Fatalf("reset %v, want fresh", m.Reset())
	}
	for i := range 3 {
		_, err := task(t, m, "run").Call(context.Background(), []byte(`{}`), testLimits)
		var te *host.TaskError
		if !errors.As(err, &te) || te.Kind != host.KindGuestError || te.Msg != "returned 2" {
			t.Fatalf("call %d: %v, want the initial lane (returned 2)", i, err)
		}
	}
}

// TestLargeFramesBounded: the call depth counts a frame by its size, a
// frame per KiB of parameters and locals, so that MaxDepth bounds the
// stack the runtime allocates for a call, not only the count of calls. A
// recursion whose frames each hold 1,000 live v128 locals (16 KiB) took
// ~80 MiB of host memory, outside the memory limit, before the runtime's
// own ceiling stopped it; it now stops at MaxDepth/16 frames, and a
// recursion of small frames still goes MaxDepth deep.
func TestLargeFramesBounded(t *testing.T) {
	var set, use strings.Builder
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&set, "(local.set %d (i32x4.splat (i32.add (local.get 0) (i32.const %d))))", i, i)
		fmt.Fprintf(&use, "(global.set $g (v128.xor (global.get $g) (local.get %d)))", i)
	}
	ctx := context.Background()
	e := newEngine(t) // MaxDepth: DefaultMaxDepth, 20,000
	for _, tc := range []struct {
		fn    string
		depth int
		ok    bool
	}{
		{"big", 1000, true},    // 1,000 frames of weight 16: within 20,000
		{"big", 1300, false},   // 1,300 × 16 > 20,000
		{"small", 19000, true}, // small frames weigh 1
	} {
		src := fmt.Sprintf(`(module (memory 1) (global $g (mut v128) (v128.const i64x2 0 0))
		  (func $big (param $n i32) %s %s (if (local.get 0) (then (call $big (i32.sub (local.get 0) (i32.const 1))))) %s)
		  (func $small (param $n i32) (if (local.get 0) (then (call $small (i32.sub (local.get 0) (i32.const 1))))))
		  (func (export "run") (result i32) (call $%s (i32.const %d)) (i32.const 0)))`,
			strings.Repeat("(local v128) ", 1000), set.String(), use.String(), tc.fn, tc.depth)
		m := load(t, e, testmod.WithManifest(t, testmod.WATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := task(t, m, "run").Call(ctx, []byte(`{}`), testLimits)
		runtime.ReadMemStats(&after)
		switch {
		case tc.ok && host.KindOf(err) != host.KindBadOutput: // it returned, setting no output
			t.Fatalf("%s(%d): %v, want it to return", tc.fn, tc.depth, err)
		case !tc.ok && (host.KindOf(err) != host.KindStackOverflow || !strings.Contains(err.Error(), "went past 20000 frames")):
			t.Fatalf("%s(%d): %v, want the depth limit", tc.fn, tc.depth, err)
		}
		if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 48<<20 {
			t.Fatalf("%s(%d): the host's heap grew by %d MiB", tc.fn, tc.depth, grew>>20)
		}
	}
}

// TestStartFunctionDepth: a start function runs within the engine's
// MaxDepth too, not the meter's initial depth (10,000 frames).
func TestStartFunctionDepth(t *testing.T) {
	ctx := context.Background()
	e, err := host.New(ctx, host.Config{CacheDir: t.TempDir(), MaxDepth: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{40, true}, {9000, false}} {
		src := fmt.Sprintf(`(module (memory 1)
		  (func $rec (param $n i32) (if (local.get $n) (then (call $rec (i32.sub (local.get $n) (i32.const 1))))))
		  (func $s (call $rec (i32.const %d))) (start $s)
		  (func (export "run") (result i32) (i32.const 0)))`, tc.depth)
		m := load(t, e, testmod.WithManifest(t, testmod.WATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`))
		_, err := task(t, m, "run").Call(ctx, []byte(`{}`), testLimits)
		if tc.ok && host.KindOf(err) != host.KindBadOutput { // it ran, setting no output
			t.Fatalf("start recursing %d: %v", tc.depth, err)
		}
		if !tc.ok && (host.KindOf(err) != host.KindStackOverflow || !strings.Contains(err.Error(), "start function")) {
			t.Fatalf("start recursing %d: %v, want the depth limit during the start function", tc.depth, err)
		}
	}
}

// TestDescriptorsDoNotCarryOver: the runtime's table of a guest's WASI
// descriptors is not part of what a reset puts back, so an instance whose
// call opened one (here "/" itself, which a guest may open without any
// grant) is not used again: otherwise each call saw the descriptors the
// earlier ones left (returned 4, 5, 6, …), one task could pass a count to
// another, and 200,000 opens a call filled the host's memory outside the
// memory limit.
func TestDescriptorsDoNotCarryOver(t *testing.T) {
	src := `(module
	  (import "wasi_snapshot_preview1" "path_open" (func $po (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (data (i32.const 500) ".")
	  (func $open (result i32)
	    (if (result i32) (call $po (i32.const 3) (i32.const 0) (i32.const 500) (i32.const 1) (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 600))
	      (then (i32.const -1)) (else (i32.load (i32.const 600)))))
	  (func (export "put") (result i32) (local i32)
	    (loop $l (drop (call $open)) (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if $l (i32.lt_u (local.get 0) (i32.const 42))))
	    (i32.const 0))
	  (func (export "get") (result i32) (call $open)))`
	man := `{"abi":1,"name":"fd","tasks":[{"name":"put","inputs":[],"outputs":["x"]},{"name":"get","inputs":[],"outputs":["x"]}]}`
	for _, state := range []string{policy.StateReset, policy.StateKeep} {
		t.Run(state, func(t *testing.T) {
			m := load(t, newEngine(t), testmod.WithManifest(t, testmod.WATText(t, src), man))
			lim := testLimits
			lim.State = state
			ctx := context.Background()
			var first string
			for i := range 6 {
				if i%2 == 1 {
					task(t, m, "put").Call(ctx, []byte(`{}`), lim)
					continue
				}
				_, err := task(t, m, "get").Call(ctx, []byte(`{}`), lim)
				if err == nil {
					t.Fatal("get set an output")
				}
				if i == 0 {
					first = err.Error()
				} else if err.Error() != first {
					t.Fatalf("call %d: %v; the first: %s", i, err, first)
				}
			}
			if !strings.Contains(first, "returned 4") {
				t.Fatalf("get: %s, want the first free descriptor (4)", first)
			}
		})
	}
}

// TestStdioStaysOpen: no reset could reopen stdin, stdout or stderr, so
// a guest's fd_close of one succeeds without closing it, and its
// fd_renumber onto one fails: a later call finds them as every call
// does. A module that could call fd_close other than directly (through a
// table) gets a new instance for every call instead.
func TestStdioStaysOpen(t *testing.T) {
	man := `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`
	src := `(module
	  (import "wasi_snapshot_preview1" "fd_close" (func $fc (param i32) (result i32)))
	  (import "wasi_snapshot_preview1" "fd_renumber" (func $fr (param i32 i32) (result i32)))
	  (import "wasi_snapshot_preview1" "fd_write" (func $fw (param i32 i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (func (export "run") (result i32)
	    ;; stdout writable? (an empty write: iovec at 0 of length 0)
	    (i32.add (i32.mul (i32.const 1000) (call $fw (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 16)))
	      (i32.add (i32.mul (i32.const 100) (call $fc (i32.const 1)))
	        (call $fr (i32.const 3) (i32.const 2))))))`
	e := newEngine(t)
	m := load(t, e, testmod.WithManifest(t, testmod.WATText(t, src), man))
	for i := range 4 {
		_, err := task(t, m, "run").Call(context.Background(), []byte(`{}`), testLimits)
		// fd_write 0 (ok), fd_close 0 (pretended), fd_renumber 8 (EBADF)
		if err == nil || !strings.HasSuffix(err.Error(), "returned 8") {
			t.Fatalf("call %d: %v, want returned 8", i, err)
		}
	}
	if s := m.Stats(); s.Reused == 0 {
		t.Fatalf("no instance reused: %+v", s)
	}
	escapes := strings.Replace(src, `(memory (export "memory") 1)`, `(memory (export "memory") 1) (table 1 funcref) (elem (i32.const 0) $fc)`, 1)
	if m := load(t, e, testmod.WithManifest(t, testmod.WATText(t, escapes), man)); m.Reset() != host.ResetFresh {
		t.Fatalf("fd_close in a table: reset %v, want fresh", m.Reset())
	}
}
