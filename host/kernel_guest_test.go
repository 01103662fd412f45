package host_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
)

// rec is one op of testdata/kernel.wat's run task.
func rec(op byte, a, b uint64) []byte {
	r := make([]byte, 17)
	r[0] = op
	binary.LittleEndian.PutUint64(r[1:], a)
	binary.LittleEndian.PutUint64(r[9:], b)
	return r
}

func recs(rs ...[]byte) []byte {
	var b []byte
	for _, r := range rs {
		b = append(b, r...)
	}
	return b
}

// TestKernelGuest: a guest that passes the kernel wild offsets and sizes
// gets the failures the host always gave, through the WebAssembly kernel
// and through the Go functions it passes on, under both interrupt modes.
func TestKernelGuest(t *testing.T) {
	const (
		alloc, free, length, loadU8, loadU64, storeU8, storeU64, outputSet, errorSet          byte = 0, 1, 2, 3, 4, 5, 6, 7, 8
		inputLoadU8, inputLoadU64, varSet, varGet, configGet, logInfo, failWith, lengthUnsafe byte = 9, 10, 11, 12, 13, 14, 15, 16
		last, lastB                                                                           byte = 0x80, 0x40 // the first, the second argument is relative to the last block allocated
		minus8                                                                                     = ^uint64(7)
	)
	boom := recs(rec(alloc, 5, 0), rec(last|storeU8, 0, 'b'), rec(last|storeU8, 1, 'o'), rec(last|storeU8, 2, 'o'),
		rec(last|storeU8, 3, 'm'), rec(last|storeU8, 4, '!'))
	cases := []struct {
		name  string
		input []byte
		kind  host.Kind // 0: success
		msg   string
	}{
		{"nothing", nil, 0, ""},
		{"every function", recs(rec(alloc, 16, 0), rec(last|storeU64, 8, 42), rec(last|loadU64, 8, 0), rec(last|loadU8, 15, 0),
			rec(last|length, 0, 0), rec(last|lengthUnsafe, 0, 0), rec(length, 12345, 0), rec(free, 9, 0), rec(free, 0, 0),
			rec(inputLoadU8, 0, 0), rec(inputLoadU64, 0, 0), rec(last|errorSet, 0, 0), rec(errorSet, 0, 0), rec(last|free, 0, 0),
			rec(alloc, 1, 0), rec(last|storeU8, 0, 'k'), rec(alloc, 3, 0), rec(last|lastB|varSet, minus8, 0), rec(last|varGet, minus8, 0),
			rec(last|lastB|varSet, minus8, 0)), 0, ""},
		{"store_u8 far", rec(storeU8, 1<<63, 0), host.KindTrap, "store_u8: offset 9223372036854775808 length 1 is outside host memory (17 bytes allocated)"},
		{"store_u64 at 0", rec(storeU64, 0, 0), host.KindTrap, "store_u64: offset 0 length 8 is outside host memory (17 bytes allocated)"},
		{"load_u64 past a block", recs(rec(alloc, 16, 0), rec(last|loadU64, 9, 0)), host.KindTrap, "load_u64: offset 57 length 8 is outside host memory (56 bytes allocated)"},
		{"load_u8 past 4 GiB", rec(loadU8, 1<<32+8, 0), host.KindTrap, "load_u8: offset 4294967304 length 1 is outside host memory (17 bytes allocated)"},
		{"load_u8 of a block given back", recs(rec(alloc, 100, 0), rec(last|free, 0, 0), rec(last|loadU8, 0, 0)), host.KindTrap, "load_u8: offset 64 length 1 is outside host memory (56 bytes allocated)"},
		{"error_set of no block", rec(errorSet, 12345, 0), host.KindTrap, "error_set: offset 12345 is not an allocated block"},
		{"error_set inside a block", recs(rec(alloc, 16, 0), rec(last|errorSet, 8, 0)), host.KindTrap, "error_set: offset 56 is not an allocated block"},
		{"var_set of no block", rec(varSet, 77, 0), host.KindTrap, "var_set: offset 77 is not an allocated block"},
		{"var_get of no block", rec(varGet, 1<<40, 0), host.KindTrap, "var_get: offset 1099511627776 is not an allocated block"},
		{"config_get of no block", rec(configGet, 9, 0), host.KindTrap, "config_get: offset 9 is not an allocated block"},
		{"log of no block", rec(logInfo, ^uint64(0), 0), host.KindTrap, "log: offset 18446744073709551615 is not an allocated block"},
		{"input_load_u8 past the input", rec(inputLoadU8, 17, 0), host.KindTrap, "input_load_u8: offset 17 is past the input's 17 bytes"},
		{"input_load_u64 past the input", rec(inputLoadU64, 10, 0), host.KindTrap, "input_load_u64: offset 10 is past the input's 17 bytes"},
		{"input_load_u64 wrapping", rec(inputLoadU64, ^uint64(0)-2, 0), host.KindTrap, "input_load_u64: offset 18446744073709551613 is past the input's 17 bytes"},
		{"alloc past the limit", rec(alloc, testLimits.Memory, 0), host.KindMemory, "alloc of 33554432 bytes: host memory for this call (blocks and vars) would exceed its limit of 33554432 bytes"},
		{"alloc of 2^64-1", rec(alloc, ^uint64(0), 0), host.KindMemory, "alloc of 18446744073709551615 bytes: host memory for this call (blocks and vars) would exceed its limit of 33554432 bytes"},
		{"output too large", rec(outputSet, 8, 2<<20), host.KindOutputTooLarge, "2097152 bytes; the limit is 1048576"},
		{"output past the arena", rec(outputSet, 8, 18), host.KindTrap, "output_set: offset 8 length 18 is outside host memory (17 bytes allocated)"},
		{"output of the input", rec(outputSet, 8, 17), host.KindBadOutput, "output is not valid JSON"},
		{"guest error", recs(boom, rec(last|failWith, 0, 0)), host.KindGuestError, "kernel.run: boom!"},
		{"guest error, no block", recs(boom, rec(failWith, 0, 0)), host.KindGuestError, "kernel.run: returned 1"},
	}
	for _, mode := range []struct {
		name string
		mode host.Interrupt
	}{{"meter", host.InterruptMeter}, {"context", host.InterruptContext}} {
		t.Run(mode.name, func(t *testing.T) {
			m := load(t, newEngineMode(t, mode.mode), testmod.Module(t, "testdata/kernel.wat", "testdata/kernel.json"))
			run := task(t, m, "run")
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					out, err := run.Call(context.Background(), c.input, testLimits)
					if c.kind == 0 {
						if err != nil || string(out) != `{"x":1}` {
							t.Fatalf("= %s, %v; want {\"x\":1}", out, err)
						}
						return
					}
					if k := host.KindOf(err); k != c.kind || !strings.Contains(err.Error(), c.msg) {
						t.Fatalf("err = %v (%v); want %v with %q", err, k, c.kind, c.msg)
					}
					if strings.Contains(err.Error(), "wasm stack trace") {
						t.Fatalf("error leaks a stack trace: %q", err)
					}
				})
			}
		})
	}
}

