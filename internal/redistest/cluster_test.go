package redistest

import (
	"context"
	"testing"
)

// TestCluster: three masters with a replica each, keys spread over them;
// a master killed is replaced by its replica, and its keys stay.
func TestCluster(t *testing.T) {
	c := StartCluster(t, 3, 1)
	ctx := context.Background()
	cc := c.Client()
	masters := map[string]bool{}
	for _, k := range []string{"{a}x", "{b}x", "{c}x", "{d}x", "{e}x", "{f}x"} {
		if err := cc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		masters[c.MasterOf(k).Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("six tags on %d master(s)", len(masters))
	}
	m := c.MasterOf("{a}x")
	mc, err := cc.MasterForKey(ctx, "{a}x")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 { // the write reached the replica
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}
	m.Stop()
	c.WaitHealthy()
	if n := c.MasterOf("{a}x"); n == m {
		t.Fatal("no replica took over")
	}
	cc.ReloadState(ctx) // the client learns the new master
	if v, err := cc.Get(ctx, "{a}x").Result(); err != nil || v != "v" {
		t.Fatalf("after the failover: %q, %v", v, err)
	}
}
