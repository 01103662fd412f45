package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowhost/flowhost/broker"
	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// The execution model, tested on a fake executor: a module declared by its
// manifest alone (host.Declared) whose tasks are Go functions run by
// fakeBroker. No WebAssembly runs here.

const manifest = `{"abi": 1, "name": "m", "tasks": [
  {"name": "double", "inputs": [{"name": "x"}], "outputs": ["y"]},
  {"name": "even", "inputs": [{"name": "x"}], "outputs": ["keep"]},
  {"name": "five", "inputs": [{"name": "x"}], "outputs": ["y"]},
  {"name": "sum", "inputs": [{"name": "values"}], "outputs": ["total"]},
  {"name": "fail", "inputs": [{"name": "x", "default": 0}], "outputs": ["y"]},
  {"name": "badinput", "inputs": [{"name": "x", "default": 0}], "outputs": ["y"]},
  {"name": "flaky", "inputs": [{"name": "x", "default": 0}], "outputs": ["y"]},
  {"name": "slow", "inputs": [{"name": "x", "default": 0}], "outputs": ["y"]},
  {"name": "split", "inputs": [{"name": "text"}], "outputs": ["words"]},
  {"name": "count", "inputs": [{"name": "words"}], "outputs": ["n"]},
  {"name": "upper", "inputs": [{"name": "words"}], "outputs": ["loud"]},
  {"name": "report", "inputs": [{"name": "n"}, {"name": "loud"}, {"name": "sep", "default": "-"}], "outputs": ["report"]},
  {"name": "unused", "inputs": [{"name": "text"}], "outputs": ["junk"]},
  {"name": "explode", "inputs": [{"name": "words"}], "outputs": ["boom"]},
  {"name": "dash", "inputs": [{"name": "text"}], "outputs": ["sep"]}
]}`

func guestErr(task, format string, args ...any) error {
	return &host.TaskError{Kind: host.KindGuestError, Module: "m", Task: task, Msg: fmt.Sprintf(format, args...)}
}

// tasks are the fake module's tasks: input object, attempt → output.
var tasks = map[string]func(ctx context.Context, in map[string]json.RawMessage, attempt int) ([]byte, error){
	"double": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		n, _ := strconv.Atoi(string(in["x"]))
		return []byte(strconv.Itoa(2 * n)), nil
	},
	"even": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		n, _ := strconv.Atoi(string(in["x"]))
		return []byte(strconv.FormatBool(n%2 == 0)), nil
	},
	"five": func(context.Context, map[string]json.RawMessage, int) ([]byte, error) { return []byte("5"), nil },
	"sum": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		var vs []int
		if err := json.Unmarshal(in["values"], &vs); err != nil {
			return nil, guestErr("sum", "values: %v", err)
		}
		t := 0
		for _, v := range vs {
			t += v
		}
		return []byte(strconv.Itoa(t)), nil
	},
	"fail": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		if string(in["x"]) == "2" || string(in["x"]) == "0" {
			return nil, guestErr("fail", "boom %s", in["x"])
		}
		return in["x"], nil
	},
	"badinput": func(context.Context, map[string]json.RawMessage, int) ([]byte, error) {
		return nil, &host.TaskError{Kind: host.KindBadInput, Module: "m", Task: "badinput", Msg: "refused"}
	},
	"flaky": func(_ context.Context, in map[string]json.RawMessage, attempt int) ([]byte, error) {
		if attempt < 2 {
			return nil, guestErr("flaky", "not yet (attempt %d)", attempt)
		}
		return in["x"], nil
	},
	"slow": func(ctx context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, &host.TaskError{Kind: host.KindCanceled, Module: "m", Task: "slow", Msg: "canceled"}
		case <-time.After(2 * time.Millisecond):
			return in["x"], nil
		}
	},
	"split": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		var s string
		json.Unmarshal(in["text"], &s)
		b, _ := json.Marshal(strings.Fields(s)) // one output: the value itself
		return b, nil
	},
	"count": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		var ws []string
		json.Unmarshal(in["words"], &ws)
		return []byte(strconv.Itoa(len(ws))), nil
	},
	"upper": func(ctx context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		var ws []string
		json.Unmarshal(in["words"], &ws)
		select { // a sibling still running when another node fails
		case <-ctx.Done():
			return nil, &host.TaskError{Kind: host.KindCanceled, Module: "m", Task: "upper", Msg: "canceled"}
		case <-time.After(time.Millisecond):
		}
		b, _ := json.Marshal(strings.ToUpper(strings.Join(ws, " ")))
		return b, nil
	},
	"report": func(_ context.Context, in map[string]json.RawMessage, _ int) ([]byte, error) {
		var loud, sep string
		json.Unmarshal(in["loud"], &loud)
		json.Unmarshal(in["sep"], &sep)
		b, _ := json.Marshal(fmt.Sprintf("%s%s%s", in["n"], sep, loud))
		return b, nil
	},
	"unused": func(context.Context, map[string]json.RawMessage, int) ([]byte, error) {
		panic("a pruned task ran")
	},
	"dash": func(context.Context, map[string]json.RawMessage, int) ([]byte, error) { return []byte(`"+"`), nil },
	"explode": func(context.Context, map[string]json.RawMessage, int) ([]byte, error) {
		return nil, guestErr("explode", "the node failed")
	},
}

