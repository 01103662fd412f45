package meter

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/flowhost/flowhost/internal/leb128"
)

// compare calls each function on the original and instrumented modules
// and checks the results agree and the depth global is restored.
func compare(t *testing.T, features api.CoreFeatures, orig, inst []byte, calls []basicCall) {
	t.Helper()
	h := &host{refill: lots, maxRefills: -1}
	r := newRuntime(t, h, features)
	om := instantiate(t, r, orig)
	im := instantiate(t, r, inst)
	fuel, depth := meterGlobals(t, im)
	for _, c := range calls {
		want, err := call(om, c.fn, c.args...)
		if err != nil {
			t.Fatalf("original %s%v: %v", c.fn, c.args, err)
		}
		if c.want != nil && !slices.Equal(want, c.want) {
			t.Fatalf("original %s%v = %v, test expects %v", c.fn, c.args, want, c.want)
		}
		fuel.Set(uint64(lots))
		depth.Set(100)
		got, err := call(im, c.fn, c.args...)
		if err != nil {
			t.Fatalf("instrumented %s%v: %v", c.fn, c.args, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("instrumented %s%v = %v, want %v", c.fn, c.args, got, want)
		}
		if d := depth.Get(); d != 100 {
			t.Errorf("%s%v: depth global %d after the call, want 100", c.fn, c.args, d)
		}
		t.Logf("%s%v = %v, %d fuel", c.fn, c.args, got, lots-int64(fuel.Get()))
	}
}

// TestInstructionSet runs SIMD, bulk memory, reference types, saturating
// conversions, sign extension, typed select and atomics through the
// instrumentation.
func TestInstructionSet(t *testing.T) {
	orig := wat(t, "features.wat", "--enable-threads")
	inst := instrument(t, orig, "--enable-threads")
	compare(t, api.CoreFeaturesV2|experimental.CoreFeaturesThreads, orig, inst, []basicCall{
		{"simd", nil, nil},
		{"bulk", nil, nil},
		{"refs", []uint64{0}, nil},
		{"refs", []uint64{12345}, nil},
		{"numeric", []uint64{api.EncodeF64(-12345.75)}, nil},
		{"numeric", []uint64{api.EncodeF64(1e30)}, nil},
		{"atomics", nil, nil},
	})
}

// TestTailCalls checks return_call and return_call_indirect restore the
// depth before leaving: a million tail calls run with a depth of 100,
// while plain recursion of 200 traps.
func TestTailCalls(t *testing.T) {
	orig := wat(t, "tailcall.wat", "--enable-tail-call")
	inst := instrument(t, orig, "--enable-tail-call")
	const n = 1_000_000
	features := api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall
	compare(t, features, orig, inst, []basicCall{
		{"count", []uint64{n, 0}, []uint64{n * (n + 1) / 2}},
		{"count_indirect", []uint64{n, 0}, []uint64{n * (n + 1) / 2}},
		{"sum", []uint64{50, 0}, []uint64{50 * 51 / 2}},
	})
	h := &host{refill: lots, maxRefills: -1}
	m := instantiate(t, newRuntime(t, h, features), inst)
	fuel, depth := meterGlobals(t, m)
	fuel.Set(uint64(lots))
	depth.Set(100)
	if _, err := call(m, "sum", 200, 0); err == nil || h.tooDeep != 1 {
		t.Fatalf("sum(200) with depth 100: err = %v, %d too_deep calls", err, h.tooDeep)
	}
}

// ehModule is a module wabt cannot assemble (try_table, exnref), by hand:
//
//	(tag $e)
//	(func $rec (param i32) (result i32)   ;; throws $e n calls deep
//	  (if (i32.eqz (local.get 0)) (then (throw $e)))
//	  (call $rec (i32.sub (local.get 0) (i32.const 1))))
//	(func (export "catcher") (param i32) (result i32)
//	  (block $h
//	    (try_table (catch_all $h)
//	      (if (i32.gt_s (local.get 0) (i32.const 100)) (then (return (i32.const 5))))
//	      (drop (call $rec (local.get 0))))
//	    (return (i32.const 1)))
//	  (i32.add (call $down (local.get 0)) (i32.const 7)))   ;; recurse again after the catch
//	(func $down (param i32) (result i32)   ;; returns 0, n calls deep
//	  (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
//	    (else (call $down (i32.sub (local.get 0) (i32.const 1))))))
//	(global $tries (mut i32) (i32.const 0))
//	(func (export "retry") (param i32) (result i32)
//	  (global.set $tries (i32.const 0))
//	  (loop $again                             ;; the catch branches to a loop
//	    (try_table (catch_all $again)
//	      (global.set $tries (i32.add (global.get $tries) (i32.const 1)))
//	      (if (i32.lt_u (global.get $tries) (i32.const 3))
//	        (then (drop (call $rec (local.get 0)))))))
//	  (i32.add (call $down (local.get 0)) (global.get $tries)))
//
// $tries is a global, not a local: wazero v1.12's compiler rolls locals
// set inside a try_table back to their value at its entry when it catches
// (its interpreter does not), which would make retry loop forever.
func ehModule() []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = appendSection(b, secType, []byte{2, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 0})
	b = appendSection(b, secFunction, []byte{4, 0, 0, 0, 0})
	b = appendSection(b, secTag, []byte{1, 0, 1})
	b = appendSection(b, secGlobal, []byte{1, 0x7f, 1, 0x41, 0, 0x0b})
	exports := append(appendName([]byte{2}, "catcher"), 0, 1)
	exports = append(appendName(exports, "retry"), 0, 3)
	b = appendSection(b, secExport, exports)
	rec := []byte{0, 0x20, 0, 0x45, 0x04, 0x40, 0x08, 0, 0x0b, 0x20, 0, 0x41, 1, 0x6b, 0x10, 0, 0x0b}
	catcher := []byte{0,
		0x02, 0x40, // block $h
		0x1f, 0x40, 1, 0x02, 0, // try_table (catch_all $h)
		0x20, 0, 0x41, 0xe4, 0, 0x4a, 0x04, 0x40, // local.get 0; i32.const 100; i32.gt_s; if
		0x41, 5, 0x0f, 0x0b, // i32.const 5; return; end
		0x20, 0, 0x10, 0, 0x1a, // local.get 0; call $rec; drop
		0x0b,          // end try_table
		0x41, 1, 0x0f, // i32.const 1; return
		0x0b,                                  // end block
		0x20, 0, 0x10, 2, 0x41, 7, 0x6a, 0x0b} // (call $down n) + 7; end
	down := []byte{0, 0x20, 0, 0x45, 0x04, 0x7f, 0x41, 0, 0x05, 0x20, 0, 0x41, 1, 0x6b, 0x10, 2, 0x0b, 0x0b}
	retry := []byte{0,
		0x41, 0, 0x24, 0, // global.set $tries (i32.const 0)
		0x03, 0x40, // loop $again
		0x1f, 0x40, 1, 0x02, 0, // try_table (catch_all $again)
		0x23, 0, 0x41, 1, 0x6a, 0x24, 0, // $tries++
		0x23, 0, 0x41, 3, 0x49, // $tries < 3
		0x04, 0x40, 0x20, 0, 0x10, 0, 0x1a, 0x0b, // if; drop (call $rec n); end
		0x0b,                                  // end try_table
		0x0b,                                  // end loop
		0x20, 0, 0x10, 2, 0x23, 0, 0x6a, 0x0b} // (call $down n) + $tries; end
	code := []byte{4}
	for _, f := range [][]byte{rec, catcher, down, retry} {
		code = append(leb128.AppendUint(code, uint64(len(f))), f...)
	}
	return appendSection(b, secCode, code)
}

