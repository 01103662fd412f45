package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

// proc is a flowhost process started by a test.
type proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs the binary in the background; it is killed when the test ends.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...)}
	p.cmd.Dir = ".."
	p.cmd.Env = append(os.Environ(), "FLOWHOST_CACHE_DIR="+cacheDir)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("flowhost %v:\n%s", args, p.output())
		}
	})
	return p
}

// broker is a Redis server or cluster a test started.
type broker interface{ URL() string }

func worker(t *testing.T, srv broker, name string, extra ...string) *proc {
	return start(t, append([]string{"worker", "--broker", srv.URL(), "--name", name, "--lease", "2s", "--concurrency", "1", "--batch-size", "1"}, extra...)...)
}

// busyFlow maps a ~50 ms task over n elements.
func busyFlow(t *testing.T, n int) string {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	b, _ := json.Marshal(xs)
	return writeFlow(t, fmt.Sprintf("[inputs]\nx = %s\n[[step]]\nmap = \"flaky.busy\"\nparam = \"x\"\n", b))
}

func submit(t *testing.T, srv broker, flow string) string {
	t.Helper()
	r := flowhost(t, "run", "--detach", "--broker", srv.URL(), flow)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" {
		t.Fatalf("submit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return id
}

// waitResult waits for the run and checks it succeeded with n results of 1,
// each present exactly once.
func waitResult(t *testing.T, srv *redistest.Server, id string, n int) {
	t.Helper()
	r := flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	var out runJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != "succeeded" {
		t.Fatalf("run %s: exit %d %s %s", id, r.code, r.stdout, r.stderr)
	}
	var got []int
	if err := json.Unmarshal(out.Result, &got); err != nil || len(got) != n {
		t.Fatalf("result %s: want %d elements", out.Result, n)
	}
	for i, v := range got {
		if v != 1 {
			t.Fatalf("element %d = %d", i, v)
		}
	}
}

// stepStarted waits until the run's map has made some progress.
func waitProgress(t *testing.T, srv *redistest.Server, id string, min int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := flowhost(t, "status", "--json", "--broker", srv.URL(), id)
		var st struct {
			Steps []struct {
				Done *int `json:"done"`
			} `json:"steps"`
		}
		if json.Unmarshal([]byte(r.stdout), &st) == nil && len(st.Steps) > 0 && st.Steps[0].Done != nil && *st.Steps[0].Done >= min {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the run made no progress")
}

func TestDistributed(t *testing.T) { testDistributed(t, redistest.Start(t)) }

// TestCluster runs the distributed tests on a Redis Cluster of three
// masters with a replica each.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	t.Run("distributed", func(t *testing.T) { testDistributed(t, c) })
	t.Run("cancel", func(t *testing.T) { testCancel(t, c) })
}

func testDistributed(t *testing.T, srv broker) {
	worker(t, srv, "w1", "--concurrency", "2")
	worker(t, srv, "w2", "--concurrency", "2")
	for _, c := range []struct{ flow, want string }{
		{"examples/flows/numbers.toml", `[220,{"count":5,"mean":44,"stddev":34.59479729670345}]`},
		{"examples/flows/wordstats.toml", `{"report":"report: 11 words, 82% distinct"}`},
		{"examples/flows/skip-errors.toml", `[false,false,false]`},
	} {
		out, r := runJSONOut(t, "--broker", srv.URL(), c.flow)
		if out.Status != "succeeded" || string(out.Result) != c.want {
			t.Fatalf("%s: %s %s", c.flow, r.stdout, r.stderr)
		}
	}
	// A failure reaches the submitter with the step, element and task.
	out, _ := runJSONOut(t, "--broker", srv.URL(), writeFlow(t, "[inputs]\nflag = [false, true]\n[[step]]\nmap = \"text.fail_if\"\nparam = \"flag\"\n"))
	if out.Status != "failed" || !strings.Contains(*out.Error, "step 1 (map text.fail_if), element 1: textkit.fail_if: fail_if: flag is true") {
		t.Fatalf("%+v", out)
	}
	// runs lists them, newest first.
	r := flowhost(t, "runs", "--json", "--broker", srv.URL())
	var runs []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 4 || runs[0].Status != "failed" {
		t.Fatalf("runs: %s", r.stdout)
	}
}

func TestWorkerKilled(t *testing.T) {
	srv := redistest.Start(t)
	w1 := worker(t, srv, "w1")
	worker(t, srv, "w2")
	id := submit(t, srv, busyFlow(t, 30))
	waitProgress(t, srv, id, 4)
	if err := w1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitResult(t, srv, id, 30)
	// w2 alone needs ~1.5 s for the rest; the lease is 2 s.
	if d := time.Since(killed); d > 10*time.Second {
		t.Fatalf("the dead worker's task was re-run only after %s", d)
	}
}

// TestWorkerKilledInline kills the worker running a step of one batch,
// which the worker that started the step runs itself, its record the
// message that started it: that message comes again, and the batch is
// run again, by the other worker, to the right result.
func TestWorkerKilledInline(t *testing.T) {
	srv := redistest.Start(t)
	ws := map[string]*proc{}
	for _, name := range []string{"w1", "w2"} {
		ws[name] = worker(t, srv, name)
	}
	id := submit(t, srv, writeFlow(t, "[limits]\ntimeout = \"60s\"\n[[step]]\ncall = \"flaky.slow\"\n")) // one call of ~2 s
	rdb := srv.Client()
	ctx := context.Background()
	step := "fh:t:default:run:" + id + ":step:0"
	var running string
	for deadline := time.Now().Add(30 * time.Second); running == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if h := rdb.HGetAll(ctx, step).Val(); h["inline"] == "1" {
			running = h["worker"]
		}
	}
	if ws[running] == nil {
		t.Fatalf("the step was not started inline by a worker (worker %q)", running)
	}
	time.Sleep(300 * time.Millisecond) // part way through its call
	if err := ws[running].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	var out runJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != "succeeded" || string(out.Result) != "1" {
		t.Fatalf("run %s: exit %d %s %s", id, r.code, r.stdout, r.stderr)
	}
	h := rdb.HGetAll(ctx, step).Val()
	if h["done"] != "1" || h["total"] != "1" || h["worker"] != running {
		t.Fatalf("step: done %s of %s, worker %s", h["done"], h["total"], h["worker"])
	}
	if n := rdb.XLen(ctx, "fh:t:default:q").Val(); n != 1 {
		t.Fatalf("%d messages on the stream: want only the run's init", n)
	}
}