// fakeBroker runs each job on a goroutine of its own, calling the fake
// tasks, as broker/inproc runs them on host tasks: calls not started when
// the run's context ends fail as canceled.
type fakeBroker struct {
	inflight, peak atomic.Int64
	mu             sync.Mutex
	calls          map[string]int
	limits         []host.Limits
}

func newFake() *fakeBroker { return &fakeBroker{calls: map[string]int{}} }

func (b *fakeBroker) Workers() int { return 4 }
func (b *fakeBroker) Close() error { return nil }

func (b *fakeBroker) Submit(job *broker.Job, done func(*broker.Job, *broker.Result)) error {
	b.mu.Lock()
	b.limits = append(b.limits, job.Limits)
	b.mu.Unlock()
	go func() {
		n := b.inflight.Add(1)
		for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
		}
		res := &broker.Result{Outputs: make([][]byte, len(job.Inputs)), Errs: make([]error, len(job.Inputs))}
		name := job.Task.Spec.Name
		for i, in := range job.Inputs {
			if job.Ctx.Err() != nil {
				res.Errs[i] = &host.TaskError{Kind: host.KindCanceled, Module: "m", Task: name, Msg: "the run was canceled before the call started"}
				continue
			}
			var values map[string]json.RawMessage
			if err := json.Unmarshal(in, &values); err != nil {
				res.Errs[i] = err
				continue
			}
			b.mu.Lock()
			b.calls[name]++
			b.mu.Unlock()
			res.Outputs[i], res.Errs[i] = tasks[name](job.Ctx, values, job.Attempt)
		}
		b.inflight.Add(-1)
		done(job, res)
	}()
	return nil
}

func (b *fakeBroker) called(task string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[task]
}

// recorder keeps a run's events.
type recorder struct {
	mu     sync.Mutex
	events []track.Event
}

func (r *recorder) Event(e track.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// types are the recorded event types, without the sampled step_progress.
func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type != track.StepProgress {
			out = append(out, fmt.Sprintf("%s:%d", e.Type, e.Step))
		}
	}
	return out
}

type lab struct {
	t      *testing.T
	broker *fakeBroker
	rec    *recorder
	memory *track.Memory
	runner *Runner
}

func newLab(t *testing.T, cfg Config) *lab {
	t.Helper()
	mod, err := host.Declared([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, broker: newFake(), rec: &recorder{}, memory: track.NewMemory(0)}
	cfg.Broker, cfg.Modules, cfg.Observer, cfg.OnChildResult = l.broker, map[string]*host.Module{"m": mod}, track.Observers(l.rec, l.memory), l.memory.SetResult
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = time.Millisecond, 4*time.Millisecond
	}
	l.runner = New(cfg)
	return l
}

