package redistest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of real redis-server processes owned by a
// test: masters, each with its replicas, on loopback ports.
type Cluster struct {
	t testing.TB
	// Nodes are the servers, the masters first (as redis-cli --cluster
	// create assigned them; a failover may change who is master).
	Nodes []*Server
}

// StartCluster starts masters × (1 + replicas) servers with cluster
// mode on, joins them with `redis-cli --cluster create`, and waits until
// every node sees every slot served. Extra arguments go to every server.
// The servers are stopped when the test ends.
func StartCluster(t testing.TB, masters, replicas int, extra ...string) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found (install the Debian package redis-server): %v", err)
	}
	c := &Cluster{t: t}
	var addrs []string
	for range masters * (1 + replicas) {
		port := freePort(t)
		s := &Server{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: t.TempDir()}
		s.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", s.dir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			"--cluster-replica-validity-factor", "0",
			"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no",
			"--maxmemory-policy", "noeviction"}, extra...)
		s.start()
		t.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy()
	return c
}

// URL is the cluster's redis+cluster:// URL, naming every node.
func (c *Cluster) URL() string {
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.Addr)
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client() *redis.ClusterClient {
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.Addr)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	c.t.Cleanup(func() { cc.Close() })
	return cc
}

// WaitHealthy waits until every running node says the cluster is ok,
// with every slot served by a running master, and every replica whose
// master runs follows it.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	ctx := context.Background()
	running := map[string]bool{}
	for _, s := range c.Nodes {
		running[s.Addr] = s.cmd != nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, s := range c.Nodes {
			if s.cmd == nil {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: s.Addr})
			info, err := cl.ClusterInfo(ctx).Result()
			var ranges []redis.ClusterSlot
			if err == nil {
				ranges, err = cl.ClusterSlots(ctx).Result()
			}
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok = false
				break
			}
			for _, r := range ranges {
				if len(r.Nodes) == 0 || !running[r.Nodes[0].Addr] {
					ok = false
				}
			}
			// A replica counts once it follows its master: a failover
			// before that would lose everything.
			cl = redis.NewClient(&redis.Options{Addr: s.Addr})
			role, err := cl.Do(ctx, "ROLE").Slice()
			cl.Close()
			if err != nil || (len(role) >= 4 && role[0] == "slave" && role[3] != "connected") {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster did not become healthy:\n%s", c.nodesView())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MasterOf is the node that serves key's slot, as a running node sees it.
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	ctx := context.Background()
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr})
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		var ranges []redis.ClusterSlot
		if err == nil {
			ranges, err = cl.ClusterSlots(ctx).Result()
		}
		cl.Close()
		if err != nil {
			continue
		}
		for _, r := range ranges {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				for _, n := range c.Nodes {
					if n.Addr == r.Nodes[0].Addr {
						return n
					}
				}
			}
		}
	}
	c.t.Fatalf("no node serves the slot of %q", key)
	return nil
}

// nodesView is CLUSTER NODES as the first running node sees it.
func (c *Cluster) nodesView() string {
	for _, s := range c.Nodes {
		if s.cmd != nil {
			cl := redis.NewClient(&redis.Options{Addr: s.Addr})
			defer cl.Close()
			v, err := cl.ClusterNodes(context.Background()).Result()
			if err != nil {
				return err.Error()
			}
			return v
		}
	}
	return "no node is running"
}

// MoveSlot moves the slot of key, with its keys, to the master to, as
// `redis-cli --cluster reshard` does: the target imports it, the source
// migrates it, its keys move in batches, and every master learns the
// slot's new owner.
func (c *Cluster) MoveSlot(key string, to *Server) {
	c.t.Helper()
	ctx := context.Background()
	from := c.MasterOf(key)
	if from == to {
		c.t.Fatalf("the slot of %q is on %s already", key, to.Addr)
	}
	src := redis.NewClient(&redis.Options{Addr: from.Addr})
	defer src.Close()
	dst := redis.NewClient(&redis.Options{Addr: to.Addr})
	defer dst.Close()
	slot, err := src.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	srcID, err1 := src.Do(ctx, "CLUSTER", "MYID").Text()
	dstID, err2 := dst.Do(ctx, "CLUSTER", "MYID").Text()
	if err1 != nil || err2 != nil {
		c.t.Fatal(err1, err2)
	}
	must := func(err error) {
		if err != nil {
			c.t.Fatalf("move slot %d: %v", slot, err)
		}
	}
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	host, port, _ := net.SplitHostPort(to.Addr)
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src.Do(ctx, args...).Err())
	}
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr})
		err := cl.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err()
		cl.Close()
		if err != nil && !strings.Contains(err.Error(), "only with masters") {
			must(err) // a replica learns it from its master
		}
	}
}
