package host_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/flowhost/flowhost/host"
)

// TestConcurrentLoad: the same bytes loaded at once by many goroutines
// (two tenants' runs starting together) give one module, and every call
// on it works. (Two workers' goroutines compiling the same module at once
// made a later instantiation panic inside wazero, about one run in ten of
// TestTenantAttacks; this test keeps the single-load rule.)
func TestConcurrentLoad(t *testing.T) {
	wasm, err := os.ReadFile("../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 10 {
		e, err := host.New(ctx, host.Config{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		mods := make([]*host.Module, 8)
		for g := range mods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := e.Load(ctx, wasm)
				if err != nil {
					t.Error(err)
					return
				}
				mods[g] = m
				task, _ := m.Task("sum")
				for range 3 {
					if out, err := task.Call(ctx, []byte(`{"values":[1,2]}`), host.Limits{}); err != nil || string(out) != "3" {
						t.Errorf("sum: %s %v", out, err)
					}
				}
			}()
		}
		wg.Wait()
		for _, m := range mods[1:] {
			if m != mods[0] {
				t.Fatal("the same bytes loaded as two modules")
			}
		}
		e.Close(ctx)
	}
}
