package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fh "github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

// The driver conformance suite: one table of scenarios, run on both
// drivers (in this process through the composition the command line uses,
// and on Redis through two worker processes of the built command), which
// must agree on the result, the error, the events and the status, field
// for field (times, workers and the sampled step_progress aside).

// outcome is what a driver made of one run.
type outcome struct {
	status track.State
	result string
	err    string
	events []track.Event
	run    *track.RunStatus
}

// confLab holds what the scenarios share: the modules, a worker config,
// a Redis server with two workers, and a counting HTTP server.
type confLab struct {
	dir, policyFile, url string
	hits                 sync.Map // path → *int32 requests so far
}

const confPolicy = `
[tenants.default]

[tenants.acme]
fuel = 2000000
memory = "32MiB"
allow_http = ["127.0.0.1"]
allow_private = true
`

func newConfLab(t *testing.T) *confLab {
	t.Helper()
	l := &confLab{dir: t.TempDir()}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(l.dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("flaky.wasm", testmod.Module(t, "testdata/flaky.wat", "testdata/flaky.json"))
	write("hostile.wasm", testmod.Module(t, "../host/testdata/hostile.wat", "../host/testdata/hostile.json"))
	write("worker.toml", []byte(confPolicy))
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	write("child-sum.toml", []byte("name = \"child-sum\"\n[plugins]\nstats = "+strconvQuote(stats)+"\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\ncall = \"stats.sum\"\n"))
	write("child-fail.toml", []byte("name = \"child-fail\"\n[plugins]\ntext = "+strconvQuote(textkit)+"\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\n"))
	l.policyFile = filepath.Join(l.dir, "worker.toml")
	// /fail2/KEY fails twice, then answers "ok".
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := l.hits.LoadOrStore(r.URL.Path, new(int32))
		p := n.(*int32)
		*p++
		if *p <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `"ok"`)
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// flow writes a flow with every test module as a plugin.
func (l *confLab) flow(t *testing.T, name, body string) string {
	t.Helper()
	abs := func(p string) string { a, _ := filepath.Abs(p); return strconvQuote(a) }
	src := fmt.Sprintf("name = %q\n", name) + body + "\n[plugins]\nflaky = \"flaky.wasm\"\nhostile = \"hostile.wasm\"\n" +
		"text = " + abs("../plugins/examples/textkit-go/textkit.wasm") + "\nstats = " + abs("../plugins/examples/stats-c/stats.wasm") + "\n"
	path := filepath.Join(l.dir, name+".toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type scenario struct {
	name   string
	body   string   // the flow, without its plugins
	inputs []string // NAME=JSON
	tenant string
	// cancelAfter cancels the run once it made this much progress (a
	// step_progress or step_finished event).
	cancel bool
	// check, when set, asserts more of each driver's outcome.
	check func(t *testing.T, o outcome)
	// loose: only the run's status and error are compared, not the events
	// and the steps' status: independent work ran at once, and how far it
	// got before the run ended is a matter of timing.
	loose bool
}

func scenarios(l *confLab) []scenario {
	return []scenario{
		{name: "every-step-kind", body: "[inputs]\nx = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n[[step]]\nfilter = \"stats.is_even\"\nparam = \"x\"\n[[step]]\nmap = \"stats.square\"\n[[step]]\nname = \"aggregate\"\ngroup = [\"stats.sum\", \"stats.describe\"]\n"},
		{name: "call-after", body: "[inputs]\ntext = \"Hello, flowhost!\"\n[[step]]\ncall = \"text.split\"\n[[step]]\nafter = \"text.slugify\"\n"},
		{name: "diamond-and-pruning", body: "mode = \"dataflow\"\ntasks = [\"text.*\"]\noutputs = [\"report\"]\n[inputs]\ntext = \"the quick brown fox jumps over the lazy dog the end\"\n"},
		{name: "dataflow-outputs", body: "mode = \"dataflow\"\ntasks = [\"text.split\", \"text.profile\", \"text.slugify\", \"stats.describe\"]\noutputs = [\"vocab\", \"total\", \"slug\", \"stddev\", \"mean\"]\n[inputs]\ntext = \"to be or not to be\"\nvalues = [2, 4, 4, 4, 5, 5, 7, 9]\n"},
		{name: "empty-map", body: "[inputs]\nx = []\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\ngroup = [\"stats.sum\"]\n"},
		{name: "skip-errors", body: "[inputs]\nflag = [false, true, false, true, false]\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\nskip_errors = true\n"},
		{name: "fails-twice-then-succeeds", tenant: "acme",
			body:   "[grants]\nhttp = [\"127.0.0.1\"]\nprivate = true\n[[step]]\ncall = \"hostile.fetch\"\nparam = \"url\"\nretries = 3\n",
			inputs: []string{"url=" + strconvQuote(l.url+"/fail2/{driver}")},
			check: func(t *testing.T, o outcome) {
				// Retries 1 and 2 wait 100 ms and 200 ms, ±50 %: at least 150 ms.
				var started, finished time.Time
				for _, e := range o.events {
					switch e.Type {
					case track.StepStarted:
						started = e.Time
					case track.StepFinished:
						finished = e.Time
					}
				}
				if d := finished.Sub(started); o.result != `"ok"` || o.run.Steps[0].Attempts != 3 || d < 150*time.Millisecond || d > 10*time.Second {
					t.Fatalf("result %s after %d attempts in %v: want \"ok\" after 3, with 150 ms to 10 s of backoff", o.result, o.run.Steps[0].Attempts, d)
				}
			}},
		{name: "always-fails", check: func(t *testing.T, o outcome) {
			if o.run.Steps[0].Attempts != 3 || !strings.Contains(o.err, "element 2: textkit.fail_if: fail_if: flag is true") {
				t.Fatalf("attempts %d, error %q", o.run.Steps[0].Attempts, o.err)
			}
		}, body: "[inputs]\nflag = [false, false, true, false]\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\nretries = 2\n"},
		{name: "dataflow-node-fails", loose: true, body: "mode = \"dataflow\"\ntasks = [\"text.split\", \"text.fail_if\"]\noutputs = [\"words\", \"checked\"]\n[inputs]\ntext = \"a b\"\nflag = true\n"},
		{name: "filter-not-boolean", body: "[inputs]\nx = [3]\n[[step]]\nfilter = \"stats.square\"\nparam = \"x\"\n"},
		{name: "not-an-array", body: "[inputs]\nx = {a = 1}\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n"},
		{name: "step-timeout", body: "[[step]]\ncall = \"flaky.spin\"\ntimeout = \"200ms\"\n"},
		{name: "tenant-clamps-fuel", tenant: "acme", body: "[limits]\nfuel = 1000000000\n[[step]]\ncall = \"flaky.spin\"\ntimeout = \"20s\"\n"},
		{name: "tenant-refuses-grants", tenant: "acme", body: "[grants]\nclock = true\n[[step]]\ncall = \"text.split\"\n[inputs]\ntext = \"a\"\n"},
		{name: "when-skips-the-first-map", body: "[inputs]\nx = [1, 2, 3]\nsquare = false\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\nwhen = \"inputs.square\"\n[[step]]\ngroup = [\"stats.sum\"]\n",
			check: func(t *testing.T, o outcome) {
				if o.result != "[6]" || o.run.Steps[0].Status != track.Skipped || o.run.Steps[1].Status != track.Succeeded {
					t.Fatalf("result %s, steps %+v", o.result, o.run.Steps)
				}
			}},
		{name: "skips-in-a-row", body: "[inputs]\nx = [1, 2, 3]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\nwhen = \"false\"\n[[step]]\nmap = \"stats.square\"\nwhen = \"false\"\n[[step]]\nmap = \"stats.square\"\nwhen = \"size(result) > 5\"\n[[step]]\ngroup = [\"stats.sum\"]\n",
			check: func(t *testing.T, o outcome) {
				if o.result != "[6]" {
					t.Fatalf("result %s", o.result)
				}
			}},
		{name: "branch", body: "[inputs]\nx = [1, 2, 30]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\nbranch = [{ case = \"large\", when = \"result.exists(v, v > 50)\" }, { case = \"small\" }]\n" +
			"[[step]]\ncase = \"large\"\nmap = \"stats.square\"\n[[step]]\ncase = \"large\"\ngroup = [\"stats.sum\"]\n[[step]]\ncase = \"small\"\ncall = \"stats.sum\"\n[[step]]\nmap = \"stats.is_even\"\nwhen = \"size(result) == 1\"\n",
			check: func(t *testing.T, o outcome) {
				states := []track.State{track.Succeeded, track.Succeeded, track.Succeeded, track.Succeeded, track.Skipped, track.Succeeded}
				for i, s := range o.run.Steps {
					if s.Status != states[i] {
						t.Fatalf("step %d %s, want %s (%+v)", i+1, s.Status, states[i], o.run.Steps)
					}
				}
				if o.result != "[false]" || o.run.Steps[1].Case != "large" {
					t.Fatalf("result %s, case %q", o.result, o.run.Steps[1].Case)
				}
			}},
		{name: "branch-default", body: "[inputs]\nx = [1, 2]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\nbranch = [{ case = \"large\", when = \"result.exists(v, v > 50)\" }, { case = \"small\" }]\n" +
			"[[step]]\ncase = \"large\"\nmap = \"stats.square\"\n[[step]]\ncase = \"small\"\ncall = \"stats.sum\"\n",
			check: func(t *testing.T, o outcome) {
				if o.result != "5" || o.run.Steps[1].Case != "small" || o.run.Steps[2].Status != track.Skipped {
					t.Fatalf("result %s, steps %+v", o.result, o.run.Steps)
				}
			}},
		{name: "dataflow-when-skips-dependents", body: "mode = \"dataflow\"\ntasks = [\"text.*\"]\noutputs = [\"report\", \"slug\"]\n[inputs]\ntext = \"a b c\"\n[task.\"text.profile\"]\nwhen = \"size(args.words) > 5\"\n",
			check: func(t *testing.T, o outcome) {
				if o.result != `{"report":null,"slug":"a-b-c"}` {
					t.Fatalf("result %s", o.result)
				}
				skipped := 0
				for _, s := range o.run.Steps {
					if s.Status == track.Skipped {
						skipped++
					}
				}
				if skipped != 3 { // profile, ratio and report
					t.Fatalf("%d steps skipped, want 3: %+v", skipped, o.run.Steps)
				}
			}},
		{name: "sub-flow", body: "[inputs]\nx = [1, 2, 3]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\nflow = \"child-sum.toml\"\ninputs = { x = \"result\" }\n[[step]]\ncall = \"stats.is_even\"\n",
			check: func(t *testing.T, o outcome) {
				if o.result != "true" || o.run.Steps[1].Child == "" { // 1 + 16 + 81 = 98, even
					t.Fatalf("result %s, steps %+v", o.result, o.run.Steps)
				}
			}},
		{name: "sub-flow-fails", body: "[inputs]\nflag = [false, true]\n[[step]]\nflow = \"child-fail.toml\"\ninputs = { flag = \"inputs.flag\" }\n",
			check: func(t *testing.T, o outcome) {
				if !strings.Contains(o.err, "step 1 (flow child-fail): sub-flow child-fail (run RUN): step 1 (map s1:text.fail_if), element 1: textkit.fail_if: fail_if: flag is true") {
					t.Fatalf("error %q", o.err)
				}
			}},
		{name: "cancel-during-map", cancel: true, loose: true, body: "[inputs]\nx = " + jsonRange(300) + "\n[[step]]\nmap = \"flaky.busy\"\nparam = \"x\"\nmax_parallel = 2\n"},
	}
}

// driverInputs are a scenario's inputs for one driver: "{driver}" names it.
func driverInputs(sc scenario, driver string) []string {
	out := make([]string, len(sc.inputs))
	for i, in := range sc.inputs {
		out[i] = strings.ReplaceAll(in, "{driver}", driver)
	}
	return out
}

func jsonRange(n int) string {
	xs := make([]string, n)
	for i := range xs {
		xs[i] = fmt.Sprint(i)
	}
	return "[" + strings.Join(xs, ", ") + "]"
}

// inProcess runs a scenario in this process, as `flowhost run` does.
func (l *confLab) inProcess(t *testing.T, h *fh.Host, sc scenario, path string) outcome {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := fh.LoadFlow(ctx, h.Engine(), path, driverInputs(sc, "local"))
	if err != nil {
		t.Fatal(err)
	}
	name, err := f.Tenant(sc.tenant)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tenant.Load(l.policyFile)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := cfg.Policy(name)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []track.Event
	obs := track.ObserverFunc(func(e track.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		if sc.cancel && (e.Type == track.StepProgress || e.Type == track.StepFinished) {
			cancel()
		}
	})
	id, res, err := h.Exec(ctx, f, fh.ExecOptions{Tenant: name, Policy: &pol, Observer: obs})
	st, ok := h.Status(id)
	if !ok {
		t.Fatalf("no status of run %s", id)
	}
	own := events[:0] // not its sub-flows' runs' events
	for _, e := range events {
		if e.RunID == id {
			own = append(own, e)
		}
	}
	o := outcome{status: st.Status, events: own, run: st}
	if err == nil {
		o.result = compactJSON(t, res)
	}
	if err != nil {
		o.err = err.Error()
	}
	return o
}

// onRedis runs a scenario on the workers of srv, through the command line.
func (l *confLab) onRedis(t *testing.T, srv *redistest.Server, sc scenario, path string) outcome {
	t.Helper()
	args := []string{"run", "--detach", "--broker", srv.URL()}
	for _, in := range driverInputs(sc, "redis") {
		args = append(args, "--input", in)
	}
	ten := sc.tenant
	if ten == "" {
		ten = policy.DefaultTenant
	}
	r := flowhost(t, append(args, "--tenant", ten, path)...)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" {
		t.Fatalf("submit: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if sc.cancel {
		deadline := time.Now().Add(30 * time.Second)
		for !l.progressed(t, srv, ten, id) {
			if time.Now().After(deadline) {
				t.Fatal("the run made no progress")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if r := flowhost(t, "cancel", "--broker", srv.URL(), "--tenant", ten, id); r.code != 0 {
			t.Fatalf("cancel: %s %s", r.stdout, r.stderr)
		}
	}
	w := flowhost(t, "wait", "--json", "--broker", srv.URL(), "--tenant", ten, id)
	var out runJSON
	if err := json.Unmarshal([]byte(w.stdout), &out); err != nil {
		t.Fatalf("wait: %v: %s %s", err, w.stdout, w.stderr)
	}
	o := outcome{result: string(out.Result)}
	if out.Error != nil {
		o.err = *out.Error
	}
	if out.Status == "succeeded" {
		o.result = compactJSON(t, out.Result)
	} else {
		o.result = ""
	}
	ev := flowhost(t, "events", "--broker", srv.URL(), "--tenant", ten, id)
	sc2 := bufio.NewScanner(strings.NewReader(ev.stdout))
	sc2.Buffer(nil, 1<<20)
	for sc2.Scan() {
		var e track.Event
		if err := json.Unmarshal(sc2.Bytes(), &e); err != nil {
			t.Fatalf("event %q: %v", sc2.Text(), err)
		}
		o.events = append(o.events, e)
	}
	s := flowhost(t, "status", "--json", "--broker", srv.URL(), "--tenant", ten, id)
	o.run = &track.RunStatus{}
	if err := json.Unmarshal([]byte(s.stdout), o.run); err != nil {
		t.Fatalf("status: %v: %s", err, s.stdout)
	}
	o.status = o.run.Status
	return o
}

func (l *confLab) progressed(t *testing.T, srv *redistest.Server, ten, id string) bool {
	r := flowhost(t, "status", "--json", "--broker", srv.URL(), "--tenant", ten, id)
	var st track.RunStatus
	return json.Unmarshal([]byte(r.stdout), &st) == nil && len(st.Steps) > 0 && st.Steps[0].Done != nil && *st.Steps[0].Done > 0
}

func compactJSON(t *testing.T, b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("result %s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// runIDs match run ids, which differ between drivers.
var runIDs = regexp.MustCompile(`\b[0-9a-f]{23}\b`)

// rank orders a step's events.
var rank = map[track.EventType]int{track.RunStarted: 0, track.StepStarted: 1, track.StepRetried: 2, track.StepFailed: 3, track.StepFinished: 4, track.RunFinished: 5}

// normalEvents drops what drivers may differ in (times, workers, the
// sampled step_progress) and orders the events of steps that ran at once
// (group tasks, independent dataflow nodes) by step.
func normalEvents(in []track.Event) []string {
	var out []track.Event
	for _, e := range in {
		if e.Type == track.StepProgress {
			continue
		}
		e.Time, e.Worker, e.Err, e.RunID = time.Time{}, "", nil, ""
		e.Error = runIDs.ReplaceAllString(e.Error, "RUN")
		if e.Child != "" {
			e.Child = "RUN"
		}
		e.Fuel, e.PeakMemory = measured(e.Fuel), measured(e.PeakMemory)
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b track.Event) int {
		ka, kb := 0, 0
		if a.Type == track.RunFinished {
			ka = 1
		}
		if b.Type == track.RunFinished {
			kb = 1
		}
		if ka != kb {
			return ka - kb
		}
		if a.Step != b.Step {
			return a.Step - b.Step
		}
		if rank[a.Type] != rank[b.Type] {
			return rank[a.Type] - rank[b.Type]
		}
		return a.Attempt - b.Attempt
	})
	lines := make([]string, len(out))
	for i, e := range out {
		b, _ := json.Marshal(e)
		lines[i] = string(b)
	}
	return lines
}

// normalStatus drops times, workers and the run id, and the count of
// calls done of a step that did not succeed (how far its other calls got
// is a matter of timing).
func normalStatus(st *track.RunStatus) track.RunStatus {
	n := *st
	n.RunID, n.CreatedAt, n.FinishedAt = "", "", ""
	n.Error = runIDs.ReplaceAllString(n.Error, "RUN")
	n.Result = json.RawMessage(compactOrNull(st.Result))
	n.Steps = slices.Clone(st.Steps)
	for i := range n.Steps {
		s := &n.Steps[i]
		s.StartedAt, s.FinishedAt, s.DurationMS, s.Worker = "", "", 0, ""
		s.Error = runIDs.ReplaceAllString(s.Error, "RUN")
		if s.Child != "" {
			s.Child = "RUN"
		}
		s.Fuel, s.PeakMemory = measured(s.Fuel), measured(s.PeakMemory)
		if s.Status != track.Succeeded && s.Done != nil {
			zero := 0
			s.Done = &zero
		}
	}
	return n
}

// measured keeps whether a driver measured fuel or memory, not how much:
// a guest that keeps its state between calls (the Go guest) burns less
// on a warm instance, and the drivers warm theirs differently.
func measured(n uint64) uint64 { return min(n, 1) }

func compactOrNull(b json.RawMessage) string {
	var v any
	if len(b) == 0 || json.Unmarshal(b, &v) != nil {
		return "null"
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestDriverConformance(t *testing.T) {
	l := newConfLab(t)
	srv := redistest.Start(t)
	for _, name := range []string{"c1", "c2"} {
		start(t, "worker", "--broker", srv.URL(), "--name", name, "--concurrency", "2", "--config", l.policyFile, "--no-cache")
	}
	h, err := fh.New(context.Background(), fh.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, sc := range scenarios(l) {
		t.Run(sc.name, func(t *testing.T) {
			local := l.inProcess(t, h, sc, l.flow(t, sc.name+"-local", sc.body))
			remote := l.onRedis(t, srv, sc, l.flow(t, sc.name+"-redis", sc.body))
			// Both flows have their own name; the scenario is the same.
			// A sub-flow's run has an id of its own.
			for _, o := range []*outcome{&local, &remote} {
				o.err = runIDs.ReplaceAllString(strings.ReplaceAll(strings.ReplaceAll(o.err, sc.name+"-local", sc.name), sc.name+"-redis", sc.name), "RUN")
				o.run.Name = sc.name
				for i := range o.events {
					if o.events[i].Type == track.RunStarted {
						o.events[i].Name = sc.name
					}
				}
			}
			if sc.check != nil {
				sc.check(t, local)
				sc.check(t, remote)
			}
			if local.status != remote.status {
				t.Fatalf("status: in-process %s (%s), Redis %s (%s)", local.status, local.err, remote.status, remote.err)
			}
			if sc.cancel {
				if local.status != track.Cancelled {
					t.Fatalf("status %s, want cancelled", local.status)
				}
				return
			}
			if local.result != remote.result || local.err != remote.err {
				t.Fatalf("in-process: %s %q\nRedis:      %s %q", local.result, local.err, remote.result, remote.err)
			}
			if sc.loose {
				return
			}
			le, re := normalEvents(local.events), normalEvents(remote.events)
			if !slices.Equal(le, re) {
				t.Fatalf("events differ:\nin-process:\n  %s\nRedis:\n  %s", strings.Join(le, "\n  "), strings.Join(re, "\n  "))
			}
			ls, rs := normalStatus(local.run), normalStatus(remote.run)
			if !reflect.DeepEqual(ls, rs) {
				lb, _ := json.MarshalIndent(ls, "", " ")
				rb, _ := json.MarshalIndent(rs, "", " ")
				t.Fatalf("status differs:\nin-process: %s\nRedis: %s", lb, rb)
			}
			t.Logf("%s: %s %s%s", sc.name, local.status, local.result, local.err)
		})
	}
}

// TestErrorPrecedence runs, on both drivers, 100 times each, a flow whose
// one task fails at once while a sibling still runs: every run must
// report that task's failure, never the sibling's cancellation.
func TestErrorPrecedence(t *testing.T) {
	l := newConfLab(t)
	body := "mode = \"dataflow\"\ntasks = [\"flaky.busy\", \"text.fail_if\"]\noutputs = [\"y\", \"checked\"]\n[inputs]\nflag = true\n"
	want := "task text.fail_if: textkit.fail_if: fail_if: flag is true"
	const runs = 100

	h, err := fh.New(context.Background(), fh.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f, err := fh.LoadFlow(context.Background(), h.Engine(), l.flow(t, "precedence", body), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range runs {
		if _, _, err := h.Exec(context.Background(), f, fh.ExecOptions{}); err == nil || err.Error() != want {
			t.Fatalf("in-process run %d: %v, want %q", i, err, want)
		}
	}

	srv := redistest.Start(t)
	for _, name := range []string{"p1", "p2"} {
		start(t, "worker", "--broker", srv.URL(), "--name", name, "--concurrency", "2")
	}
	path := l.flow(t, "precedence-redis", body)
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = submit(t, srv, path)
	}
	for i, id := range ids {
		r := flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
		var out runJSON
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != "failed" || out.Error == nil || *out.Error != want {
			t.Fatalf("Redis run %d: %s %s", i, r.stdout, r.stderr)
		}
	}
}
