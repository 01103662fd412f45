package host_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/abi"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

// Hostile modules: each test gives a module built to take the host's
// memory, time or files, and checks that the attack fails with a typed
// error naming the culprit, within bounded host memory.

// runManifest declares one task, "run", with one output.
const runManifest = `{"abi":1,"name":"attack","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`

// attackModule compiles a module from WAT text with runManifest embedded.
func attackModule(t testing.TB, wat string) []byte {
	return testmod.WithManifest(t, testmod.WATText(t, wat), runManifest)
}

// memoryOnly is a module whose only feature is its declared memory.
func memoryOnly(pages int, data string) string {
	return fmt.Sprintf(`(module (memory %d) %s (func (export "run") (result i32) (i32.const 0)))`, pages, data)
}

// heapGrowth runs f and returns by how much it grew the bytes the Go
// heap allocated, cumulated: a refusal must not allocate what the module
// declared before refusing it.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestInitialMemoryLimit: a module whose declared initial memory exceeds
// the call's memory limit is refused before the runtime allocates it (it
// used to panic the host), with a memory-limit error naming the declared
// size and the limit; a data segment beyond the module's own initial
// memory is refused at load.
func TestInitialMemoryLimit(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		name string
		wat  string
		mem  uint64 // the call's memory limit
		msg  string // "" for a call that succeeds
	}{
		{"over the default limit", memoryOnly(4097, ""), host.DefaultLimits.Memory,
			"the module declares an initial memory of 268500992 bytes (4097 pages); the memory limit is 268435456 bytes"},
		{"2049 pages under 128 MiB", memoryOnly(2049, ""), 128 << 20,
			"the module declares an initial memory of 134283264 bytes (2049 pages); the memory limit is 134217728 bytes"},
		{"2049 pages under the default limit", memoryOnly(2049, ""), host.DefaultLimits.Memory, ""},
		{"one page under 32 KiB", memoryOnly(1, ""), 32 << 10,
			"the module declares an initial memory of 65536 bytes (1 page); the memory limit is 32768 bytes"},
		{"data at 200 MiB under 64 MiB", memoryOnly(3300, `(data (i32.const 209715200) "x")`), 64 << 20,
			"the module declares an initial memory of 216268800 bytes (3300 pages); the memory limit is 67108864 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := task(t, load(t, e, attackModule(t, c.wat)), "run")
			lim := testLimits
			lim.Memory = c.mem
			var err error
			grown := heapGrowth(func() { _, err = run.Call(context.Background(), []byte(`{}`), lim) })
			if c.msg == "" {
				if host.KindOf(err) != host.KindBadOutput { // it ran: "run" sets no output
					t.Fatalf("err = %v; want the call to run", err)
				}
				return
			}
			if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(), "attack.run: memory limit: "+c.msg) {
				t.Fatalf("err = %v\nwant a memory limit error with %q", err, c.msg)
			}
			if grown > 4<<20 {
				t.Fatalf("refusing the module allocated %d MiB", grown>>20)
			}
		})
	}

	t.Run("a Go guest under 1 MiB", func(t *testing.T) {
		m, err := e.LoadFile(context.Background(), "../plugins/examples/textkit-go/textkit.wasm")
		if err != nil {
			t.Fatal(err)
		}
		lim := testLimits
		lim.Memory = 1 << 20
		_, err = task(t, m, "split").Call(context.Background(), []byte(`{"text":"a b","sep":" "}`), lim)
		if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(),
			"textkit.split: memory limit: the module declares an initial memory of 2818048 bytes (43 pages) and tables of 6280 elements (50240 bytes); the memory limit is 1048576 bytes") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("data beyond the initial memory", func(t *testing.T) {
		_, err := e.Load(context.Background(), attackModule(t, memoryOnly(1, `(data (i32.const 16) "ok") (data (i32.const 2147483392) "hello")`)))
		if !errors.Is(err, host.ErrModuleRefused) || !strings.Contains(err.Error(),
			"data segment 1 (5 bytes at offset 2147483392) lies beyond the module's initial memory of 65536 bytes (1 page)") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("manifest probe", func(t *testing.T) {
		// flowhost inspect loads such a module: its manifest export runs
		// under the probe's 64 MiB.
		wasm := testmod.WATText(t, `(module (memory 1025)
			(func (export "flowhost_manifest") (result i32) (i32.const 0)))`)
		var err error
		grown := heapGrowth(func() { _, err = e.Load(context.Background(), wasm) })
		if !errors.Is(err, abi.ErrBadManifest) || host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(),
			"manifest probe: (manifest probe).flowhost_manifest: memory limit: the module declares an initial memory of 67174400 bytes (1025 pages); the memory limit is 67108864 bytes") {
			t.Fatalf("err = %v", err)
		}
		if grown > 4<<20 {
			t.Fatalf("refusing the module allocated %d MiB", grown>>20)
		}
	})
}

// heapInUse is the Go heap in use after a collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestVarsCounted: Extism vars count against the call's memory limit,
// keys and values together with the host blocks. A call limited to
// 16 MiB setting 256 vars of 1 MiB used to succeed and leave 256 MiB in
// its warm instance.
func TestVarsCounted(t *testing.T) {
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/vars.wat", "testdata/vars.json"))
	cases := []struct {
		task string
		mem  uint64
		msg  string // "" for a call that succeeds
	}{
		{"flood", 16 << 20, "memory limit: var_set: vars and blocks of this call would take 16778312 bytes; its memory limit is 16777216 bytes"},
		{"mixed", 1 << 20, "memory limit: alloc of 786432 bytes: host memory for this call (blocks and vars) would exceed its limit of 1048576 bytes"},
		{"roundtrip", 1 << 20, ""},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s under %d MiB", c.task, c.mem>>20), func(t *testing.T) {
			lim := testLimits
			lim.Memory = c.mem
			before := heapInUse()
			out, err := task(t, m, c.task).Call(context.Background(), []byte(`{}`), lim)
			grown := int64(heapInUse()) - int64(before) // the warm instance is kept on success
			t.Logf("the Go heap in use grew by %.1f MiB", float64(grown)/(1<<20))
			if c.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.task == "roundtrip" && string(out) != "7" {
					t.Fatalf("var_get gave %q; want 7", out)
				}
				return
			}
			if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(), "vars."+c.task+": "+c.msg) {
				t.Fatalf("err = %v\nwant %q", err, c.msg)
			}
			if grown > int64(c.mem)+(8<<20) {
				t.Fatalf("the heap grew by %d MiB under a limit of %d MiB", grown>>20, c.mem>>20)
			}
		})
	}
}

