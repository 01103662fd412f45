package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/pipeline"
)

// TestThrottle: a concurrency key of limit 2 never lets a third call of
// the key run (the fake broker counts calls in flight), a key per
// element value limits each value alone, and a retried call waits for
// its key again.
func TestThrottle(t *testing.T) {
	xs := "[" + strings.Repeat("1,", 39) + "1]"
	cases := []struct {
		name string
		opt  pipeline.Option
		peak int64
	}{
		{"one key, limit 2", pipeline.Throttle(`"k"`, 2), 2},
		{"one key, limit 1", pipeline.Throttle(`"k"`, 1), 1},
		{"a key per value, limit 1", pipeline.Throttle(`args.x`, 1), 1}, // every x is 1: one key, "1"
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, Config{MaxParallel: 8})
			out, err, _ := l.run(context.Background(), seq().Map("m.slow", pipeline.Param("x"), c.opt), nil, in("x", xs))
			if err != nil || out != xs {
				t.Fatalf("result %s error %v", out, err)
			}
			if p := l.broker.peak.Load(); p != c.peak {
				t.Fatalf("%d calls at once, want %d", p, c.peak)
			}
		})
	}
	// Unthrottled, the same map runs wider: the check above can fail.
	l := newLab(t, Config{MaxParallel: 8})
	l.run(context.Background(), seq().Map("m.slow", pipeline.Param("x")), nil, in("x", xs))
	if p := l.broker.peak.Load(); p <= 2 {
		t.Fatalf("unthrottled, %d calls at once", p)
	}
	// A bad key fails the step, naming it.
	l = newLab(t, Config{})
	if _, err, _ := l.run(context.Background(), seq().Map("m.slow", pipeline.Param("x"), pipeline.Throttle(`string(args.x / 0)`, 1)), nil, in("x", "[1]")); err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("error %v", err)
	}
}

// TestRateBucket: a rate of 50/s lets through 50 a second, plus a burst
// of a tenth of a second's worth, over a simulated minute.
func TestRateBucket(t *testing.T) {
	l := NewLimiter()
	start := time.Now()
	taken := 0
	for ms := 0; ms <= 60_000; ms++ {
		now := start.Add(time.Duration(ms) * time.Millisecond)
		for {
			ok, wait := l.take("", 0, "r", 50, now)
			if !ok {
				if wait <= 0 || wait > 20*time.Millisecond {
					t.Fatalf("wait %v for a token of a 50/s rate", wait)
				}
				break
			}
			taken++
		}
	}
	if want := 50*60 + 5; taken < want-1 || taken > want {
		t.Fatalf("%d calls in a minute at 50/s, want %d", taken, want)
	}
}

// TestThrottleErrors: bad keys and rates are plan errors naming the key.
func TestThrottleErrors(t *testing.T) {
	l := newLab(t, Config{})
	cases := []struct {
		opt  pipeline.Option
		want string
	}{
		{pipeline.Throttle(`args.x +`, 2), "concurrency key: col 9: Syntax error"},
		{pipeline.Throttle(`args.y`, 2), `reads args.y, but m.double has no input "y"`},
		{pipeline.Throttle(`"k"`, 0), "concurrency limit 0"},
		{pipeline.RateLimit("100", ""), `rate "100": write calls per unit of time`},
		{pipeline.RateLimit("0/s", ""), `rate "0/s"`},
		{pipeline.RateLimit("10/d", ""), `rate "10/d"`},
	}
	for _, c := range cases {
		_, err := dag.PlanSequential(l.runner.Catalog(), seq().Map("m.double", pipeline.Param("x"), c.opt), in("x", "[1]"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
