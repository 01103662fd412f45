package runner

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/policy"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		base, max time.Duration
		attempt   int
		want      time.Duration // before jitter
	}{
		{100 * time.Millisecond, 10 * time.Second, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 3, 400 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 8, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, 100, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, math.MaxInt, 10 * time.Second},
		{time.Nanosecond, policy.MaxDuration, 30, 1 << 29},
		{time.Nanosecond, policy.MaxDuration, 64, policy.MaxDuration}, // 2^63 ns overflows
		{policy.MaxDuration, policy.MaxDuration, 100, policy.MaxDuration},
		{time.Hour, time.Second, 1, time.Second},
	}
	for _, c := range cases {
		want := c.want
		got := backoff(c.base, c.max, c.attempt)
		if got < want/2 || got > want/2+want {
			t.Errorf("backoff(%v, %v, %d) = %v, want %v ±50%%", c.base, c.max, c.attempt, got, want)
		}
	}
}

func TestBatches(t *testing.T) {
	a, b := &host.Task{}, &host.Task{}
	calls := func(tasks ...*host.Task) []Call {
		out := make([]Call, len(tasks))
		for i, t := range tasks {
			out[i] = Call{Task: t}
		}
		return out
	}
	many := make([]*host.Task, 1000)
	for i := range many {
		many[i] = a
	}
	cases := []struct {
		name        string
		calls       []Call
		maxParallel int
		want        []int // the batches' lengths
	}{
		{"none", nil, 4, nil},
		{"one", calls(a), 4, []int{1}},
		{"tasks apart", calls(a, a, a, b, b, b, b, b), 1, []int{2, 1, 2, 2, 1}},
		{"slots get several", calls(many...), 10, repeat(25, 40)},
		{"at most maxBatch", calls(many...), 1, append(repeat(64, 15), 40)},
		{"more slots than calls", calls(many...), 1 << 20, repeat(1, 1000)},
		// 4·2^62 overflows to 0: a division by zero.
		{"slots overflow", calls(a, a, a), 1 << 62, []int{1, 1, 1}},
		{"most slots", calls(a, a), math.MaxInt, []int{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Batches(c.calls, c.maxParallel, maxBatch)
			var lens []int
			next := 0
			for _, bt := range got {
				lens = append(lens, len(bt))
				for _, i := range bt {
					if i != next {
						t.Fatalf("batches %v skip or repeat call %d", got, next)
					}
					next++
				}
			}
			if next != len(c.calls) || !slices.Equal(lens, c.want) {
				t.Fatalf("batch lengths %v, want %v", lens, c.want)
			}
		})
	}
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
