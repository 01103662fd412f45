package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
)

// tenantsLab is a broker with the documented users (worker, acme,
// bravo), both tenants registered, and two workers serving them under a
// worker.toml: the ground on which acme attacks bravo.
type tenantsLab struct {
	srv                          *redistest.Server
	workerURL, acmeURL, bravoURL string
	acme                         *redis.Client // acme's own credentials, as an attacker holds them
	workers                      []*proc
	metrics                      []string
	dir                          string
	flaky, stats                 string // module paths
	statsSHA                     string
}

// labUsers are the ACL SETUSER commands of the worker, acme and bravo
// (passwords worker-pw, acme-pw, bravo-pw), exactly as `flowhost
// tenants acl` prints them.
func labUsers(t *testing.T) [][]any {
	t.Helper()
	var cmds [][]any
	for _, args := range [][]string{{"tenants", "acl", "--worker", "--password", "worker-pw"},
		{"tenants", "acl", "acme", "--password", "acme-pw"}, {"tenants", "acl", "bravo", "--password", "bravo-pw"}} {
		r := flowhost(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d %s", args, r.code, r.stderr)
		}
		var cmd []any
		for _, f := range strings.Fields(r.stdout) {
			cmd = append(cmd, f)
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

func newTenantsLab(t *testing.T) *tenantsLab {
	t.Helper()
	l := &tenantsLab{srv: redistest.Start(t), dir: t.TempDir()}
	url := func(user, pw string) string { return "redis://" + user + ":" + pw + "@" + l.srv.Addr + "/0" }
	l.workerURL, l.acmeURL, l.bravoURL = url("worker", "worker-pw"), url("acme", "acme-pw"), url("bravo", "bravo-pw")
	admin := l.srv.Client()
	for _, cmd := range labUsers(t) {
		if err := admin.Do(t.Context(), cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	if r := flowhost(t, "tenants", "add", "acme", "bravo", "--broker", l.workerURL); r.code != 0 {
		t.Fatalf("tenants add: exit %d %s", r.code, r.stderr)
	}
	l.acme = redis.NewClient(&redis.Options{Addr: l.srv.Addr, Username: "acme", Password: "acme-pw"})
	t.Cleanup(func() { l.acme.Close() })

	l.flaky = filepath.Join(l.dir, "flaky.wasm")
	if err := os.WriteFile(l.flaky, testmod.Module(t, "testdata/flaky.wat", "testdata/flaky.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.stats, _ = filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	b, err := os.ReadFile(l.stats)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	l.statsSHA = hex.EncodeToString(sum[:])

	cfg := filepath.Join(l.dir, "worker.toml")
	if err := os.WriteFile(cfg, []byte("[tenants.acme]\nmax_concurrent = 1\ntimeout = \"5s\"\nmemory = \"64MiB\"\n\n[tenants.bravo]\nmax_concurrent = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w1", "w2"} {
		w := start(t, "worker", "--broker", l.workerURL, "--name", name, "--config", cfg,
			"--concurrency", "2", "--batch-size", "4", "--metrics-addr", "127.0.0.1:0")
		l.workers = append(l.workers, w)
	}
	for _, w := range l.workers {
		var u string
		for deadline := time.Now().Add(20 * time.Second); u == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := metricsURLRe.FindStringSubmatch(w.output()); m != nil {
				u = m[1]
			}
		}
		if u == "" {
			t.Fatalf("no metrics URL in the worker's log:\n%s", w.output())
		}
		l.metrics = append(l.metrics, u)
	}
	return l
}

// flow writes a flow file in the lab's directory.
func (l *tenantsLab) flow(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(l.dir, name+".toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// submit submits a flow detached as tenant and returns the run id.
func (l *tenantsLab) submit(t *testing.T, url, tenant, flow string) string {
	t.Helper()
	r := flowhost(t, "run", "--detach", "--broker", url, "--tenant", tenant, flow)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" {
		t.Fatalf("submit as %s: exit %d\n%s%s", tenant, r.code, r.stdout, r.stderr)
	}
	return id
}

// wait waits for a run with the tenant's own credentials.
func (l *tenantsLab) wait(t *testing.T, url, tenant, id string) runJSON {
	t.Helper()
	r := flowhost(t, "wait", "--json", "--broker", url, "--tenant", tenant, id)
	var out runJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("wait %s: exit %d %s %s", id, r.code, r.stdout, r.stderr)
	}
	return out
}

// plant writes a message into acme's own stream, as acme may.
func (l *tenantsLab) plant(t *testing.T, body string) {
	t.Helper()
	if err := l.acme.XAdd(t.Context(), &redis.XAddArgs{Stream: "fh:t:acme:q", Values: []any{"m", body}}).Err(); err != nil {
		t.Fatalf("acme's XADD to its own stream: %v", err)
	}
}

// alive fails the test if a worker exited.
func (l *tenantsLab) alive(t *testing.T) {
	t.Helper()
	for i, w := range l.workers {
		if w.cmd.ProcessState != nil || w.cmd.Process.Signal(syscall.Signal(0)) != nil {
			t.Fatalf("worker w%d is gone:\n%s", i+1, w.output())
		}
	}
}

// refused sums flowhost_messages_refused_total over both workers.
func (l *tenantsLab) refused(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, u := range l.metrics {
		for k, v := range scrape(t, u) {
			if m := refusedRe.FindStringSubmatch(k); m != nil {
				out[m[1]] += v
			}
		}
	}
	return out
}

var refusedRe = regexp.MustCompile(`^flowhost_messages_refused_total\{reason="([a-z_]+)",tenant="[a-z]*"\}$`)

func ones(t *testing.T, res json.RawMessage, n int) {
	t.Helper()
	var got []int
	if err := json.Unmarshal(res, &got); err != nil || len(got) != n {
		t.Fatalf("result %s: want %d ones", res, n)
	}
	for i, v := range got {
		if v != 1 {
			t.Fatalf("element %d = %d in %s", i, v, res)
		}
	}
}

// TestTenantAttacks: acme, holding its own documented credentials, tries
// every way it has to read, end, redirect or slow bravo's runs, to run
// bravo's module, to pass for another tenant, and to stop the workers.
// Each is contained: bravo's runs end right and private, acme's own run
// too, the workers stay up, and each refusal is logged and counted.
func TestTenantAttacks(t *testing.T) {
	l := newTenantsLab(t)
	ctx := t.Context()

	// bravo's run: its input is a secret; a second step keeps it running.
	const secret = 7349201
	xs := make([]string, 24)
	for i := range xs {
		xs[i] = fmt.Sprint(secret)
	}
	bravoFlow := l.flow(t, "bravo", fmt.Sprintf("[plugins]\nstats = %q\nflaky = %q\n[inputs]\nx = [%s]\n"+
		"[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\nmap = \"flaky.busy\"\n", l.stats, l.flaky, strings.Join(xs, ",")))
	// acme's own run, whose "stats" is its own module (flaky) under the
	// alias bravo uses. Its inputs differ, so that no call is a cache hit
	// and the run goes on while messages are planted.
	acmeXs := make([]string, 16)
	for i := range acmeXs {
		acmeXs[i] = fmt.Sprint(i)
	}
	acmeFlow := l.flow(t, "acme", fmt.Sprintf("[plugins]\nstats = %q\n[inputs]\nx = [%s]\n[[step]]\nmap = \"stats.busy\"\nparam = \"x\"\n",
		l.flaky, strings.Join(acmeXs, ",")))

	bravo := l.submit(t, l.bravoURL, "bravo", bravoFlow)
	own := l.submit(t, l.acmeURL, "acme", acmeFlow)

	t.Run("listing and watching the keyspace", func(t *testing.T) {
		for _, cmd := range [][]any{
			{"SCAN", "0"}, {"KEYS", "*"}, {"RANDOMKEY"}, {"DBSIZE"}, {"PUBSUB", "CHANNELS"}, {"PUBSUB", "NUMPAT"},
			{"PUBSUB", "NUMSUB", "fh:t:bravo:done"}, {"INFO", "keyspace"}, {"CLIENT", "LIST"}, {"MONITOR"},
			{"CONFIG", "GET", "*"}, {"OBJECT", "ENCODING", "fh:t:acme:q"}, {"TYPE", "fh:t:acme:q"},
			{"EVAL", "return redis.call('SCAN', 0)", "0"}, {"FUNCTION", "LIST"}, {"SCRIPT", "LOAD", "return 1"},
			{"SMEMBERS", "fh:tenants"}, {"SADD", "fh:tenants", "acme-two"}, {"SREM", "fh:tenants", "bravo"},
			{"XREADGROUP", "GROUP", "workers", "spy", "STREAMS", "fh:t:acme:q", ">"},
			{"XRANGE", "fh:t:bravo:q", "-", "+"}, {"HGETALL", "fh:t:bravo:run:" + bravo}, {"HGETALL", "fh:t:bravo:run:" + bravo + ":failed"},
			{"GET", "fh:t:bravo:mod:" + strings.Repeat("0", 64)}, {"GET", "fh:tenants"},
			{"HSET", "fh:t:bravo:run:" + bravo, "status", "succeeded"}, {"DEL", "fh:t:bravo:q"},
			{"XADD", "fh:t:bravo:q", "*", "m", `{"k":"finish","r":"` + bravo + `"}`},
			{"PUBLISH", "fh:t:bravo:cancel", bravo}, {"ACL", "LIST"}, {"ACL", "WHOAMI"}, {"FLUSHALL"},
		} {
			err := l.acme.Do(ctx, cmd...).Err()
			if err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("acme ran %v: %v", cmd, err)
			}
		}
		sub := l.acme.Subscribe(ctx, "fh:t:bravo:done")
		defer sub.Close()
		if _, err := sub.Receive(ctx); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("acme subscribed to bravo's channel: %v", err)
		}
		psub := l.acme.PSubscribe(ctx, "__keyspace@0__:*")
		defer psub.Close()
		if _, err := psub.Receive(ctx); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("acme watched the keyspace: %v", err)
		}
	})

	t.Run("forged tenants", func(t *testing.T) {
		for _, name := range []string{"acme:evil", "acme:*", "Acme", "bravo:x", strings.Repeat("a", 65)} {
			r := flowhost(t, "run", "--broker", l.acmeURL, "--tenant", name, acmeFlow)
			if r.code != 2 || !strings.Contains(r.stdout+r.stderr, "invalid tenant name") {
				t.Errorf("--tenant %q: exit %d %s%s", name, r.code, r.stdout, r.stderr)
			}
		}
		// acme may write keys under its own pattern that look like another
		// tenant's stream; no worker reads them, nor a channel of one.
		l.acme.XAdd(ctx, &redis.XAddArgs{Stream: "fh:t:acme:evil:q", Values: []any{"m", `{"k":"finish","r":"` + bravo + `"}`}})
		l.acme.Publish(ctx, "fh:t:acme:evil:cancel", bravo)
		l.acme.Publish(ctx, "fh:t:acme:cancel", bravo)
		r := flowhost(t, "tenants", "add", "acme-two", "--broker", l.acmeURL)
		if r.code == 0 || !strings.Contains(r.stderr, "NOPERM") {
			t.Errorf("acme registered a tenant: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("planted messages", func(t *testing.T) {
		// Messages naming bravo's run, of every kind, each claiming bravo.
		for _, body := range []string{
			`{"k":"finish","r":"%s","t":"bravo"}`, `{"k":"step","r":"%s","t":"bravo","s":1}`,
			`{"k":"call","r":"%s","t":"bravo","s":1,"in":[{"x":1}]}`, `{"k":"done","r":"%s","t":"bravo","s":0}`,
			`{"k":"init","r":"%s","t":"bravo"}`, `{"k":"call","r":"%s","t":"bravo","s":0,"b":0,"in":[{"x":2}]}`,
		} {
			l.plant(t, fmt.Sprintf(body, bravo))
		}
		// Messages no worker writes, on acme's own running run.
		many := strings.TrimSuffix(strings.Repeat(`{"x":0},`, 5000), ",")
		for _, body := range []string{
			`not json`, `{"k":"nuke","r":"%s"}`, `{"k":"call","r":"a:b"}`, `{"k":"step","r":"%s","s":99}`,
			`{"k":"call","r":"%s","s":99,"in":[{}]}`, `{"k":"call","r":"%s","s":0,"ti":7,"in":[{}]}`,
			`{"k":"call","r":"%s","s":-1,"in":[{}]}`, `{"k":"call","r":"%s","s":0,"i":2147483648,"in":[{}]}`,
			`{"k":"call","r":"%s","s":0,"i":-5,"in":[{}]}`, `{"k":"call","r":"%s","s":0,"in":[]}`,
			`{"k":"call","r":"%s","s":0,"in":[` + many + `]}`, `{"k":"done","r":"%s","s":0}`,
			`{"k":"call","r":"%s","s":0,"in":[{}],"el":[1,2]}`, `{"k":"step","r":"` + strings.Repeat("z", 100) + `"}`,
			`{"k":"init","r":"%s","s":0,"in":[{}]}`, `[1,2,3]`, `{"k":"finish"}`, ``,
		} {
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, own)
			}
			l.plant(t, body)
		}
	})

	t.Run("a foreign module's hash", func(t *testing.T) {
		// acme's own finished run's spec, rewritten to name bravo's
		// module (which every worker has loaded for bravo) by sha256.
		if out := l.wait(t, l.acmeURL, "acme", own); out.Status != "succeeded" {
			t.Fatalf("acme's own run: %+v", out)
		}
		spec, err := l.acme.HGet(ctx, "fh:t:acme:run:"+own, "spec").Result()
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal([]byte(spec), &s); err != nil {
			t.Fatal(err)
		}
		forged := "0190000000000forged"
		s["id"] = forged
		s["modules"] = map[string]string{"stats": l.statsSHA}
		b, _ := json.Marshal(s)
		body := strings.ReplaceAll(string(b), `"busy"`, `"square"`)
		if err := l.acme.HSet(ctx, "fh:t:acme:run:"+forged, "spec", body, "status", "pending").Err(); err != nil {
			t.Fatal(err)
		}
		l.plant(t, `{"k":"init","r":"`+forged+`"}`)
		out := l.wait(t, l.acmeURL, "acme", forged)
		if out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "never uploaded for tenant acme") {
			t.Fatalf("acme ran bravo's module: %+v %v", out, *out.Error)
		}
	})

	t.Run("a module over the memory limit", func(t *testing.T) {
		big := filepath.Join(l.dir, "bigmem.wasm")
		if err := os.WriteFile(big, testmod.Module(t, "testdata/bigmem.wat", "testdata/bigmem.json"), 0o644); err != nil {
			t.Fatal(err)
		}
		f := l.flow(t, "big", fmt.Sprintf("[plugins]\nbig = %q\n[[step]]\ncall = \"big.run\"\n", big))
		out := l.wait(t, l.acmeURL, "acme", l.submit(t, l.acmeURL, "acme", f))
		if out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "memory") {
			t.Fatalf("module over the memory limit: %+v", out)
		}
		l.alive(t)
	})

	// bravo's run ended right, untouched by any of it.
	out := l.wait(t, l.bravoURL, "bravo", bravo)
	if out.Status != "succeeded" {
		t.Fatalf("bravo's run: %+v %s", out, *out.Error)
	}
	ones(t, out.Result, len(xs))
	// Nothing of bravo's reached acme's stream.
	msgs, err := l.acme.XRange(ctx, "fh:t:acme:q", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if s := fmt.Sprint(m.Values); strings.Contains(s, fmt.Sprint(secret)) || strings.Contains(s, fmt.Sprint(secret*secret)) {
			t.Errorf("bravo's data in acme's stream: %s", s)
		}
	}
	l.alive(t)
	got := l.refused(t)
	if got["invalid"]+got["unreadable"] < 15 {
		t.Errorf("refusals counted: %v", got)
	}
	logs := l.workers[0].output() + l.workers[1].output()
	if os.Getenv("FLOWHOST_SHOW_LOGS") != "" {
		t.Log(logs)
	}
	if !strings.Contains(logs, "message refused") || strings.Contains(logs, "panic") {
		t.Errorf("worker logs:\n%s", logs)
	}

	t.Run("a stream replaced by another type", func(t *testing.T) {
		// acme may overwrite its own stream; that must cost bravo nothing.
		if err := l.acme.Set(ctx, "fh:t:acme:q", "not a stream", 0).Err(); err != nil {
			t.Fatal(err)
		}
		one := l.flow(t, "one", fmt.Sprintf("[plugins]\nstats = %q\n[inputs]\nvalues = [1, 2]\n[[step]]\ncall = \"stats.sum\"\n", l.stats))
		for range 3 {
			start := time.Now()
			out := l.wait(t, l.bravoURL, "bravo", l.submit(t, l.bravoURL, "bravo", one))
			if out.Status != "succeeded" {
				t.Fatalf("bravo's run beside a broken stream: %+v", out)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("bravo's one-call run took %s beside acme's broken stream", d)
			}
		}
		if !strings.Contains(l.workers[0].output()+l.workers[1].output(), "stream cannot be read") {
			t.Errorf("no worker said acme's stream was broken")
		}
		l.alive(t)
	})
}

// TestTenantsCommand: operators register, list and remove tenants; a bad
// name is refused before anything is written.
func TestTenantsCommand(t *testing.T) {
	srv := redistest.Start(t)
	if r := flowhost(t, "tenants", "add", "acme", "bravo", "--broker", srv.URL()); r.code != 0 || r.stdout != "registered acme\nregistered bravo\n" {
		t.Fatalf("add: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := flowhost(t, "tenants", "add", "ok", "acme:evil", "--broker", srv.URL()); r.code != 2 || !strings.Contains(r.stderr, `invalid tenant name: "acme:evil"`) {
		t.Fatalf("add acme:evil: %d %s", r.code, r.stderr)
	}
	if r := flowhost(t, "tenants", "remove", "bravo", "nobody", "--broker", srv.URL()); r.code != 0 || r.stdout != "removed bravo\nnobody was not registered\n" {
		t.Fatalf("remove: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := flowhost(t, "tenants", "list", "--broker", srv.URL()); r.code != 0 || r.stdout != "acme\n" {
		t.Fatalf("list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := flowhost(t, "tenants", "acl", "--broker-is-not-a-flag-here"); r.code != 2 {
		t.Fatalf("acl with a bad flag: %d", r.code)
	}
	if r := flowhost(t, "tenants", "acl"); r.code != 2 || !strings.Contains(r.stderr, "name a tenant, or give --worker") {
		t.Fatalf("acl without a tenant: %d %s", r.code, r.stderr)
	}
}

// TestStepInputBound: args are copied into every call of a map, so a
// small flow could make a host build gigabytes of inputs; a step's calls
// may carry at most 64 MiB between them, in-process and on workers.
func TestStepInputBound(t *testing.T) {
	texts := strings.TrimSuffix(strings.Repeat(`"a",`, 100), ",")
	flow := writeFlow(t, fmt.Sprintf("[inputs]\ntext = [%s]\n[[step]]\nmap = \"text.split\"\nparam = \"text\"\nargs = { sep = %q }\n",
		texts, strings.Repeat("z", 1<<20)))
	out, r := runJSONOut(t, flow)
	if r.code != 1 || out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "add up to more than 64 MiB") {
		t.Fatalf("in-process: exit %d %+v", r.code, out)
	}
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	out, r = runJSONOut(t, "--broker", srv.URL(), flow)
	if r.code != 1 || out.Status != "failed" || out.Error == nil || !strings.Contains(*out.Error, "add up to more than 64 MiB") {
		t.Fatalf("on a worker: exit %d %+v", r.code, out)
	}
}
