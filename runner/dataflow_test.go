package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/cache"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// hookBroker is the fake broker with hooks: submit may refuse a job,
// result may change a job's result before the runner sees it.
type hookBroker struct {
	*fakeBroker
	submit func(*broker.Job) error
	result func(*broker.Job, *broker.Result)
}

func (b *hookBroker) Submit(job *broker.Job, done func(*broker.Job, *broker.Result)) error {
	if b.submit != nil {
		if err := b.submit(job); err != nil {
			return err
		}
	}
	return b.fakeBroker.Submit(job, func(j *broker.Job, res *broker.Result) {
		if b.result != nil {
			b.result(j, res)
		}
		done(j, res)
	})
}

// funcBroker runs each job's one call with a function, on a goroutine
// of its own.
type funcBroker func(*broker.Job) ([]byte, error)

func (f funcBroker) Workers() int { return 1 }
func (f funcBroker) Close() error { return nil }

func (f funcBroker) Submit(job *broker.Job, done func(*broker.Job, *broker.Result)) error {
	go func() {
		out, err := f(job)
		done(job, &broker.Result{Outputs: [][]byte{out}, Errs: []error{err}})
	}()
	return nil
}

// storeFunc is a result cache whose every lookup answers get; it keeps
// nothing.
type storeFunc func(cache.Key) []byte

func (s storeFunc) Get(_ context.Context, k cache.Key) ([]byte, bool, error) {
	v := s(k)
	return v, v != nil, nil
}

func (s storeFunc) Put(context.Context, cache.Key, []byte) error { return nil }