// TestKernelCallsDoNotMeet: a block's bytes, and the padding before it,
// are zero in every call, though the instance's kernel memory still holds
// what the last call wrote there; a call whose kernel memory grew past
// 1 MiB leaves no instance behind.
func TestKernelCallsDoNotMeet(t *testing.T) {
	e := newEngine(t)
	m := load(t, e, testmod.Module(t, "testdata/kernel.wat", "testdata/kernel.json"))
	peek := task(t, m, "peek")
	for _, state := range []string{policy.StateReset, policy.StateKeep} {
		lim := testLimits
		lim.State = state
		for i := range 20 {
			out, err := peek.Call(context.Background(), []byte(strings.Repeat("z", i)), lim)
			if err != nil || string(out) != `{"x":0}` {
				t.Fatalf("%s call %d: %s, %v; want a clean block", state, i, out, err)
			}
		}
	}
	st := m.Stats()
	if st.Reused < 38 {
		t.Fatalf("stats %+v: the calls did not share their instances", st)
	}
	run := task(t, m, "run")
	for _, c := range []struct {
		size    uint64
		discard bool
	}{{512 << 10, false}, {2 << 20, true}} {
		before := m.Stats().Discarded
		if out, err := run.Call(context.Background(), rec(0, c.size, 0), testLimits); err != nil {
			t.Fatalf("alloc of %d: %s, %v", c.size, out, err)
		}
		if got := m.Stats().Discarded - before; got != map[bool]int64{false: 0, true: 1}[c.discard] {
			t.Fatalf("after an alloc of %d bytes, %d instances discarded; want the instance discarded: %v", c.size, got, c.discard)
		}
	}
}

// TestKernelStartUp: a start function's blocks count against the limit
// of the call that needs the instance, as a call's do.
func TestKernelStartUp(t *testing.T) {
	src := `(module
		(import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
		(memory (export "memory") 1)
		(func $start (drop (call $alloc (i64.const 1073741824))))
		(start $start)
		(func (export "run") (result i32) (i32.const 0)))`
	wasm := testmod.WithManifest(t, testmod.WATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`)
	m := load(t, newEngine(t), wasm)
	_, err := task(t, m, "run").Call(context.Background(), nil, testLimits)
	if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(), "during instantiation (the start function): alloc of 1073741824 bytes") {
		t.Fatalf("err = %v; want the start function's alloc refused", err)
	}
}

// TestKernelInputPastLimit: an input larger than the call's memory limit
// fails the call, as any block past it does.
func TestKernelInputPastLimit(t *testing.T) {
	m := load(t, newEngine(t), testmod.Module(t, "testdata/kernel.wat", "testdata/kernel.json"))
	lim := testLimits
	lim.Memory = 100000
	_, err := task(t, m, "run").Call(context.Background(), make([]byte, 200000), lim)
	if host.KindOf(err) != host.KindMemory || !strings.Contains(err.Error(), "alloc of 200000 bytes: host memory for this call (blocks and vars) would exceed its limit of 100000 bytes") {
		t.Fatalf("err = %v; want the input refused", err)
	}
	if out, err := task(t, m, "run").Call(context.Background(), nil, lim); err != nil || string(out) != `{"x":1}` {
		t.Fatalf("the next call: %s, %v", out, err)
	}
}

// TestKernelInternalsRefused: a guest can import none of what the
// kernel keeps for the host: its memory, its globals, its reset.
func TestKernelInternalsRefused(t *testing.T) {
	e := newEngine(t)
	for _, imp := range []string{
		`(import "extism:host/env" "reset" (func (param i64 i64 i64) (result i64)))`,
		`(import "extism:host/env" "memory" (memory 1))`,
		`(import "extism:host/env" "end" (global (mut i64)))`,
		`(import "flowhost:kernel" "config_get" (func (param i64) (result i64)))`,
	} {
		src := `(module ` + imp + ` (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))`
		wasm := testmod.WithManifest(t, testmod.WATText(t, src), `{"abi":1,"name":"m","tasks":[{"name":"run","inputs":[],"outputs":["x"]}]}`)
		if _, err := e.Load(context.Background(), wasm); err == nil || !strings.Contains(err.Error(), "import") {
			t.Errorf("%s: Load err = %v; want it refused", imp, err)
		}
	}
}
