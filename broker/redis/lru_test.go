package redis

import (
	"fmt"
	"testing"
)

func TestLRU(t *testing.T) {
	c := newLRU[int](3)
	for i := range 3 {
		c.put(fmt.Sprint(i), i)
	}
	c.get("0")    // 0 is now the most recent; 1 the least
	c.put("3", 3) // forgets 1
	if _, ok := c.get("1"); ok {
		t.Fatal("1 was kept")
	}
	for _, k := range []string{"0", "2", "3"} {
		if v, ok := c.get(k); !ok || fmt.Sprint(v) != k {
			t.Fatalf("%s: %v %v", k, v, ok)
		}
	}
	c.put("2", 20)
	if v, _ := c.get("2"); v != 20 || c.len() != 3 {
		t.Fatalf("update: %v, len %d", v, c.len())
	}
	c.remove("2")
	if _, ok := c.get("2"); ok || c.len() != 2 {
		t.Fatal("remove")
	}
	for i := range 1000 {
		c.put(fmt.Sprint("k", i), i)
	}
	if c.len() != 3 || len(c.items) != 3 || len(c.vals) != 3 {
		t.Fatalf("grew to %d/%d/%d", c.len(), len(c.items), len(c.vals))
	}
}