func TestWorkerTerminated(t *testing.T) {
	srv := redistest.Start(t)
	w1 := worker(t, srv, "w1")
	worker(t, srv, "w2")
	id := submit(t, srv, busyFlow(t, 30))
	waitProgress(t, srv, id, 4)
	if err := w1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w1.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the worker did not drain cleanly: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not stop after SIGTERM")
	}
	if !strings.Contains(w1.output(), "worker stopped") {
		t.Fatalf("no drain message:\n%s", w1.output())
	}
	waitResult(t, srv, id, 30)
}

func TestRedisRestarted(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	worker(t, srv, "w2")
	id := submit(t, srv, busyFlow(t, 30))
	waitProgress(t, srv, id, 4)
	srv.Restart() // SIGKILL, then start again from the append-only file
	waitResult(t, srv, id, 30)
}

var submittedRe = regexp.MustCompile(`run (\w+) submitted`)

func TestSubmitterKilled(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	sub := start(t, "run", "--broker", srv.URL(), busyFlow(t, 10))
	var id string
	deadline := time.Now().Add(20 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(sub.output()))
		for sc.Scan() {
			if m := submittedRe.FindStringSubmatch(sc.Text()); m != nil {
				id = m[1]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id == "" {
		t.Fatalf("no run id from the submitter:\n%s", sub.output())
	}
	sub.cmd.Process.Kill()
	sub.cmd.Wait()
	waitResult(t, srv, id, 10)
}

func TestCancel(t *testing.T) { testCancel(t, redistest.Start(t)) }

func testCancel(t *testing.T, srv broker) {
	worker(t, srv, "w1")
	id := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"flaky.spin\"\n"))
	time.Sleep(300 * time.Millisecond)
	r := flowhost(t, "cancel", "--broker", srv.URL(), id)
	if r.code != 0 || !strings.Contains(r.stdout, "cancelled") {
		t.Fatalf("cancel: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	if r.code != 1 || !strings.Contains(r.stdout, `"status":"failed"`) {
		t.Fatalf("wait after cancel: %d %s", r.code, r.stdout)
	}
	r = flowhost(t, "status", "--json", "--broker", srv.URL(), id)
	if !strings.Contains(r.stdout, `"status": "cancelled"`) {
		t.Fatalf("status: %s", r.stdout)
	}
	if r := flowhost(t, "status", "--broker", srv.URL(), "nosuchrun"); r.code != 2 || !strings.Contains(r.stderr, "no such run") {
		t.Fatalf("unknown run: %d %s", r.code, r.stderr)
	}
}

// TestTLS runs a flow through a broker that speaks only TLS (rediss://).
func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	t.Setenv("SSL_CERT_FILE", srv.CAFile) // trust the test CA, in the processes started below
	worker(t, srv, "w1")
	out, r := runJSONOut(t, "--broker", srv.URL(), "examples/flows/after.toml")
	if out.Status != "succeeded" || string(out.Result) != `"hello-flowhost"` {
		t.Fatalf("%s %s", r.stdout, r.stderr)
	}
	// A plain redis:// URL to the TLS port fails clearly, with exit 2.
	plain := strings.Replace(srv.URL(), "rediss://", "redis://", 1)
	if r := flowhost(t, "runs", "--broker", plain); r.code != 2 || !strings.Contains(r.stderr, "broker 127.0.0.1") {
		t.Fatalf("plain URL to a TLS server: exit %d %s", r.code, r.stderr)
	}
}