// run plans and runs a pipeline, returning its result, error and status.
func (l *lab) run(ctx context.Context, seq *pipeline.Sequential, df *pipeline.Dataflow, in pipeline.Inputs) (string, error, *track.RunStatus) {
	l.t.Helper()
	plan, err := dag.Build(l.runner.Catalog(), seq, df, in)
	if err != nil {
		l.t.Fatal(err)
	}
	id := NewRunID()
	out, err := l.runner.Exec(ctx, id, plan)
	st, ok := l.memory.Run(id)
	if !ok {
		l.t.Fatalf("run %s has no status", id)
	}
	return string(out), err, st
}

func in(kv ...string) pipeline.Inputs {
	out := pipeline.Inputs{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = json.RawMessage(kv[i+1])
	}
	return out
}

func seq() *pipeline.Sequential { return pipeline.New(nil) }

func TestSequentialSteps(t *testing.T) {
	many := make([]string, 1000)
	want := make([]string, 1000)
	for i := range many {
		many[i], want[i] = strconv.Itoa(i), strconv.Itoa(2*i)
	}
	x := pipeline.Param("x")
	cases := []struct {
		name   string
		p      *pipeline.Sequential
		inputs pipeline.Inputs
		want   string
		err    string // a substring of the run's error
		events []string
	}{
		{"map keeps order", seq().Map("m.double", x), in("x", "["+strings.Join(many, ",")+"]"), "[" + strings.Join(want, ",") + "]", "", nil},
		{"call then group", seq().CallNext("m.sum", pipeline.Param("values")).Group([]string{"m.double", "m.double"}, x), in("values", "[1,2,3]"), "[12,12]", "",
			[]string{"run_started:0", "step_started:1", "step_finished:1", "step_started:2", "step_finished:2", "run_finished:0"}},
		{"filter", seq().Filter("m.even", x).Map("m.double", x), in("x", "[1,2,3,4]"), "[4,8]", "", nil},
		{"empty map", seq().Map("m.double", x), in("x", "[]"), "[]", "",
			[]string{"run_started:0", "step_started:1", "step_finished:1", "run_finished:0"}},
		{"empty map then sum", seq().Map("m.double", x).CallNext("m.sum", pipeline.Param("values")), in("x", "[]"), "0", "", nil},
		{"skip_errors drops the failed elements", seq().Map("m.fail", x, pipeline.SkipErrors()), in("x", "[1,2,3]"), "[1,3]", "", nil},
		{"a filter that answers 5", seq().Filter("m.five", x), in("x", "[1]"), "", "step 1 (filter m.five), element 0: a filter task must return true or false, not 5",
			[]string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"}},
		{"map over a non-array", seq().Map("m.double", x), in("x", `{"a":1}`), "", `step 1 (map m.double): map the flow input "x" must be a JSON array, not {"a":1}`,
			[]string{"run_started:0", "step_failed:1", "run_finished:0"}},
		{"a failing call names no element", seq().CallNext("m.fail", x), in("x", "2"), "", "step 1 (call m.fail): m.fail: boom 2", nil},
		{"a failing element is named", seq().Map("m.fail", x), in("x", "[1,2,3]"), "", "step 1 (map m.fail), element 1: m.fail: boom 2",
			[]string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"}},
		{"the failed step stops the run", seq().CallNext("m.fail", x).Map("m.double", x), in("x", "0"), "", "step 1 (call m.fail)",
			[]string{"run_started:0", "step_started:1", "step_failed:1", "run_finished:0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, Config{})
			out, err, st := l.run(context.Background(), c.p, nil, c.inputs)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				if st.Status != track.Failed || st.Error != err.Error() {
					t.Fatalf("status %s error %q, want failed with the run's error", st.Status, st.Error)
				}
			} else if err != nil || out != c.want {
				t.Fatalf("result %s error %v, want %s", out, err, c.want)
			} else if st.Status != track.Succeeded {
				t.Fatalf("status %s", st.Status)
			}
			if c.events != nil && !slices.Equal(l.rec.types(), c.events) {
				t.Fatalf("events %v, want %v", l.rec.types(), c.events)
			}
		})
	}
}

func TestSkipErrorsCounts(t *testing.T) {
	l := newLab(t, Config{})
	out, err, st := l.run(context.Background(), seq().Map("m.fail", pipeline.Param("x"), pipeline.SkipErrors()), nil, in("x", "[1,2,3,2]"))
	if err != nil || out != "[1,3]" {
		t.Fatalf("result %s error %v", out, err)
	}
	s := st.Steps[0]
	if s.Status != track.Succeeded || s.Failed != 2 || s.Done == nil || *s.Done != 4 || *s.Total != 4 {
		t.Fatalf("step status %+v", s)
	}
}

func TestRetries(t *testing.T) {
	x := pipeline.Param("x")
	cases := []struct {
		name     string
		p        *pipeline.Sequential
		wantErr  string
		attempts int // of the step, in its status
		retried  int // step_retried events
		calls    int
	}{
		{"fails twice, then succeeds", seq().CallNext("m.flaky", x, pipeline.Retries(3)), "", 3, 2, 3},
		{"fails twice, one retry is not enough", seq().CallNext("m.flaky", x, pipeline.Retries(1)), "not yet (attempt 1)", 2, 1, 2},
		{"always fails: every retry, then the last error", seq().CallNext("m.fail", x, pipeline.Retries(4)), "boom 2", 5, 4, 5},
		{"a bad input is never retried", seq().CallNext("m.badinput", x, pipeline.Retries(5)), "refused", 1, 0, 1},
		{"map elements retried alone", seq().Map("m.flaky", x, pipeline.Retries(2)), "", 1 + 2*3, 6, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, Config{})
			input := in("x", "2")
			if c.p.Steps[0].Kind == pipeline.Map {
				input = in("x", "[1,2,3]")
			}
			_, err, st := l.run(context.Background(), c.p, nil, input)
			if (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
			retried := 0
			for _, e := range l.rec.events {
				if e.Type == track.StepRetried {
					retried++
					if e.Attempt < 1 || e.Error == "" {
						t.Fatalf("retry event without attempt or error: %+v", e)
					}
				}
			}
			task := c.p.Steps[0].Tasks[0][2:]
			if st.Steps[0].Attempts != c.attempts || retried != c.retried || l.broker.called(task) != c.calls {
				t.Fatalf("attempts %d, retried %d, calls %d; want %d, %d, %d", st.Steps[0].Attempts, retried, l.broker.called(task), c.attempts, c.retried, c.calls)
			}
		})
	}
}

