package meter

import (
	"bytes"
	"context"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/leb128"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// TestDirty: whatever a call writes, and however, lies within the chunks
// it marked (with their spill): memory put back from a snapshot by
// copying the marked chunks alone is the snapshot again. Each of the
// module's writers runs at random addresses and lengths, chunk borders
// and the memory's end included, and each call checks every byte.
//
// Functions mark a local, or'ed into the global as they leave; in a
// module that throws (a frame may then be left by unwinding), they mark
// the global itself: both are checked.
func TestDirty(t *testing.T) {
	src, err := os.ReadFile("testdata/dirty.wat")
	if err != nil {
		t.Fatal(err)
	}
	throws := strings.Replace(string(src), "(memory (export", `(tag $e) (func (export "t") (throw $e)) (memory (export`, 1)
	for _, tc := range []struct{ name, src string }{{"accumulated", string(src)}, {"global", throws}} {
		t.Run(tc.name, func(t *testing.T) {
			orig := watText(t, tc.src)
			inst, st, err := InstrumentWith(orig, Options{MarkWrites: true})
			if err != nil || !st.Dirty {
				t.Fatalf("InstrumentWith = %+v, %v", st, err)
			}
			if plain, pst, _ := InstrumentState(orig); pst.Dirty || bytes.Contains(plain, []byte(GlobalDirty)) {
				t.Fatal("marks added without Options.MarkWrites")
			}
			testDirty(t, orig, inst)
		})
	}
}

func testDirty(t *testing.T, orig, wasm []byte) {
	ctx := context.Background()
	st, err := Analyze(orig)
	if err != nil || !st.Dirty {
		t.Fatalf("Analyze = %+v, %v; want a tracked module", st, err)
	}
	r := newRuntime(t, &host{refill: 1 << 30, maxRefills: -1}, api.CoreFeaturesV2|experimental.CoreFeaturesThreads|experimental.CoreFeaturesExceptionHandling)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	m := instantiate(t, r, wasm)
	fuel, depth := meterGlobals(t, m)
	dirty := m.ExportedGlobal(GlobalDirty).(api.MutableGlobal)
	shift := m.ExportedGlobal(GlobalDirtyShift).(api.MutableGlobal)
	mem := m.Memory()
	size := mem.Size()
	s := uint32(bits.Len32(size-1) - 6) // 64 chunks cover the memory
	shift.Set(uint64(s))
	w := m.ExportedFunction("w")
	rng := rand.New(rand.NewPCG(1, 2))
	marked := map[uint64]bool{}
	for i := range 20000 {
		kind := uint64(rng.IntN(15))
		width := uint32(32) // the widest single write (v128 at offset 16)
		if kind >= 9 && kind <= 11 || kind == 13 || kind == 14 {
			width = uint32(rng.IntN(300))
		}
		if kind == 11 { // memory.init: the segment's 64 bytes at most
			width = uint32(rng.IntN(65))
		}
		var a uint32
		switch rng.IntN(4) {
		case 0: // at a chunk's border
			a = uint32(rng.IntN(64))<<s - uint32(rng.IntN(int(width)+1))
		case 1: // at the memory's end
			a = size - width
		default:
			a = uint32(rng.IntN(int(size - width)))
		}
		if a > size-width {
			a = size - width
		}
		if kind == 12 { // atomics must be aligned
			a &^= 3
		}
		n := width
		before, _ := mem.Read(0, size)
		before = bytes.Clone(before)
		dirty.Set(0)
		fuel.Set(1 << 30)
		depth.Set(1000)
		if _, err := w.Call(ctx, kind, uint64(a), uint64(n)); err != nil {
			t.Fatalf("w(%d, %d, %d): %v", kind, a, n, err)
		}
		d := dirty.Get()
		after, _ := mem.Read(0, size)
		for j := range after {
			if after[j] == before[j] {
				continue
			}
			c := uint32(j) >> s
			covered := d&(1<<c) != 0 || (c > 0 && d&(1<<(c-1)) != 0 && uint32(j) < c<<s+DirtySpill)
			if !covered {
				t.Fatalf("call %d: w(%d, %d, %d) changed byte %d (chunk %d) but marked %064b", i, kind, a, n, j, c, d)
			}
		}
		if n != 0 && d == 0 && kind != 14 {
			t.Fatalf("call %d: w(%d, %d, %d) marked nothing", i, kind, a, n)
		}
		marked[kind] = marked[kind] || (d != 0 && d != ^uint64(0))
		if kind == 12 || kind == 13 {
			if d != ^uint64(0) {
				t.Fatalf("w(%d): marked %064b, want every chunk", kind, d)
			}
		}
	}
	for kind := range uint64(15) {
		if kind != 12 && kind != 13 && !marked[kind] {
			t.Errorf("writer %d never marked a chunk precisely", kind)
		}
	}
}

// TestDirtyUntracked: a module whose writing import may be called other
// than directly (here, through a table) is not tracked, nor is one that
// imports its memory.
func TestDirtyUntracked(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"import in a table", `(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
			(memory 1) (table 1 funcref) (elem (i32.const 0) $r))`},
		{"import exported", `(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
			(memory 1) (export "r" (func $r)))`},
		{"import taken by ref.func", `(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
			(memory 1) (elem declare func $r) (func (drop (ref.func $r))))`},
		{"memory imported", `(module (import "env" "memory" (memory 1)))`},
		{"no memory", `(module (func))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Analyze(watText(t, tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if st.Dirty {
				t.Fatal("tracked")
			}
		})
	}
	// The Extism kernel's imports do not write the guest's memory.
	st, err := Analyze(watText(t, `(module (import "extism:host/env" "input_length" (func $l (result i64)))
		(memory 1) (table 1 funcref) (elem (i32.const 0) $l))`))
	if err != nil || !st.Dirty {
		t.Fatalf("Analyze = %+v, %v; want tracked", st, err)
	}
}

// watText compiles WAT source text with every feature wat2wasm knows.
func watText(t testing.TB, src string) []byte {
	t.Helper()
	in := filepath.Join(t.TempDir(), "m.wat")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return compileWAT(t, in, "--enable-all")
}

// TestManyMultiResultFunctions: a module of many types and many
// functions with several results is instrumented in time linear in its
// size (the wrapper blocks' types are found through an index, not a scan
// of every type: 80,000 of each took 19 s before).
func TestManyMultiResultFunctions(t *testing.T) {
	const n = 80000
	types := leb128.AppendUint(nil, n+1)
	types = append(types, 0x60, 0x01, 0x7f, 0x02, 0x7f, 0x7f) // (i32) -> (i32 i32)
	for range n {
		types = append(types, 0x60, 0x00, 0x00) // () -> ()
	}
	funcs := leb128.AppendUint(nil, n)
	code := leb128.AppendUint(nil, n)
	for range n {
		funcs = append(funcs, 0)
		code = append(code, 0x06, 0x00, 0x20, 0x00, 0x20, 0x00, 0x0b) // local.get 0 twice
	}
	wasm := appendSection([]byte("\x00asm\x01\x00\x00\x00"), secType, types)
	wasm = appendSection(wasm, secFunction, funcs)
	wasm = appendSection(wasm, secCode, code)
	start := time.Now()
	if _, err := Instrument(wasm); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("instrumenting %d functions took %s", n, d)
	}
}