var metricsURLRe = regexp.MustCompile(`url=(http://[0-9.:]+/metrics)`)

// scrape fetches a metrics page and returns the value of each series.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			var v float64
			fmt.Sscan(line[i+1:], &v)
			out[line[:i]] = v
		}
	}
	return out
}

func TestWorkerMetrics(t *testing.T) {
	srv := redistest.Start(t)
	w := worker(t, srv, "w1", "--metrics-addr", "127.0.0.1:0")
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := metricsURLRe.FindStringSubmatch(w.output()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no metrics URL in the worker's log:\n%s", w.output())
	}
	if resp, err := http.Get(strings.TrimSuffix(url, "/metrics") + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	before := scrape(t, url)
	runJSONOut(t, "--broker", srv.URL(), "examples/flows/numbers.toml")
	runJSONOut(t, "--broker", srv.URL(), "examples/flows/skip-errors.toml")
	after := scrape(t, url)
	series := map[string]float64{
		`flowhost_tasks_started_total{module="stats",task="is_even",tenant="default"}`:                    10,
		`flowhost_tasks_succeeded_total{module="stats",task="square",tenant="default"}`:                   5,
		`flowhost_tasks_failed_total{kind="task error",module="textkit",task="fail_if",tenant="default"}`: 2,
		`flowhost_task_duration_seconds_count{module="stats",task="is_even",tenant="default"}`:            10,
	}
	for s, want := range series {
		if got := after[s] - before[s]; got != want {
			t.Errorf("%s moved by %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"flowhost_instances_created_total", "flowhost_modules_loaded"} {
		if after[s] < 1 {
			t.Errorf("%s = %v", s, after[s])
		}
	}
	if n := after["flowhost_compile_cache_hits_total"] + after["flowhost_compile_cache_misses_total"]; n < 1 {
		t.Errorf("compile cache hits + misses = %v", n)
	}
	if _, ok := after[`flowhost_queue_depth{tenant="default"}`]; !ok {
		// The queue gauges are sampled every 2 s.
		time.Sleep(2500 * time.Millisecond)
		if _, ok := scrape(t, url)[`flowhost_queue_depth{tenant="default"}`]; !ok {
			t.Errorf("no queue depth gauge")
		}
	}
}

type statusOut struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	RerunOf string `json:"rerun_of"`
	Steps   []struct {
		Cached     int     `json:"cached"`
		Name       string  `json:"name"`
		Status     string  `json:"status"`
		Attempts   int     `json:"attempts"`
		StartedAt  string  `json:"started_at"`
		FinishedAt string  `json:"finished_at"`
		Error      string  `json:"error"`
		Done       *int    `json:"done"`
		Total      *int    `json:"total"`
		Worker     string  `json:"worker"`
		DurationMS float64 `json:"duration_ms"`
	} `json:"steps"`
}

func status(t *testing.T, srv *redistest.Server, id string) statusOut {
	t.Helper()
	r := flowhost(t, "status", "--json", "--broker", srv.URL(), id)
	var st statusOut
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status: %v\n%s%s", err, r.stdout, r.stderr)
	}
	for _, s := range st.Steps {
		for _, ts := range []string{s.StartedAt, s.FinishedAt} {
			if _, err := time.Parse(time.RFC3339Nano, ts); ts != "" && err != nil {
				t.Fatalf("time %q is not RFC 3339", ts)
			}
		}
	}
	return st
}

func TestTracking(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1", "--concurrency", "2")

	ok := submit(t, srv, "examples/flows/numbers.toml")
	flowhost(t, "wait", "--broker", srv.URL(), ok)
	st := status(t, srv, ok)
	if st.Status != "succeeded" || len(st.Steps) != 3 || st.Steps[1].Name != "map stats.square" ||
		st.Steps[1].Status != "succeeded" || *st.Steps[1].Done != 5 || *st.Steps[1].Total != 5 || st.Steps[2].Done != nil ||
		st.Steps[1].Worker != "w1" || st.Steps[1].DurationMS <= 0 {
		t.Fatalf("succeeded run: %+v", st)
	}

	bad := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"text.fail_if\"\nargs = { flag = true, message = \"broken on purpose\" }\n"))
	flowhost(t, "wait", "--broker", srv.URL(), bad)
	st = status(t, srv, bad)
	if st.Status != "failed" || !strings.Contains(st.Error, "broken on purpose") || st.Steps[0].Status != "failed" || !strings.Contains(st.Steps[0].Error, "broken on purpose") {
		t.Fatalf("failed run: %+v", st)
	}

	retried := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"flaky.flaky\"\nretries = 3\nstate = \"keep\"\n"))
	flowhost(t, "wait", "--broker", srv.URL(), retried)
	st = status(t, srv, retried)
	if st.Status != "succeeded" || st.Steps[0].Attempts != 2 {
		t.Fatalf("retried run: %+v", st)
	}
	r := flowhost(t, "events", "--broker", srv.URL(), retried)
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e struct {
			Type, Worker string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events line %q: %v", line, err)
		}
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "run_started step_started step_retried step_finished run_finished" {
		t.Fatalf("events: %s\n%s", got, r.stdout)
	}

	spin := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"flaky.spin\"\n"))
	time.Sleep(300 * time.Millisecond)
	if r := flowhost(t, "cancel", "--broker", srv.URL(), spin); r.code != 0 {
		t.Fatalf("cancel: exit %d %s", r.code, r.stderr)
	}
	st = status(t, srv, spin)
	if st.Status != "cancelled" || st.Steps[0].Status != "cancelled" {
		t.Fatalf("cancelled run: %+v", st)
	}

	r = flowhost(t, "runs", "--json", "--broker", srv.URL())
	var runs []statusOut
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 4 || runs[0].RunID != spin || runs[3].RunID != ok {
		t.Fatalf("runs: %s", r.stdout)
	}
	r = flowhost(t, "runs", "--json", "--status", "failed", "--broker", srv.URL())
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 1 || runs[0].RunID != bad {
		t.Fatalf("runs --status failed: %s", r.stdout)
	}
}