// TestTableGrowth: tables are bounded, per table (MaxTableElements) and
// per call (their elements count against the memory limit with the
// linear memory). An unbounded table.grow loop used to take 24 GB.
func TestTableGrowth(t *testing.T) {
	wasm := testmod.Module(t, "testdata/tables.wat", "testdata/tables.json")
	cases := []struct {
		task string
		mem  uint64
		kind host.Kind // 0: succeeds with want
		want string
	}{
		{"grow", 4 << 20, host.KindMemory, "tables.grow: memory limit: the guest tried to grow table 0 to 524288 elements (4194304 bytes); " +
			"with its other tables and linear memory, that is 4259840 bytes; the limit is 4194304 bytes"},
		{"grow", 256 << 20, host.KindMemory, "tables.grow: memory limit: the guest tried to grow table 0 to 1310720 elements; a table may have at most 1048576"},
		{"steps", 4 << 20, 0, "1"},   // 65536 + 2 MiB ≤ 4 MiB: what a guest that handles -1 gets
		{"steps", 256 << 20, 0, "4"}, // 4 × 262144 elements: MaxTableElements
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s under %d MiB", c.task, c.mem>>20), func(t *testing.T) {
			m := load(t, newEngine(t), wasm) // a fresh instance for each case
			lim := testLimits
			lim.Memory = c.mem
			before := heapInUse()
			out, err := task(t, m, c.task).Call(context.Background(), []byte(`{}`), lim)
			grown := int64(heapInUse()) - int64(before) // a warm instance is kept on success
			t.Logf("the Go heap in use grew by %.1f MiB", float64(grown)/(1<<20))
			if c.kind == 0 {
				if err != nil || string(out) != c.want {
					t.Fatalf("%s, %v; want %s", out, err, c.want)
				}
			} else if host.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %v: %q", err, c.kind, c.want)
			}
			if bound := int64(min(c.mem, host.MaxTableElements*8+1<<20)) + 8<<20; grown > bound {
				t.Fatalf("the heap grew by %d MiB; the bound is %d MiB", grown>>20, bound>>20)
			}
		})
	}
}