// TestDataflowNodes: a dataflow node's one call keeps everything a call
// of a step has: retries with their events, limits and the tenant's
// maxima, cancellation, throttles, the tenant's slots, the result cache,
// fuel and memory, failed-call records, and its errors as the run's.
func TestDataflowNodes(t *testing.T) {
	df := func(tasks ...string) *pipeline.Dataflow { return &pipeline.Dataflow{Tasks: tasks} }
	throttled := func(key string, tasks ...string) *pipeline.Dataflow {
		p := df(tasks...)
		for _, name := range tasks {
			p.Configure(name, pipeline.Throttle(key, 1))
		}
		return p
	}
	type run struct {
		l       *lab
		hooks   *hookBroker
		out     string
		err     error
		st      *track.RunStatus
		elapsed time.Duration
		failed  []track.FailedCall
	}
	cases := []struct {
		name   string
		cfg    Config
		p      *pipeline.Dataflow
		in     pipeline.Inputs
		hooks  hookBroker
		cancel time.Duration // cancel the run after this long (0: never)
		want   string        // the run's result
		err    string        // the run's error, exactly ("" when it succeeds)
		events []string
		calls  map[string]int
		check  func(t *testing.T, r *run)
	}{
		{name: "retried until it succeeds", p: df("m.flaky").Configure("m.flaky", pipeline.Retries(3)), want: `{"y":0}`,
			events: []string{"run_started:0", "step_started:1", "step_retried:1", "step_retried:1", "step_finished:1", "run_finished:0"},
			calls:  map[string]int{"flaky": 3},
			check: func(t *testing.T, r *run) {
				var attempts []int
				for _, e := range r.l.rec.events {
					if e.Type == track.StepRetried {
						attempts = append(attempts, e.Attempt)
						if e.Element != nil || e.Error != "m.flaky: not yet (attempt "+string(rune('0'+e.Attempt-1))+")" {
							t.Errorf("retry event %+v", e)
						}
					}
				}
				if !slices.Equal(attempts, []int{1, 2}) || r.st.Steps[0].Attempts != 3 {
					t.Errorf("retries %v, attempts %d", attempts, r.st.Steps[0].Attempts)
				}
			}},
		{name: "retries run out: the last failure is the run's", p: df("m.flaky").Configure("m.flaky", pipeline.Retries(1)),
			err:    "task m.flaky: m.flaky: not yet (attempt 1)",
			events: []string{"run_started:0", "step_started:1", "step_retried:1", "step_failed:1", "run_finished:0"},
			calls:  map[string]int{"flaky": 2},
			check: func(t *testing.T, r *run) {
				if len(r.failed) != 1 || r.failed[0].Attempts != 2 || r.failed[0].Element != -1 || r.failed[0].Step != 1 ||
					r.failed[0].Label != "m.flaky" || string(r.failed[0].Input) != `{"x":0}` || r.failed[0].Error != "m.flaky: not yet (attempt 1)" {
					t.Errorf("failed calls %+v", r.failed)
				}
				var re *RunError
				if !errors.As(r.err, &re) || re.Element != -1 || re.Step != 0 || re.Label != "m.flaky" || host.KindOf(r.err) != host.KindGuestError {
					t.Errorf("error %#v", r.err)
				}
			}},
		{name: "a bad input is never retried", p: df("m.badinput").Configure("m.badinput", pipeline.Retries(5)),
			err:    "task m.badinput: m.badinput: bad input: refused",
			events: []string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"},
			calls:  map[string]int{"badinput": 1}},
		{name: "a node's timeout and limits, clamped by the tenant",
			cfg: Config{Policy: &policy.Tenant{Timeout: time.Minute, Memory: 1 << 20}, Limits: pipeline.Limits{Memory: 1 << 30}},
			p: df("m.five", "m.dash").Configure("m.five", pipeline.Timeout(3*time.Second)).
				Configure("m.dash", pipeline.Timeout(time.Hour), pipeline.WithLimits(pipeline.Limits{Fuel: 777})),
			in: in("x", "1", "text", `"a"`), want: `{"y":5,"sep":"+"}`,
			check: func(t *testing.T, r *run) {
				var got []string
				for _, lim := range r.l.broker.limits {
					got = append(got, lim.Timeout.String()+"/"+
						map[bool]string{true: "1MiB", false: "?"}[lim.Memory == 1<<20]+"/"+map[bool]string{true: "fuel", false: "-"}[lim.Fuel == 777])
				}
				slices.Sort(got)
				if !slices.Equal(got, []string{"1m0s/1MiB/fuel", "3s/1MiB/-"}) {
					t.Errorf("limits %v", got)
				}
			}},
		{name: "a submit the broker refuses fails the node", p: df("m.five"), in: in("x", "1"),
			hooks:  hookBroker{submit: func(*broker.Job) error { return errors.New("queue full") }},
			err:    "task m.five: queue full",
			events: []string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"}},
		{name: "a failing node cancels its sibling, whose cancellation is no failure of its own",
			p: df("m.split", "m.upper", "m.explode"), in: in("text", `"a b"`),
			err: "task m.explode: m.explode: the node failed",
			check: func(t *testing.T, r *run) {
				for _, e := range r.l.rec.events {
					if e.Type == track.StepFailed && e.Name != "m.explode" {
						t.Errorf("a step_failed event for %s", e.Name)
					}
				}
				if r.st.Status != track.Failed {
					t.Errorf("status %s", r.st.Status)
				}
			}},
		{name: "cancelled while a retry waits", cfg: Config{RetryBase: 200 * time.Millisecond, RetryMax: 200 * time.Millisecond},
			p: df("m.flaky").Configure("m.flaky", pipeline.Retries(5)), cancel: 30 * time.Millisecond,
			err: "task : context canceled",
			check: func(t *testing.T, r *run) {
				if r.st.Status != track.Cancelled || r.l.broker.called("flaky") != 1 {
					t.Errorf("status %s, %d calls", r.st.Status, r.l.broker.called("flaky"))
				}
				for _, e := range r.l.rec.events {
					if e.Type == track.StepFailed {
						t.Errorf("a cancelled node failed: %+v", e)
					}
				}
			}},
		{name: "a concurrency key holds its nodes to one at a time", cfg: Config{MaxParallel: 8},
			p: throttled(`"k"`, "m.slow", "m.dash", "m.split", "m.upper"), in: in("text", `"a"`), want: `{"y":0,"sep":"+","loud":"A"}`,
			check: func(t *testing.T, r *run) {
				if p := r.l.broker.peak.Load(); p != 1 {
					t.Errorf("%d nodes at once", p)
				}
			}},
		{name: "a rate holds its nodes back", p: df("m.slow", "m.dash", "m.split").
			Configure("m.slow", pipeline.RateLimit("20/s", `"r"`)).Configure("m.dash", pipeline.RateLimit("20/s", `"r"`)).
			Configure("m.split", pipeline.RateLimit("20/s", `"r"`)),
			in: in("text", `"a"`, "x", "3"), want: `{"y":3,"sep":"+","words":["a"]}`,
			check: func(t *testing.T, r *run) {
				// A burst of 2 (a tenth of a second's worth, at least one), then 20 a second.
				if r.elapsed < 30*time.Millisecond {
					t.Errorf("3 calls at 20/s took %v", r.elapsed)
				}
			}},
		{name: "a bad concurrency key fails the node, naming it", p: throttled(`string(args.x / 0)`, "m.slow"), in: in("x", "1"),
			err:    `task m.slow: "string(args.x / 0)": division by zero`,
			events: []string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"}, calls: map[string]int{"slow": 0}},
		{name: "a node's call state serves the nodes after it, throttled and retried", cfg: Config{MaxParallel: 8},
			p:  throttled(`"k"`, "m.split", "m.count", "m.upper", "m.report", "m.flaky").Configure("m.flaky", pipeline.Retries(3), pipeline.Throttle(`"k"`, 1)),
			in: in("text", `"a b"`), want: `{"report":"2-A B","y":0}`,
			check: func(t *testing.T, r *run) {
				if p := r.l.broker.peak.Load(); p != 1 || r.l.broker.called("flaky") != 3 {
					t.Errorf("%d nodes at once, %d calls of flaky", p, r.l.broker.called("flaky"))
				}
			}},
		{name: "the tenant's slots bound its nodes", cfg: Config{Policy: &policy.Tenant{MaxConcurrent: 1}},
			p: df("m.slow", "m.dash", "m.split", "m.upper"), in: in("text", `"a"`), want: `{"y":0,"sep":"+","loud":"A"}`,
			check: func(t *testing.T, r *run) {
				if p := r.l.broker.peak.Load(); p != 1 {
					t.Errorf("%d nodes at once", p)
				}
			}},
		{name: "the cache serves every node", cfg: Config{Limits: pipeline.Limits{Cache: policy.CacheOn},
			Cache: storeFunc(func(cache.Key) []byte { return []byte(`["w"]`) })},
			p: df("m.split", "m.upper"), in: in("text", `"a"`), want: `{"loud":["w"]}`,
			events: []string{"run_started:0", "step_started:1", "step_finished:1", "step_started:2", "step_finished:2", "run_finished:0"},
			calls:  map[string]int{"split": 0, "upper": 0},
			check: func(t *testing.T, r *run) {
				for _, s := range r.st.Steps {
					if s.Cached != 1 || s.Status != track.Succeeded {
						t.Errorf("step %+v", s)
					}
				}
			}},
		{name: "a miss runs with its lookup", cfg: Config{Limits: pipeline.Limits{Cache: policy.CacheOn},
			Cache: storeFunc(func(cache.Key) []byte { return nil })},
			p: df("m.split"), in: in("text", `"a b"`), want: `{"words":["a","b"]}`,
			hooks: hookBroker{submit: func(j *broker.Job) error {
				if j.Cache == nil || !j.Cache.Cached(0) {
					return errors.New("no lookup")
				}
				return nil
			}},
			calls: map[string]int{"split": 1},
			check: func(t *testing.T, r *run) {
				if r.st.Steps[0].Cached != 0 {
					t.Errorf("step %+v", r.st.Steps[0])
				}
			}},
		{name: "fuel adds up over the attempts, memory is the peak", p: df("m.flaky").Configure("m.flaky", pipeline.Retries(2)), want: `{"y":0}`,
			hooks: hookBroker{result: func(j *broker.Job, res *broker.Result) {
				res.Fuel, res.PeakMemory = 100, uint64(1000*(j.Attempt+1))
			}},
			check: func(t *testing.T, r *run) {
				if s := r.st.Steps[0]; s.Fuel != 300 || s.PeakMemory != 3000 {
					t.Errorf("fuel %d, peak %d", s.Fuel, s.PeakMemory)
				}
			}},
		{name: "a job carries the run, its tenant and priority, and the node's label",
			cfg: Config{Tenant: "acme", Priority: 4}, p: df("m.five"), in: in("x", "1"), want: `{"y":5}`,
			hooks: hookBroker{submit: func(j *broker.Job) error {
				if j.RunID == "" || j.Tenant != "acme" || j.Priority != 4 || j.Step != "m.five" || j.Index != 0 || j.Attempt != 0 ||
					len(j.Inputs) != 1 || string(j.Inputs[0]) != `{"x":1}` || j.Cache != nil {
					return errors.New("a bad job")
				}
				return nil
			}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &run{}
			var mu sync.Mutex
			c.cfg.OnFailedCall = func(fc track.FailedCall) {
				mu.Lock()
				r.failed = append(r.failed, fc)
				mu.Unlock()
			}
			r.l = newLab(t, c.cfg)
			hooks := c.hooks
			hooks.fakeBroker = r.l.broker
			r.hooks = &hooks
			cfg := c.cfg
			cfg.Broker, cfg.Modules, cfg.Observer, cfg.OnChildResult = r.hooks, r.l.runner.modules, r.l.runner.obs, r.l.memory.SetResult
			if cfg.RetryBase == 0 {
				cfg.RetryBase, cfg.RetryMax = time.Millisecond, 4*time.Millisecond
			}
			r.l.runner = New(cfg)
			ctx := context.Background()
			if c.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(c.cancel, cancel)
			}
			start := time.Now()
			r.out, r.err, r.st = r.l.run(ctx, nil, c.p, c.in)
			r.elapsed = time.Since(start)
			if c.err != "" {
				if r.err == nil || r.err.Error() != c.err {
					t.Fatalf("error %v, want %q", r.err, c.err)
				}
				if r.st.Error != r.err.Error() {
					t.Fatalf("status error %q, want the run's", r.st.Error)
				}
			} else if r.err != nil || r.out != c.want {
				t.Fatalf("result %s error %v, want %s", r.out, r.err, c.want)
			} else if r.st.Status != track.Succeeded {
				t.Fatalf("status %s", r.st.Status)
			}
			if c.events != nil && !slices.Equal(r.l.rec.types(), c.events) {
				t.Fatalf("events %v, want %v", r.l.rec.types(), c.events)
			}
			for task, n := range c.calls {
				if got := r.l.broker.called(task); got != n {
					t.Fatalf("%s called %d times, want %d", task, got, n)
				}
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// TestDataflowOutputs: a node of several outputs hands each to its
// consumers, and the run's result holds the requested ones in order.
func TestDataflowOutputs(t *testing.T) {
	const m2 = `{"abi": 1, "name": "m", "tasks": [
  {"name": "pair", "inputs": [{"name": "x"}], "outputs": ["a", "b"]},
  {"name": "join", "inputs": [{"name": "b"}, {"name": "a"}], "outputs": ["ab"]}
]}`
	mod, err := host.Declared([]byte(m2))
	if err != nil {
		t.Fatal(err)
	}
	br := funcBroker(func(j *broker.Job) ([]byte, error) {
		var in map[string]json.RawMessage
		json.Unmarshal(j.Inputs[0], &in)
		if j.Task.Spec.Name == "pair" {
			return []byte(`{"b":[` + string(in["x"]) + `],"a":"` + string(in["x"]) + `"}`), nil
		}
		return []byte(`[` + string(in["a"]) + `,` + string(in["b"]) + `]`), nil
	})
	r := New(Config{Broker: br, Modules: map[string]*host.Module{"m": mod}})
	for _, c := range []struct {
		outputs []string
		want    string
	}{
		{[]string{"ab", "b", "a"}, `{"ab":["7",[7]],"b":[7],"a":"7"}`},
		{[]string{"a"}, `{"a":"7"}`},
	} {
		out, err := r.RunDataflow(context.Background(), &pipeline.Dataflow{Tasks: []string{"m.*"}, Outputs: c.outputs}, in("x", "7"))
		if err != nil || string(out.Value) != c.want {
			t.Fatalf("outputs %v: result %s, error %v; want %s", c.outputs, out, err, c.want)
		}
	}
}

// TestDataflowRunsAtOnce: runs of one runner at once, under the tenant's
// slots and a shared concurrency key, each get their own result.
func TestDataflowRunsAtOnce(t *testing.T) {
	l := newLab(t, Config{Policy: &policy.Tenant{MaxConcurrent: 3}})
	p := (&pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper", "m.report", "m.flaky"}}).
		Configure("m.upper", pipeline.Throttle(`"k"`, 2)).Configure("m.flaky", pipeline.Retries(3), pipeline.Throttle(`"k"`, 2))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := strings.Repeat("w ", i+1)
			out, err, _ := l.run(context.Background(), nil, p, in("text", `"`+text+`"`))
			want := fmt.Sprintf(`{"report":"%d-%s","y":0}`, i+1, strings.TrimSpace(strings.ToUpper(text)))
			if err != nil || out != want {
				t.Errorf("run %d: result %s, error %v; want %s", i, out, err, want)
			}
		}()
	}
	wg.Wait()
	if p := l.broker.peak.Load(); p > 3 {
		t.Fatalf("%d calls at once; the tenant's max_concurrent is 3", p)
	}
}