// TestTenantFairness: while tenant A has 3,000 tasks of ~50 ms queued,
// tenant B's one-task run still starts at once: tenants have their own
// streams, and every read takes from each of them.
func TestTenantFairness(t *testing.T) {
	srv := redistest.Start(t, "--appendfsync", "everysec")
	worker(t, srv, "w1")
	worker(t, srv, "w2")
	// Once before the flood, so that what is measured is the wait, not
	// the workers compiling b's Go module.
	if out, r := runJSONOut(t, "--broker", srv.URL(), "--tenant", "b", "examples/flows/after.toml"); out.Status != "succeeded" {
		t.Fatalf("tenant b, idle: %s %s", r.stdout, r.stderr)
	}
	flood := start(t, "run", "--broker", srv.URL(), "--tenant", "a", "--detach", busyFlow(t, 3000))
	if err := flood.cmd.Wait(); err != nil {
		t.Fatalf("submit the flood: %v\n%s", err, flood.output())
	}
	floodID := strings.TrimSpace(flood.output())
	took := besideFlood(t, srv, "a", floodID, 3000, "--tenant", "b")
	t.Logf("tenant b's run took %s while tenant a's 3,000-task map was running", took)
	if took > 2*time.Second {
		t.Fatalf("tenant b waited %s behind tenant a's flood", took)
	}
	flowhost(t, "cancel", "--tenant", "a", "--broker", srv.URL(), floodID)
}