// TestTablesDeclared: what a module declares of its tables is bounded at
// load, and counts against the call's memory limit before instantiation.
func TestTablesDeclared(t *testing.T) {
	e := newEngine(t)
	run := `(func (export "run") (result i32) (i32.const 0))`
	refusals := []struct {
		name, wat, msg string
	}{
		{"too many tables", "(module " + strings.Repeat("(table 0 funcref)", host.MaxTables+1) + run + ")", "the module defines 65 tables; the host allows 64"},
		{"a huge table", "(module (table 134217728 externref) " + run + ")", "table 0 declares 134217728 elements at least; a table may have at most 1048576"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			var err error
			grown := heapGrowth(func() { _, err = e.Load(context.Background(), attackModule(t, c.wat)) })
			if !errors.Is(err, host.ErrModuleRefused) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v; want %q", err, c.msg)
			}
			if grown > 16<<20 {
				t.Fatalf("refusing the module allocated %d MiB", grown>>20)
			}
		})
	}
	t.Run("initial tables over the limit", func(t *testing.T) {
		run := task(t, load(t, e, attackModule(t, "(module (memory 1) (table 1000000 funcref) (table 48576 externref) "+run+")")), "run")
		lim := testLimits
		lim.Memory = 8 << 20
		_, err := run.Call(context.Background(), []byte(`{}`), lim)
		if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(),
			"the module declares an initial memory of 65536 bytes (1 page) and tables of 1048576 elements (8388608 bytes); the memory limit is 8388608 bytes") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("table.grow without the meter", func(t *testing.T) {
		_, err := newEngineMode(t, host.InterruptContext).Load(context.Background(), testmod.Module(t, "testdata/tables.wat", "testdata/tables.json"))
		if !errors.Is(err, host.ErrModuleRefused) || !strings.Contains(err.Error(), "the module uses table.grow, which the host bounds only under InterruptMeter") {
			t.Fatalf("err = %v", err)
		}
	})
}

// spinFor is a WAT function body that loops n times: about 6 fuel units
// an iteration.
func spinFor(n int) string {
	return fmt.Sprintf(`(local $i i32)
		(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
			(br_if $l (i32.lt_u (local.get $i) (i32.const %d))))`, n)
}

