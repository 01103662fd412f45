package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
)

func stateModule(t *testing.T, e *host.Engine) *host.Module {
	return load(t, e, testmod.Module(t, "testdata/state.wat", "testdata/state.json"))
}

func callOut(t *testing.T, m *host.Module, task string, lim host.Limits) string {
	t.Helper()
	tk, ok := m.Task(task)
	if !ok {
		t.Fatalf("no task %s", task)
	}
	out, err := tk.Call(context.Background(), []byte(`{}`), lim)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestCallsStartFromTheSameState: a task that counts its calls, in a
// global and in memory, returns the same count every time, however many
// calls its instances served, on either interrupt mode.
func TestCallsStartFromTheSameState(t *testing.T) {
	for _, c := range []struct {
		name  string
		mode  host.Interrupt
		reset host.Reset
	}{{"metered", host.InterruptMeter, host.ResetSnapshot}, {"context", host.InterruptContext, host.ResetFresh}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngineMode(t, c.mode)
			m := stateModule(t, e)
			if m.Reset() != c.reset {
				t.Fatalf("reset %v, want %v", m.Reset(), c.reset)
			}
			for i := range 20 {
				if got := callOut(t, m, "count", testLimits); got != "[1,1]" {
					t.Fatalf("call %d counted %s: it saw an earlier call's state", i, got)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan string, 400)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tk, _ := m.Task("count")
					for range 50 {
						if out, err := tk.Call(context.Background(), []byte(`{}`), testLimits); err != nil || string(out) != "[1,1]" {
							errs <- string(out)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for got := range errs {
				t.Fatalf("a concurrent call counted %s", got)
			}
			if s := m.Stats(); c.reset == host.ResetSnapshot && s.Reused == 0 {
				t.Fatalf("no instance was reused: %+v", s)
			}
		})
	}
}

func TestKeepState(t *testing.T) {
	m := stateModule(t, newEngine(t))
	keep := testLimits
	keep.State = policy.StateKeep
	if a, b := callOut(t, m, "count", keep), callOut(t, m, "count", keep); a != "[1,1]" || b != "[2,2]" {
		t.Fatalf("with KeepState the counts are %s then %s, want [1,1] then [2,2]", a, b)
	}
}

func TestClockRestartsEveryCall(t *testing.T) {
	m := stateModule(t, newEngine(t))
	first := callOut(t, m, "clock", testLimits)
	for i := range 10 {
		if got := callOut(t, m, "clock", testLimits); got != first {
			t.Fatalf("call %d read the clock at %s, the first at %s", i, got, first)
		}
	}
	if first != `"16c5fc70a62e4240"` { // 2022-01-01T00:00:00Z + 1 ms, wazero's fake epoch
		t.Fatalf("the fake clock reads %s", first)
	}
	// A call that keeps its state sees the clock go on, never back.
	keep := testLimits
	keep.State = policy.StateKeep
	if a, b := callOut(t, m, "clock", keep), callOut(t, m, "clock", keep); a >= b {
		t.Fatalf("keeping its state, the clock read %s then %s", a, b)
	}
}

// TestGrownMemoryIsNotReused: a call that grew the memory cannot be undone
// (memories do not shrink): its instance is discarded, and the next call
// sees the memory the module declares.
func TestGrownMemoryIsNotReused(t *testing.T) {
	m := stateModule(t, newEngine(t))
	for i := range 3 {
		if got := callOut(t, m, "grow", testLimits); got != "1" {
			t.Fatalf("call %d: memory.grow returned %s pages, want 1 (the declared size)", i, got)
		}
	}
	if s := m.Stats(); s.Discarded < 2 {
		t.Fatalf("instances that grew were kept: %+v", s)
	}
}

// TestRestoredMemoryIsTheSnapshot: copying back only the chunks of memory
// a call marked as written gives the whole snapshot back, for every task
// of the example modules (C, AssemblyScript, Rust, WAT) on inputs of
// every JSON kind, failing calls included.
func TestRestoredMemoryIsTheSnapshot(t *testing.T) {
	ctx := context.Background()
	e, err := host.New(ctx, host.Config{CacheDir: t.TempDir(), MarkWrites: host.MarkAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	mismatches := host.VerifyRestores()
	defer mismatches()
	values := []string{`7`, `-2.5`, `"hello, world"`, `[3,1,2]`, `{"a":1,"b":[true,null]}`, `""`, `[]`}
	calls := 0
	for _, path := range []string{"stats-c/stats.wasm", "jsonkit-as/jsonkit.wasm", "rustkit-rust/rustkit.wasm", "mathwat/mathwat.wasm"} {
		wasm, err := os.ReadFile(filepath.Join("../plugins/examples", path))
		if err != nil {
			t.Fatal(err)
		}
		m := load(t, e, wasm)
		lim := testLimits
		lim.State = policy.StateReset
		if m.Reset() != host.ResetSnapshot || !m.Stats().MarksWrites {
			t.Fatalf("%s: reset %v, marked %v: want a snapshot and marks", path, m.Reset(), m.Stats().MarksWrites)
		}
		for _, spec := range m.Manifest.Tasks {
			tk, _ := m.Task(spec.Name)
			for range 3 {
				for _, v := range values {
					in := map[string]json.RawMessage{}
					for _, input := range spec.Inputs {
						in[input.Name] = json.RawMessage(v)
					}
					b, _ := json.Marshal(in)
					if _, err := tk.Call(context.Background(), b, lim); err == nil || host.KindOf(err) == host.KindGuestError {
						calls++
					}
				}
			}
		}
	}
	if n := mismatches(); n != 0 {
		t.Fatalf("%d of %d calls left memory the marked chunks did not cover", n, calls)
	}
	if calls < 50 {
		t.Fatalf("only %d calls ran to their end", calls)
	}
	t.Logf("%d calls, every memory put back", calls)
}

// TestMarkAuto: after its first calls that reset their state, a module
// whose calls do little next to its snapshot (the C example's square)
// runs the variant that marks its writes; one whose calls do much (the
// same module's describe over 10,000 numbers) does not. Both go on
// returning the same results.
func TestMarkAuto(t *testing.T) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		t.Fatal(err)
	}
	nums := `{"values":[` + strings.Repeat("5,", 9999) + `5]}`
	for _, tc := range []struct {
		task, input, want string
		marked            bool
	}{
		{"square", `{"x":12}`, `144`, true},
		{"describe", nums, `"count":10000`, false},
	} {
		t.Run(tc.task, func(t *testing.T) {
			m := load(t, newEngine(t), wasm)
			tk := task(t, m, tc.task)
			lim := testLimits
			lim.State = policy.StateReset
			calls := func(n int) {
				for i := range n {
					out, err := tk.Call(ctx, []byte(tc.input), lim)
					if err != nil || !strings.Contains(string(out), tc.want) {
						t.Fatalf("call %d: %s, %v", i, out, err)
					}
				}
			}
			calls(20)
			// The variant is built in the background.
			for deadline := time.Now().Add(20 * time.Second); tc.marked && !m.Stats().MarksWrites && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if m.Stats().MarksWrites != tc.marked {
				t.Fatalf("marked = %v, want %v", m.Stats().MarksWrites, tc.marked)
			}
			calls(20)
		})
	}
}

// TestMarkAutoConcurrent: calls from several goroutines while the host
// decides and switches to the marking variant all return the right
// result (run with -race: the decision's state is shared).
func TestMarkAutoConcurrent(t *testing.T) {
	wasm, err := os.ReadFile("../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		t.Fatal(err)
	}
	m := load(t, newEngine(t), wasm)
	tk := task(t, m, "square")
	lim := testLimits
	lim.State = policy.StateReset
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				in := fmt.Sprintf(`{"x":%d}`, g*1000+i)
				out, err := tk.Call(context.Background(), []byte(in), lim)
				if want := fmt.Sprint((g*1000 + i) * (g*1000 + i)); err != nil || string(out) != want {
					errs <- fmt.Sprintf("square(%d) = %s, %v", g*1000+i, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for deadline := time.Now().Add(20 * time.Second); !m.Stats().MarksWrites && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !m.Stats().MarksWrites {
		t.Fatal("the module never switched to the marking variant")
	}
}