// besideFlood waits until the flood (run id of tenant, a map of total
// calls) runs, then runs examples/flows/after.toml with args and
// returns how long it took; the run must succeed.
func besideFlood(t *testing.T, srv *redistest.Server, tenant, id string, total int, args ...string) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := flowhost(t, "status", "--json", "--tenant", tenant, "--broker", srv.URL(), id)
		if strings.Contains(r.stdout, fmt.Sprintf(`"total": %d`, total)) && strings.Contains(r.stdout, `"status": "running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not start: %s", r.stdout)
		}
	}
	begin := time.Now()
	out, r := runJSONOut(t, append(append([]string{"--broker", srv.URL()}, args...), "examples/flows/after.toml")...)
	took := time.Since(begin)
	if out.Status != "succeeded" {
		t.Fatalf("the run beside the flood: %s %s", r.stdout, r.stderr)
	}
	return took
}

// TestTenantPolicies: a worker's tenant maxima clamp what a flow asks for,
// and a tenant the worker does not serve is refused.
func TestTenantPolicies(t *testing.T) {
	srv := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "worker.toml")
	if err := os.WriteFile(cfg, []byte("[tenants.acme]\nmax_concurrent = 1\ntimeout = \"300ms\"\nmemory = \"64MiB\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	worker(t, srv, "w1", "--config", cfg)
	// The flow asks for 30 s; acme may have 300 ms.
	out, _ := runJSONOut(t, "--broker", srv.URL(), "--tenant", "acme", writeFlow(t, "[limits]\ntimeout = \"30s\"\n[[step]]\ncall = \"flaky.spin\"\n"))
	if out.Status != "failed" || !strings.Contains(*out.Error, "timeout: did not finish within 300ms") {
		t.Fatalf("acme: %+v %v", out, *out.Error)
	}
	out, _ = runJSONOut(t, "--broker", srv.URL(), "--tenant", "acme", "examples/flows/numbers.toml")
	if out.Status != "succeeded" {
		t.Fatalf("acme within its maxima: %v", *out.Error)
	}
	out, _ = runJSONOut(t, "--broker", srv.URL(), "--tenant", "intruder", "examples/flows/after.toml")
	if out.Status != "failed" || !strings.Contains(*out.Error, `"intruder" is not among this worker's tenants (acme)`) {
		t.Fatalf("intruder: %+v", out)
	}
	if r := flowhost(t, "worker", "--broker", srv.URL(), "--config", "nope.toml"); r.code != 2 || !strings.Contains(r.stderr, "nope.toml") {
		t.Fatalf("missing config: %d %s", r.code, r.stderr)
	}
}

