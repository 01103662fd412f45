package inproc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/host"
)

// TestOrder: with the one worker busy, queued jobs start tenant by
// tenant in turn, and within a tenant the highest priority's oldest
// first; a tenant's priorities never put it ahead of another tenant.
func TestOrder(t *testing.T) {
	ctx := context.Background()
	e, err := host.New(ctx, host.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	wasm, err := os.ReadFile("../../plugins/examples/mathwat/mathwat.wasm")
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	task, _ := m.Task("inc")
	b := New(1)
	defer b.Close()

	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	var wg sync.WaitGroup
	submit := func(name, tenant string, prio int, hold bool) {
		wg.Add(1)
		job := &broker.Job{Ctx: ctx, Tenant: tenant, Priority: prio, Step: name, Task: task, Inputs: [][]byte{[]byte(`{"x":1}`)}, Limits: host.DefaultLimits}
		if err := b.Submit(job, func(j *broker.Job, r *broker.Result) {
			defer wg.Done()
			if r.Errs[0] != nil {
				t.Errorf("%s: %v", j.Step, r.Errs[0])
			}
			mu.Lock()
			order = append(order, j.Step)
			mu.Unlock()
			if hold {
				<-release // the worker is busy until every other job is queued
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	submit("hold", "x", 0, true)
	for i, j := range []struct {
		tenant string
		prio   int
	}{{"a", 1}, {"a", 1}, {"a", 5}, {"b", 1}, {"a", 3}, {"b", 2}, {"c", 0}} {
		submit(fmt.Sprintf("%s%d#%d", j.tenant, j.prio, i), j.tenant, j.prio, false)
	}
	close(release)
	wg.Wait()
	// Turns: a, b, c, a, b, a, a; a's jobs by priority, then age.
	want := []string{"hold", "a5#2", "b2#5", "c0#6", "a3#4", "b1#3", "a1#0", "a1#1"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v\nwant  %v", order, want)
	}
}
