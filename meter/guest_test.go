package meter

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// goroot returns the root of the Go toolchain running the tests ("go test"
// puts its bin directory first in PATH).
func goroot(t testing.TB) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the Go guest: %v", err)
	}
	out, err := exec.Command(gotool, "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

const goGuest = `package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// work exercises the runtime: maps, fmt, sorting, hashing, a recovered panic.
//
//go:wasmexport work
func work(n int32) int64 {
	counts := map[string]int{}
	var words []string
	for i := 0; i < int(n); i++ {
		w := fmt.Sprintf("w%d", (i*7919)%97)
		counts[w]++
		words = append(words, w)
	}
	sort.Strings(words)
	sum := sha256.Sum256([]byte(strings.Join(words, ",")))
	return int64(binary.LittleEndian.Uint64(sum[:8])) + int64(len(counts)) + fib(20) + safeDiv(n)
}

func fib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	return fib(n-1) + fib(n-2)
}

func safeDiv(n int32) (r int64) {
	defer func() {
		if recover() != nil {
			r = -1
		}
	}()
	var zero int32
	return int64(n / zero)
}

//go:noinline
func down(n int32) int32 {
	if n == 0 {
		return 0
	}
	return down(n-1) + 1
}

//go:wasmexport deep
func deep(n int32) int32 { return down(n) }

func main() {}
`

// buildGoGuest builds goGuest for wasip1 as a reactor (c-shared).
func buildGoGuest(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"main.go": goGuest, "go.mod": "module guest\n\ngo 1.24\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(filepath.Join(goroot(t), "bin", "go"), "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go wasip1 guest: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoGuest instruments a real Go wasip1 reactor and checks its export
// returns what the uninstrumented one does, that the fuel used (by
// _initialize and by the call) is the same in two instances, and that deep
// recursion in Go code is bounded.
func TestGoGuest(t *testing.T) {
	orig := buildGoGuest(t)
	start := time.Now()
	inst := mustInstrument(t, orig)
	t.Logf("instrumented %d bytes into %d in %v", len(orig), len(inst), time.Since(start))
	instrument(t, orig) // and have wasm-validate check it
	ctx := context.Background()
	h := &host{refill: 1_000_000, maxRefills: -1}
	r := newRuntime(t, h, api.CoreFeaturesV2)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
	load := func(wasm []byte) api.Module {
		c, err := r.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatalf("compile: %v", err)
		}
		m, err := r.InstantiateModule(ctx, c, cfg)
		if err != nil {
			t.Fatalf("instantiate: %v", err)
		}
		return m
	}

	om := load(orig)
	want, err := call(om, "work", 500)
	if err != nil {
		t.Fatalf("original work(500): %v", err)
	}

	var initFuel, workFuel []int64
	for range 2 {
		before := h.refilled
		im := load(inst)
		fuel, depth := meterGlobals(t, im)
		initFuel = append(initFuel, h.refilled-before-int64(fuel.Get()))

		fuel.Set(1_000_000)
		depth.Set(100_000)
		before = h.refilled
		got, err := call(im, "work", 500)
		if err != nil {
			t.Fatalf("instrumented work(500): %v", err)
		}
		if got[0] != want[0] {
			t.Fatalf("instrumented work(500) = %d, want %d", int64(got[0]), int64(want[0]))
		}
		if d := depth.Get(); d != 100_000 {
			t.Fatalf("depth global %d after work, want 100000", d)
		}
		workFuel = append(workFuel, 1_000_000+h.refilled-before-int64(fuel.Get()))
	}
	t.Logf("_initialize used %v fuel, work(500) %v", initFuel, workFuel)
	if initFuel[0] != initFuel[1] || workFuel[0] != workFuel[1] || workFuel[0] <= 0 {
		t.Fatalf("fuel differs between instances: _initialize %v, work %v", initFuel, workFuel)
	}

	// Recursion in Go code: a shallow one returns, a deep one traps.
	im := load(inst)
	fuel, depth := meterGlobals(t, im)
	fuel.Set(uint64(lots))
	depth.Set(1000)
	if res, err := call(im, "deep", 100); err != nil || res[0] != 100 {
		t.Fatalf("deep(100) = %v, %v", res, err)
	}
	if d := depth.Get(); d != 1000 {
		t.Fatalf("depth global %d after deep(100), want 1000", d)
	}
	h.tooDeep = 0
	if _, err := call(im, "deep", 1_000_000); err == nil || h.tooDeep != 1 {
		t.Fatalf("deep(1000000) with depth 1000: err = %v, %d too_deep calls", err, h.tooDeep)
	}
}

const cGuest = `typedef int (*op_fn)(int, int);
static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }
op_fn ops[] = {add, sub, mul};

__attribute__((export_name("fib"))) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static unsigned char buf[4096];

__attribute__((export_name("checksum"))) unsigned checksum(int n) {
	if (n > 4096) n = 4096;
	for (int i = 0; i < n; i++) buf[i] = (unsigned char)(i * 31 + 7);
	for (int i = 1; i < n; i++) {
		unsigned char v = buf[i];
		int j = i - 1;
		while (j >= 0 && buf[j] > v) { buf[j + 1] = buf[j]; j--; }
		buf[j + 1] = v;
	}
	unsigned h = 2166136261u;
	for (int i = 0; i < n; i++) h = (h ^ buf[i]) * 16777619u;
	return h;
}

__attribute__((export_name("dispatch"))) int dispatch(int which, int a, int b) {
	switch (which) {
	case 0: return a * 3;
	case 1: return b - a;
	case 2: return a ^ b;
	case 3: return a << 2;
	case 4: return b / (a | 1);
	}
	return ops[which % 3](a, b);
}
`

// TestCGuest instruments freestanding clang output (wasm32, -O2, with DWARF
// debug sections and a name section) and compares results.
func TestCGuest(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Fatalf("clang (with the wasm32 target and wasm-ld, Debian packages clang and lld) is needed for the C guest: %v", err)
	}
	dir := t.TempDir()
	src, out := filepath.Join(dir, "guest.c"), filepath.Join(dir, "guest.wasm")
	if err := os.WriteFile(src, []byte(cGuest), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(clang, "--target=wasm32", "-O2", "-g", "-nostdlib", "-Wl,--no-entry", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("clang: %v\n%s", err, msg)
	}
	orig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	inst := instrument(t, orig)
	if n := len(customSections(t, orig)); n < 3 {
		t.Fatalf("expected DWARF custom sections in the C guest, found %d", n)
	}
	compare(t, api.CoreFeaturesV2, orig, inst, []basicCall{
		{"fib", []uint64{22}, []uint64{17711}},
		{"checksum", []uint64{3000}, nil},
		{"dispatch", []uint64{0, 5, 9}, []uint64{15}},
		{"dispatch", []uint64{3, 5, 9}, []uint64{20}},
		{"dispatch", []uint64{4, 5, 9}, []uint64{1}},
		{"dispatch", []uint64{7, 5, 9}, []uint64{api.EncodeI32(-4)}},
		{"dispatch", []uint64{8, 5, 9}, []uint64{45}},
	})
}