// TestExceptions checks that an exception thrown deep in the module and
// caught by a try_table restores the depth the unwound frames had taken:
// with a depth of 100, recursing 60 deep after unwinding 61 frames works
// only if it was restored, where the catch lands (after a block, at a loop
// head) and not only at the function's exit.
func TestExceptions(t *testing.T) {
	features := api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling
	orig := ehModule()
	inst := mustInstrument(t, orig)
	compare(t, features, orig, inst, []basicCall{
		{"catcher", []uint64{60}, []uint64{7}}, // thrown 61 frames deep, then 61 deep again
		{"catcher", []uint64{0}, []uint64{7}},
		{"catcher", []uint64{200}, []uint64{5}}, // return from inside try_table
		{"retry", []uint64{60}, []uint64{3}},    // thrown twice, 61 frames deep
	})
}

// TestCppExceptions instruments the C++ exceptions module of wazero's own
// tests (clang output with try_table).
func TestCppExceptions(t *testing.T) {
	gotool := filepath.Join(goroot(t), "bin", "go")
	dir, err := exec.Command(gotool, "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("locating the wazero module: %v", err)
	}
	orig, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "experimental", "testdata", "cpp_exceptions.wasm"))
	if err != nil {
		t.Fatalf("wazero's C++ exceptions test module: %v", err)
	}
	inst := mustInstrument(t, orig)
	features := api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling
	h := &host{refill: lots, maxRefills: -1}
	r := newRuntime(t, h, features)
	om := instantiate(t, r, orig)
	im := instantiate(t, r, inst)
	for _, m := range []api.Module{om, im} {
		if _, err := call(m, "_initialize"); err != nil {
			t.Fatalf("_initialize: %v", err)
		}
	}
	compare2 := []basicCall{
		{"test_no_throw", nil, []uint64{42}},
		{"test_catch_specific", nil, []uint64{api.EncodeI32(-1)}},
		{"test_catch_base", nil, []uint64{1}},
		{"test_rethrow", nil, []uint64{api.EncodeI32(-42)}},
	}
	fuel, depth := meterGlobals(t, im)
	for _, c := range compare2 {
		fuel.Set(uint64(lots))
		depth.Set(1000)
		want, err := call(om, c.fn)
		if err != nil || !slices.Equal(want, c.want) {
			t.Fatalf("original %s = %v, %v; want %v", c.fn, want, err, c.want)
		}
		got, err := call(im, c.fn)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("instrumented %s = %v, %v; want %v", c.fn, got, err, want)
		}
		if d := depth.Get(); d != 1000 {
			t.Errorf("%s: depth global %d after the call, want 1000", c.fn, d)
		}
	}
}
