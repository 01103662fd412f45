package meter

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// FuzzInstrument checks that Instrument never panics, fails only with
// ErrMalformed or ErrUnsupported, and that whenever wazero accepts the
// original module it accepts the instrumented one, with and without the
// marks of written memory. "go test" runs the seeds; "go test -fuzz
// FuzzInstrument ./meter/" explores.
func FuzzInstrument(f *testing.F) {
	f.Add(wat(f, "basic.wat"))
	f.Add(wat(f, "features.wat", "--enable-threads"))
	f.Add(wat(f, "tailcall.wat", "--enable-tail-call"))
	f.Add(wat(f, "minimal.wat"))
	f.Add(ehModule())
	f.Add(wat(f, "dirty.wat", "--enable-threads"))
	ctx := context.Background()
	features := api.CoreFeaturesV2 | experimental.CoreFeaturesThreads |
		experimental.CoreFeaturesTailCall | experimental.CoreFeaturesExceptionHandling
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(features))
	f.Cleanup(func() { r.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		if !plausibleCounts(wasm) || nameSections(wasm) != nameSections(out) {
			// wazero would allocate by a bogus count first (a name section
			// Instrument dropped is malformed)
			return
		}
		if err := compile(ctx, r, wasm); err != nil {
			return // the original is invalid; what Instrument made of it does not matter
		}
		if err := compile(ctx, r, out); err != nil {
			t.Fatalf("wazero accepts the original but not the instrumented module: %v", err)
		}
		marked, _, err := InstrumentWith(wasm, Options{MarkWrites: true})
		if err != nil {
			t.Fatalf("instrumented without marks, refused with them: %v", err)
		}
		if err := compile(ctx, r, marked); err != nil {
			t.Fatalf("wazero accepts the original but not the module with marks: %v", err)
		}
	})
}

// compile compiles wasm with r, turning a panic of wazero's validator
// (which some malformed inputs cause) into an error.
func compile(ctx context.Context, r wazero.Runtime, wasm []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	c, err := r.CompileModule(ctx, wasm)
	if err == nil {
		c.Close(ctx)
	}
	return err
}

// plausibleCounts tells whether every non-custom section's leading count
// (all but the start section begin with one) is at most its size in bytes.
func plausibleCounts(wasm []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m := &rewriter{in: wasm}
	m.parseSections()
	for _, s := range m.sections {
		if s.id == secCustom || s.id == secStart {
			continue
		}
		if n := m.payload(s).u32(); uint64(n) > uint64(s.end-s.start) {
			return false
		}
	}
	return true
}

// nameSections counts the "name" custom sections of a module.
func nameSections(wasm []byte) (n int) {
	defer func() {
		if recover() != nil {
			n = -1
		}
	}()
	m := &rewriter{in: wasm}
	m.parseSections()
	for _, s := range m.sections {
		if s.id == secCustom && m.payload(s).name() == "name" {
			n++
		}
	}
	return n
}