// TestTenantGrants: a worker grants a tenant's flow only what the
// tenant's policy allows, and refuses the run, naming the grant, before
// any task runs.
func TestTenantGrants(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "worker.toml")
	os.WriteFile(cfg, []byte("[tenants.acme]\nallow_env = true\n[tenants.locked]\nallow_modules = [\""+strings.Repeat("0", 64)+"\"]\n"), 0o644)
	worker(t, srv, "w1", "--config", cfg)
	wasm := testmod.Module(t, "../host/testdata/wasi_read.wat", "../host/testdata/wasi_read.json")
	os.WriteFile(filepath.Join(dir, "wasi.wasm"), wasm, 0o644)
	flow := func(grants string) string {
		p := filepath.Join(dir, fmt.Sprintf("flow%d.toml", len(grants)))
		os.WriteFile(p, []byte("[plugins]\nw = \"wasi.wasm\"\n"+grants+"[[step]]\ncall = \"w.env\"\n"), 0o644)
		return p
	}
	out, r := runJSONOut(t, "--broker", srv.URL(), "--tenant", "acme", flow("[grants]\nenv = { A = \"1\", B = \"2\" }\n"))
	if out.Status != "succeeded" || string(out.Result) != "2" {
		t.Fatalf("env granted: %s %s", r.stdout, r.stderr)
	}
	out, _ = runJSONOut(t, "--broker", srv.URL(), "--tenant", "acme", flow("[grants]\nhttp = [\"example.com\"]\n"))
	if out.Status != "failed" || !strings.Contains(*out.Error, `tenant "acme" may not be granted HTTP host "example.com"; allowed: none`) {
		t.Fatalf("http refused: %+v", *out.Error)
	}
	out, _ = runJSONOut(t, "--broker", srv.URL(), "--tenant", "locked", flow(""))
	if out.Status != "failed" || !strings.Contains(*out.Error, `tenant "locked" may not run module`) || !strings.Contains(*out.Error, "(plugin w)") {
		t.Fatalf("module allow-list: %+v", *out.Error)
	}
}

// TestRedisACL: with the documented ACLs, each tenant submits with its
// own credentials and workers with theirs; tenant A's credentials cannot
// read tenant B's runs, results or modules, nor list the tenants.
// TestTenantAttacks tries everything else a tenant's credentials allow.
func TestRedisACL(t *testing.T) {
	l := newTenantsLab(t)
	ctx := t.Context()
	outA, r := runJSONOut(t, "--broker", l.acmeURL, "--tenant", "acme", "examples/flows/after.toml")
	if outA.Status != "succeeded" {
		t.Fatalf("acme: %s %s", r.stdout, r.stderr)
	}
	outB, r := runJSONOut(t, "--broker", l.bravoURL, "--tenant", "bravo", "examples/flows/numbers.toml")
	if outB.Status != "succeeded" {
		t.Fatalf("bravo: %s %s", r.stdout, r.stderr)
	}
	// acme sees its own run, not bravo's.
	for _, cmd := range []string{"status", "wait", "events"} {
		if r := flowhost(t, cmd, "--broker", l.acmeURL, "--tenant", "acme", outA.RunID); r.code != 0 {
			t.Fatalf("acme's own %s: %d %s", cmd, r.code, r.stderr)
		}
	}
	if r := flowhost(t, "runs", "--broker", l.acmeURL, "--tenant", "acme"); r.code != 0 || !strings.Contains(r.stdout, outA.RunID) {
		t.Fatalf("acme's own runs: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, cmd := range []string{"status", "wait", "events", "cancel"} {
		r = flowhost(t, cmd, "--broker", l.acmeURL, "--tenant", "bravo", outB.RunID)
		if r.code == 0 || !strings.Contains(r.stderr, "NOPERM") {
			t.Fatalf("acme's %s of bravo's run: exit %d\n%s%s", cmd, r.code, r.stdout, r.stderr)
		}
	}
	for _, cmd := range [][]any{
		{"HGETALL", "fh:t:bravo:run:" + outB.RunID},
		{"KEYS", "fh:t:bravo:*"},
		{"SMEMBERS", "fh:tenants"},
		{"XRANGE", "fh:t:bravo:q", "-", "+"},
		{"GET", "fh:t:bravo:mod:" + l.statsSHA},
	} {
		if err := l.acme.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("acme ran %v: %v", cmd, err)
		}
	}
	// Cancel needs no scripting: acme cancels its own run.
	id := l.submit(t, l.acmeURL, "acme", l.flow(t, "long", fmt.Sprintf("[plugins]\nf = %q\n[inputs]\nx = [%s]\n[[step]]\nmap = \"f.busy\"\nparam = \"x\"\n",
		l.flaky, strings.TrimSuffix(strings.Repeat("0,", 200), ","))))
	if r := flowhost(t, "cancel", "--broker", l.acmeURL, "--tenant", "acme", id); r.code != 0 {
		t.Fatalf("acme's cancel of its own run: %d %s", r.code, r.stderr)
	}
	if out := l.wait(t, l.acmeURL, "acme", id); out.Status != "failed" || out.Error == nil || *out.Error != "cancelled by request" {
		t.Fatalf("after cancel: %+v", out)
	}
}