func TestRetryBackoffWithinBounds(t *testing.T) {
	// Base 20 ms, cap 40 ms, ±50 % jitter: retries 1 and 2 wait 10–30 ms
	// and 20–60 ms, 30–90 ms in all.
	l := newLab(t, Config{RetryBase: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	start := time.Now()
	_, err, _ := l.run(context.Background(), seq().CallNext("m.flaky", pipeline.Param("x"), pipeline.Retries(2)), nil, in("x", "1"))
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < 30*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("two retries took %v: want at least 30 ms of backoff", elapsed)
	}
}

// TestErrorPrecedence: the run reports the failure of the task that
// failed, never the cancellation of its siblings, whatever the timing.
func TestErrorPrecedence(t *testing.T) {
	elems := make([]string, 64)
	for i := range elems {
		elems[i] = "1"
	}
	elems[7] = "2" // fails at once; the others take 2 ms and see the cancel
	l := newLab(t, Config{})
	for i := range 100 {
		_, err, st := l.run(context.Background(), seq().Map("m.fail", pipeline.Param("x"), pipeline.MaxParallel(8)), nil, in("x", "["+strings.Join(elems, ",")+"]"))
		var re *RunError
		if !errors.As(err, &re) || re.Element != 7 || !strings.Contains(err.Error(), "boom 2") {
			t.Fatalf("run %d: error %v, want element 7's boom", i, err)
		}
		if st.Steps[0].Status != track.Failed || st.Steps[0].Error != err.Error() {
			t.Fatalf("run %d: step status %+v", i, st.Steps[0])
		}
	}
	// Dataflow: a node fails while a sibling runs.
	df := &pipeline.Dataflow{Tasks: []string{"m.split", "m.upper", "m.explode"}, Outputs: []string{"loud", "boom"}}
	for i := range 100 {
		_, err, _ := l.run(context.Background(), nil, df, in("text", `"a b"`))
		if err == nil || err.Error() != "task m.explode: m.explode: the node failed" {
			t.Fatalf("run %d: error %v, want the explode node's", i, err)
		}
	}
}

func TestCancelDuringMap(t *testing.T) {
	l := newLab(t, Config{})
	elems := strings.Repeat("1,", 999) + "1"
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err, st := l.run(ctx, seq().Map("m.slow", pipeline.Param("x"), pipeline.MaxParallel(2)), nil, in("x", "["+elems+"]"))
	if err == nil || !errors.Is(err, context.Canceled) && host.KindOf(err) != host.KindCanceled {
		t.Fatalf("error %v, want canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a canceled run took %v to end", d)
	}
	if st.Status != track.Cancelled {
		t.Fatalf("status %s, want cancelled", st.Status)
	}
	if n := l.broker.called("slow"); n >= 1000 {
		t.Fatalf("every call ran (%d) after the cancel", n)
	}
}

func TestDataflow(t *testing.T) {
	l := newLab(t, Config{})
	// A diamond: split → count, upper → report; unused is pruned.
	df := &pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper", "m.report", "m.unused"}, Outputs: []string{"report"}}
	out, err, st := l.run(context.Background(), nil, df, in("text", `"a b c"`))
	if err != nil || out != `{"report":"3-A B C"}` {
		t.Fatalf("result %s error %v", out, err)
	}
	if l.broker.called("unused") != 0 || l.broker.called("split") != 1 {
		t.Fatalf("calls %v", l.broker.calls)
	}
	if len(st.Steps) != 4 {
		t.Fatalf("%d steps in the status, want the 4 needed nodes", len(st.Steps))
	}
	for _, s := range st.Steps {
		if s.Status != track.Succeeded || s.Attempts != 1 {
			t.Fatalf("node status %+v", s)
		}
	}
	// Two outputs: the result object holds both, in the requested order.
	df = &pipeline.Dataflow{Tasks: []string{"m.split", "m.count", "m.upper"}, Outputs: []string{"n", "loud"}}
	if out, err, _ := l.run(context.Background(), nil, df, in("text", `"x y"`)); err != nil || out != `{"n":2,"loud":"X Y"}` {
		t.Fatalf("result %s error %v", out, err)
	}
}

func TestTenantPolicy(t *testing.T) {
	acme := &policy.Tenant{Timeout: time.Second, Memory: 1 << 20, Fuel: 5000, MaxConcurrent: 2}
	l := newLab(t, Config{Tenant: "acme", Policy: acme, Limits: pipeline.Limits{Timeout: time.Hour, Memory: 1 << 30}})
	_, err, _ := l.run(context.Background(), seq().Map("m.slow", pipeline.Param("x"), pipeline.MaxParallel(16)), nil, in("x", "["+strings.Repeat("1,", 99)+"1]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lim := range l.broker.limits {
		if lim.Timeout != time.Second || lim.Memory != 1<<20 || lim.Fuel != 5000 {
			t.Fatalf("a call ran with %+v: the tenant's maxima were not applied", lim)
		}
	}
	if p := l.broker.peak.Load(); p > 2 {
		t.Fatalf("%d calls of the tenant ran at once; its max_concurrent is 2", p)
	}
	// Grants the tenant may not have: refused before any call.
	l = newLab(t, Config{Tenant: "acme", Policy: acme, Grants: pipeline.Grants{Clock: true}})
	_, err, st := l.run(context.Background(), seq().CallNext("m.double", pipeline.Param("x")), nil, in("x", "1"))
	if err == nil || !strings.Contains(err.Error(), `tenant "acme" may not be granted the real clock`) || l.broker.called("double") != 0 {
		t.Fatalf("error %v after %d calls", err, l.broker.called("double"))
	}
	if st.Status != track.Failed {
		t.Fatalf("status %s", st.Status)
	}
}