// TestStartUnderCallLimits: a module's start function and _initialize
// run within the call's timeout and fuel, not a fixed 10 s, and their
// failure is reported as what it is, saying it happened at instantiation.
func TestStartUnderCallLimits(t *testing.T) {
	const forever = `(loop $l (br $l))`
	run := `(func (export "run") (result i32) ` + spinFor(500_000) + ` (i32.const 0))`
	start := func(body string) string {
		return `(module (func $start ` + body + `) (start $start) ` + run + `)`
	}
	initialize := func(body string) string {
		return `(module (func (export "_initialize") ` + body + `) ` + run + `)`
	}
	cases := []struct {
		name  string
		wat   string
		lim   host.Limits
		modes []host.Interrupt
		kind  host.Kind // 0: the call runs ("run" sets no output)
		msg   string
	}{
		{"start spins past the timeout", start(forever), host.Limits{Timeout: 200 * time.Millisecond},
			[]host.Interrupt{host.InterruptMeter, host.InterruptContext}, host.KindTimeout,
			"attack.run: timeout: during instantiation (the start function): did not finish within 200ms"},
		{"_initialize spins past the timeout", initialize(forever), host.Limits{Timeout: 200 * time.Millisecond},
			[]host.Interrupt{host.InterruptMeter, host.InterruptContext}, host.KindTimeout,
			"attack.run: timeout: during instantiation (_initialize): did not finish within 200ms"},
		{"start spins past the fuel", start(forever), host.Limits{Timeout: time.Minute, Fuel: 5_000_000},
			[]host.Interrupt{host.InterruptMeter}, host.KindFuel,
			"attack.run: fuel exhausted: during instantiation (the start function): the call used up its budget of 5000000 units"},
		{"_initialize spins past the fuel", initialize(forever), host.Limits{Timeout: time.Minute, Fuel: 5_000_000},
			[]host.Interrupt{host.InterruptMeter}, host.KindFuel,
			"attack.run: fuel exhausted: during instantiation (_initialize): the call used up its budget of 5000000 units"},
		// About 3 M units to start and 3 M to run: each within a budget of
		// 5 M, so the task's fuel does not depend on its instance being new.
		{"start and task each within the fuel", start(spinFor(500_000)), host.Limits{Timeout: time.Minute, Fuel: 5_000_000},
			[]host.Interrupt{host.InterruptMeter}, 0, ""},
	}
	for _, c := range cases {
		for _, mode := range c.modes {
			t.Run(fmt.Sprintf("%s/mode %d", c.name, mode), func(t *testing.T) {
				e := newEngineMode(t, mode)
				run := task(t, load(t, e, attackModule(t, c.wat)), "run")
				_, err := run.Call(context.Background(), []byte(`{}`), c.lim)
				if c.kind == 0 {
					if host.KindOf(err) != host.KindBadOutput {
						t.Fatalf("err = %v; want the task to run", err)
					}
					return
				}
				if host.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("err = %v\nwant %v: %q", err, c.kind, c.msg)
				}
			})
		}
	}
}

// TestRandomPerCall: without the random grant, every call reads the same
// randomness, whatever its instance served before: a warm instance's
// stream restarts from the fixed seed at each call. (It used to go on
// from call to call, so a map's results depended on how many workers
// shared its instances.) With the grant, the bytes are real.
func TestRandomPerCall(t *testing.T) {
	wasm := testmod.Module(t, "testdata/random.wat", "testdata/random.json")
	m := load(t, newEngine(t), wasm)
	bytes, burn := task(t, m, "bytes"), task(t, m, "burn")
	call := func(tk *host.Task, lim host.Limits) string {
		out, err := tk.Call(context.Background(), []byte(`{}`), lim)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	first := call(bytes, testLimits) // on a new instance, after _initialize read some
	for i := 0; i < 3; i++ {
		call(burn, testLimits)
		if got := call(bytes, testLimits); got != first {
			t.Fatalf("call %d on the warm instance read %s; the first call read %s", i+2, got, first)
		}
	}
	if st := m.Stats(); st.Created != 1 {
		t.Fatalf("%d instances served the calls; want one warm instance", st.Created)
	}
	if other := call(task(t, load(t, newEngine(t), wasm), "bytes"), testLimits); other != first {
		t.Fatalf("another engine's instance read %s; want %s", other, first)
	}
	granted := testLimits
	granted.Grants = &host.Grants{Random: true}
	if a, b := call(bytes, granted), call(bytes, granted); a == first || a == b {
		t.Fatalf("with random granted, two calls read %s and %s (fixed: %s)", a, b, first)
	}
}