// TestStatusWatch: status --watch prints until the run ends.
func TestStatusWatch(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	id := submit(t, srv, busyFlow(t, 12))
	r := flowhost(t, "status", "--watch", "--broker", srv.URL(), id)
	if r.code != 0 || strings.Count(r.stdout, "run "+id) < 2 || !strings.Contains(r.stdout, ": succeeded") {
		t.Fatalf("status --watch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestTenantFairnessLongBatches: two workers of two slots each; tenant a,
// allowed all of a worker's slots, maps ~50 ms tasks over 2,048 elements
// in batches of 256 (13 s of work per batch); tenant b's one-task run
// still ends within a second, because a long batch yields its slot to
// another tenant's waiting message and a worker starts the tenant running
// least first.
func TestTenantFairnessLongBatches(t *testing.T) {
	srv := redistest.Start(t, "--appendfsync", "everysec")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "worker.toml")
	if err := os.WriteFile(cfg, []byte("[tenants.a]\nmax_concurrent = 2\n\n[tenants.default]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w1", "w2"} {
		start(t, "worker", "--broker", srv.URL(), "--name", name, "--concurrency", "2", "--config", cfg)
	}
	if err := os.WriteFile(filepath.Join(dir, "flaky.wasm"), testmod.Module(t, "testdata/flaky.wat", "testdata/flaky.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(dir, "one.toml")
	if err := os.WriteFile(one, []byte("[plugins]\nflaky = \"flaky.wasm\"\n[[step]]\ncall = \"flaky.busy\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idleStart := time.Now()
	if out, r := runJSONOut(t, "--broker", srv.URL(), "--tenant", "b", one); out.Status != "succeeded" {
		t.Fatalf("tenant b, idle: %s %s", r.stdout, r.stderr)
	}
	idle := time.Since(idleStart)
	floodID := strings.TrimSpace(flowhost(t, "run", "--broker", srv.URL(), "--tenant", "a", "--detach", busyFlow(t, 2048)).stdout)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := flowhost(t, "status", "--json", "--tenant", "a", "--broker", srv.URL(), floodID)
		if strings.Contains(r.stdout, `"total": 2048`) && strings.Contains(r.stdout, `"status": "running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not start: %s", r.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // every slot busy with a's batches
	var took []time.Duration
	for range 5 {
		begin := time.Now()
		out, r := runJSONOut(t, "--broker", srv.URL(), "--tenant", "b", one)
		took = append(took, time.Since(begin))
		if out.Status != "succeeded" {
			t.Fatalf("tenant b: %s %s", r.stdout, r.stderr)
		}
	}
	if r := flowhost(t, "status", "--json", "--tenant", "a", "--broker", srv.URL(), floodID); !strings.Contains(r.stdout, `"status": "running"`) {
		t.Fatalf("tenant a's flood is no longer running: the measure is void\n%s", r.stdout)
	}
	slices.Sort(took)
	t.Logf("tenant b's one-task runs during tenant a's flood of long batches: %v (median %s; %s with idle workers)", took, took[2], idle)
	if took[2] > time.Second {
		t.Fatalf("tenant b's median run took %s (%v) behind tenant a's long batches", took[2], took)
	}
	flowhost(t, "cancel", "--tenant", "a", "--broker", srv.URL(), floodID)
}

// TestRedisOutOfMemory: Redis is at maxmemory (noeviction) when a run
// starts. The worker says Redis refuses its writes and keeps the run
// alive, retrying; nothing is dead-lettered or claimed that did not
// happen; the run ends right once Redis accepts writes again.
func TestRedisOutOfMemory(t *testing.T) {
	srv := redistest.Start(t)
	id := submit(t, srv, busyFlow(t, 30))
	admin := srv.Client()
	ctx := t.Context()
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Set(ctx, "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis still accepts writes: %v", err)
	}
	w := worker(t, srv, "w1")
	// Longer than the lease (2 s) times the deliveries a message may have.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if st := status(t, srv, id); st.Status != "pending" {
			t.Fatalf("while Redis refused writes, the run became %s: %+v", st.Status, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n, err := admin.XLen(ctx, "fh:t:default:dead").Result(); err != nil || n != 0 {
		t.Fatalf("dead letters: %d %v", n, err)
	}
	if !strings.Contains(w.output(), "Redis refuses writes") {
		t.Fatalf("the worker did not say Redis refused its writes:\n%s", w.output())
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitResult(t, srv, id, 30)
	if out := w.output(); strings.Contains(out, "dead letter") || !strings.Contains(out, "Redis accepts writes again") {
		t.Fatalf("worker log:\n%s", out)
	}
}

// TestRetryHoldsNoSlot: a retry waits its backoff in the tenant's delayed
// set, not in a worker slot: with one slot, another run goes through
// while a failing task backs off, and the failing run still makes all its
// attempts and fails with the task's own error.
func TestRetryHoldsNoSlot(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	failing := writeFlow(t, "[[step]]\ncall = \"text.fail_if\"\nretries = 5\nargs = { flag = true, message = \"still broken\" }\n")
	id := submit(t, srv, failing)
	// Wait for the first retry to be scheduled.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := status(t, srv, id); len(st.Steps) == 1 && st.Steps[0].Attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry: %+v", status(t, srv, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
	one := writeFlow(t, "[[step]]\ncall = \"flaky.busy\"\n")
	begin := time.Now()
	if out, r := runJSONOut(t, "--broker", srv.URL(), one); out.Status != "succeeded" {
		t.Fatalf("the other run: %s %s", r.stdout, r.stderr)
	}
	if took := time.Since(begin); took > 1500*time.Millisecond {
		t.Errorf("the other run took %s behind a backing-off retry", took)
	}
	r := flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	if r.code != 1 || !strings.Contains(r.stdout, "still broken") {
		t.Fatalf("the failing run: exit %d %s", r.code, r.stdout)
	}
	if st := status(t, srv, id); st.Steps[0].Attempts != 6 {
		t.Fatalf("attempts %d, want 6 (1 + 5 retries)", st.Steps[0].Attempts)
	}
}

// TestClusterACL: on a cluster, with the users `flowhost tenants acl`
// prints set on every node, a tenant runs and reads its own runs and
// none of another's.
func TestClusterACL(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	ctx := t.Context()
	for _, cmd := range labUsers(t) {
		for _, n := range c.Nodes { // ACL users are each node's own
			if err := n.Client().Do(ctx, cmd...).Err(); err != nil {
				t.Fatalf("%v on %s: %v", cmd, n.Addr, err)
			}
		}
	}
	url := func(user, pw string) string {
		return strings.Replace(c.URL(), "redis+cluster://", "redis+cluster://"+user+":"+pw+"@", 1)
	}
	workerURL, acmeURL := url("worker", "worker-pw"), url("acme", "acme-pw")
	if r := flowhost(t, "tenants", "add", "acme", "bravo", "--broker", workerURL); r.code != 0 {
		t.Fatalf("tenants add: exit %d %s", r.code, r.stderr)
	}
	worker(t, redisURL(workerURL), "w1", "--concurrency", "2")
	outA, r := runJSONOut(t, "--broker", acmeURL, "--tenant", "acme", "examples/flows/numbers.toml")
	if outA.Status != "succeeded" {
		t.Fatalf("acme: %s %s", r.stdout, r.stderr)
	}
	outB, r := runJSONOut(t, "--broker", url("bravo", "bravo-pw"), "--tenant", "bravo", "examples/flows/numbers.toml")
	if outB.Status != "succeeded" {
		t.Fatalf("bravo: %s %s", r.stdout, r.stderr)
	}
	for _, cmd := range []string{"status", "wait", "events"} {
		if r := flowhost(t, cmd, "--broker", acmeURL, "--tenant", "acme", outA.RunID); r.code != 0 {
			t.Fatalf("acme's own %s: %d %s", cmd, r.code, r.stderr)
		}
		if r := flowhost(t, cmd, "--broker", acmeURL, "--tenant", "bravo", outB.RunID); r.code == 0 || !strings.Contains(r.stderr, "NOPERM") {
			t.Fatalf("acme's %s of bravo's run: exit %d\n%s%s", cmd, r.code, r.stdout, r.stderr)
		}
	}
}

// redisURL is a broker at a URL.
type redisURL string

func (u redisURL) URL() string { return string(u) }
