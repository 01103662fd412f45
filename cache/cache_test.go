package cache_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
)

func TestCanonical(t *testing.T) {
	same := [][]string{
		{`{"b":1,"a":[1,2]}`, `{ "a" : [1, 2], "b" : 1.0 }`, `{"a":[1e0,2],"b":1}`},
		{`-0`, `0`, `0.0`},
		{`12345678901234567890123`, ` 12345678901234567890123 `},
		{`"é"`, `"\u00e9"`},
		{`1.5`, `15e-1`},
	}
	for _, group := range same {
		want, err := cache.Canonical([]byte(group[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range group[1:] {
			if got, err := cache.Canonical([]byte(v)); err != nil || string(got) != string(want) {
				t.Errorf("Canonical(%s) = %s, want %s (as %s)", v, got, want, group[0])
			}
		}
	}
	for _, pair := range [][2]string{{`1`, `2`}, {`"1"`, `1`}, {`[1,2]`, `[2,1]`}, {`{"a":1}`, `{"a":1,"b":null}`}, {`12345678901234567890123`, `12345678901234567890124`}} {
		a, _ := cache.Canonical([]byte(pair[0]))
		b, _ := cache.Canonical([]byte(pair[1]))
		if string(a) == string(b) {
			t.Errorf("%s and %s have the same canonical form %s", pair[0], pair[1], a)
		}
	}
	if _, err := cache.Canonical([]byte(`{"a":`)); err == nil {
		t.Error("invalid JSON has a canonical form")
	}
}

// module builds a module whose echo task returns its input, with a byte
// of data that tells its versions apart.
func module(t *testing.T, e *host.Engine, version string) *host.Module {
	t.Helper()
	src, err := os.ReadFile("../bench/testdata/trivial.wat")
	if err != nil {
		t.Fatal(err)
	}
	wat := strings.Replace(string(src), "(memory", `(data (i32.const 60000) "`+version+`") (memory`, 1)
	if !strings.Contains(wat, version) {
		t.Fatal("the data segment was not added")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.wat"), []byte(wat), 0o644)
	b, _ := os.ReadFile("../bench/testdata/trivial.json")
	os.WriteFile(filepath.Join(dir, "m.json"), b, 0o644)
	m, err := e.Load(context.Background(), testmod.Module(t, filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.json")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func echo(t *testing.T, m *host.Module) *host.Task {
	tk, ok := m.Task("echo")
	if !ok {
		t.Fatal("no echo task")
	}
	return tk
}

func engine(t *testing.T) *host.Engine {
	e, err := host.New(context.Background(), host.Config{CacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func TestCall(t *testing.T) {
	ctx := context.Background()
	e := engine(t)
	store, err := cache.OpenDisk(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := echo(t, module(t, e, "v1")), echo(t, module(t, e, "v2"))
	call := func(tk *host.Task, in string, lim host.Limits) bool {
		t.Helper()
		out, hit, err := cache.Call(ctx, store, tk, []byte(in), lim)
		want := []byte(in)
		if cache.Cacheable(ctx, tk, lim) {
			want, _ = cache.Canonical(want) // what a cacheable call is given
		}
		if err != nil || string(out) != string(want) {
			t.Fatalf("echo %s = %s, %v; want %s", in, out, err, want)
		}
		return hit
	}
	lim := host.DefaultLimits
	if call(v1, `{"value":1}`, lim) || !call(v1, `{"value":1}`, lim) {
		t.Fatal("the second identical call was not a hit")
	}
	if !call(v1, `{ "value" : 1.0 }`, lim) {
		t.Fatal("the same input, written otherwise, missed")
	}
	if call(v2, `{"value":1}`, lim) {
		t.Fatal("a module whose bytes changed hit the other's entry")
	}
	if call(v1, `{"value":2}`, lim) {
		t.Fatal("another input hit")
	}
	granted := lim
	granted.Grants = &policy.Grants{Clock: true}
	if call(v1, `{"value":3}`, granted) || call(v1, `{"value":3}`, granted) {
		t.Fatal("a call granted the clock was cached")
	}
	granted.Cache = policy.CacheOn // the flow's promise
	if call(v1, `{"value":4}`, granted) || !call(v1, `{"value":4}`, granted) {
		t.Fatal("a granted call opted in was not cached")
	}
	off := lim
	off.Cache = policy.CacheOff
	if call(v1, `{"value":1}`, off) {
		t.Fatal("cache = false read the cache")
	}
	keep := lim
	keep.State = policy.StateKeep
	if call(v1, `{"value":5}`, keep) || call(v1, `{"value":5}`, keep) {
		t.Fatal("a call that keeps its state was cached")
	}
}

func TestFailuresAreNotCached(t *testing.T) {
	ctx := context.Background()
	store, _ := cache.OpenDisk(t.TempDir(), 0, 0)
	tk := echo(t, module(t, engine(t), "v1"))
	lim := host.DefaultLimits
	lim.MaxOutput = 4 // the echo's output is too large: a failure
	for range 2 {
		if _, hit, err := cache.Call(ctx, store, tk, []byte(`{"value":"long enough"}`), lim); err == nil || hit {
			t.Fatalf("hit %v err %v: want a failure, never from the cache", hit, err)
		}
	}
	if st := store.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries stored for failures", st.Entries)
	}
}

// TestMaxOutputHolds: a result stored under a larger max_output is not
// returned to a call whose limit it exceeds.
func TestMaxOutputHolds(t *testing.T) {
	ctx := context.Background()
	store, _ := cache.OpenDisk(t.TempDir(), 0, 0)
	defer store.Close()
	tk := echo(t, module(t, engine(t), "v1"))
	in := []byte(`{"value":"twenty bytes or so"}`)
	if _, _, err := cache.Call(ctx, store, tk, in, host.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	small := host.DefaultLimits
	small.MaxOutput = 8
	if _, hit, err := cache.Call(ctx, store, tk, in, small); hit || host.KindOf(err) != host.KindOutputTooLarge {
		t.Fatalf("hit %v, err %v: want the call's own output limit", hit, err)
	}
}

// planted is a store whose every entry is what a hostile tenant wrote in
// its own Redis keys: sealed (the seal is a checksum anyone can compute),
// but not an output the task could have given.
type planted struct{ value []byte }

func (p planted) Get(context.Context, cache.Key) ([]byte, bool, error) { return p.value, true, nil }
func (planted) Put(context.Context, cache.Key, []byte) error           { return nil }

// TestPlantedEntry: a stored result is checked as the task's own output
// is before it is returned; one that fails the check is not returned, the
// call runs.
func TestPlantedEntry(t *testing.T) {
	ctx := context.Background()
	tk := echo(t, module(t, engine(t), "v1"))
	in := []byte(`{"value":1}`)
	for _, bad := range []string{`not json`, ``, `{"value":`} {
		out, hit, err := cache.Call(ctx, planted{[]byte(bad)}, tk, in, host.DefaultLimits)
		if err != nil || hit || string(out) != string(in) {
			t.Fatalf("planted %q: out %s hit %v err %v; want the task's own %s", bad, out, hit, err, in)
		}
	}
	if out, hit, _ := cache.Call(ctx, planted{[]byte(`{"value":2}`)}, tk, in, host.DefaultLimits); !hit || string(out) != `{"value":2}` {
		t.Fatalf("a well-formed entry: %s %v", out, hit) // the tenant's own keys: its own runs only
	}
}

func TestCorruptEntry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, _ := cache.OpenDisk(dir, 0, 0)
	tk := echo(t, module(t, engine(t), "v1"))
	in := []byte(`{"value":7}`)
	cache.Call(ctx, store, tk, in, host.DefaultLimits)
	store.Stats() // written to its pack
	packs, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	b, _ := os.ReadFile(packs[0])
	b[len(b)-2] ^= 0x20 // a flipped bit in the stored value
	os.WriteFile(packs[0], b, 0o644)
	store.Close()
	// Another process opening the store finds the entry corrupt: a miss,
	// recomputed and stored again.
	other, _ := cache.OpenDisk(dir, 0, 0)
	out, hit, err := cache.Call(ctx, other, tk, in, host.DefaultLimits)
	if err != nil || hit || string(out) != string(in) {
		t.Fatalf("a corrupt entry: out %s hit %v err %v; want a recomputed %s", out, hit, err, in)
	}
	other.Close()
	third, _ := cache.OpenDisk(dir, 0, 0)
	defer third.Close()
	if out, hit, _ := cache.Call(ctx, third, tk, in, host.DefaultLimits); !hit || string(out) != string(in) {
		t.Fatalf("the recomputed result was not stored again: %s %v", out, hit)
	}
}

func key(i int) cache.Key { return cache.Key(sha256.Sum256(fmt.Append(nil, i))) }

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store, _ := cache.OpenDisk(dir, 0, 0) // a store each, as processes have
			defer store.Close()
			for i := range 200 {
				v := []byte(strings.Repeat(string(rune('a'+w%3)), 100+i))
				if err := store.Put(ctx, key(i%10), v); err != nil {
					t.Error(err)
				}
				if got, ok, err := store.Get(ctx, key(i%10)); err != nil || !ok || len(got) < 100 {
					t.Errorf("read %d bytes, ok %v, err %v: half an entry", len(got), ok, err)
				}
			}
		}()
	}
	wg.Wait()
	store, _ := cache.OpenDisk(dir, 0, 0)
	defer store.Close()
	if st := store.Stats(); st.Entries != 10 {
		t.Fatalf("%d entries, want 10", st.Entries)
	}
	for i := range 10 {
		if v, ok, _ := store.Get(ctx, key(i)); !ok || len(v) < 100 {
			t.Fatalf("entry %d: %d bytes, ok %v", i, len(v), ok)
		}
	}
}

func TestTrim(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	value := make([]byte, 1024)
	for i := range 30 { // 30 packs of one entry each, older first
		s, _ := cache.OpenDisk(dir, 0, 0)
		s.Put(ctx, key(i), value)
		s.Close()
		packs, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
		sort.Strings(packs)
		old := time.Now().Add(time.Duration(i-30) * time.Minute)
		os.Chtimes(packs[len(packs)-1], old, old)
	}
	store, _ := cache.OpenDisk(dir, 10*(1024+32+72), time.Hour) // trims as it opens
	defer store.Close()
	if st := store.Stats(); st.Entries != 10 {
		t.Fatalf("%d entries after the trim, want 10", st.Entries)
	}
	if _, ok, _ := store.Get(ctx, key(0)); ok {
		t.Fatal("the oldest entry was kept")
	}
	if _, ok, _ := store.Get(ctx, key(29)); !ok {
		t.Fatal("the newest entry was evicted")
	}
	// Past the TTL, a pack goes at the next trim.
	packs, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range packs {
		os.Chtimes(p, old, old)
	}
	if n := store.Trim(); n != 10 {
		t.Fatalf("trimmed %d expired packs, want 10", n)
	}
	if _, ok, _ := store.Get(ctx, key(29)); ok {
		t.Fatal("an expired entry hit")
	}
}

func TestSeal(t *testing.T) {
	v := []byte(`{"a":1}`)
	if got, ok := cache.Unseal(cache.Seal(v)); !ok || string(got) != string(v) {
		t.Fatal("a sealed value did not come back")
	}
	for _, bad := range [][]byte{nil, []byte("short"), append(cache.Seal(v), 'x')} {
		if _, ok := cache.Unseal(bad); ok {
			t.Fatalf("Unseal(%q) accepted", bad)
		}
	}
}
