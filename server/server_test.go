package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/server"
	"github.com/flowhost/flowhost/tenant"
	"github.com/flowhost/flowhost/track"
)

// lab is a redis-server, two workers and the flows the tests submit.
type lab struct {
	client *redis.Client
	eng    *host.Engine
	dir    string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := redistest.Start(t)
	c, err := redis.Dial(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := host.New(ctx, host.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	for range 2 {
		w := redis.NewWorker(c, redis.WorkerConfig{Engine: eng, Concurrency: 2})
		go func() { w.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		eng.Close(context.Background())
		c.Close()
	})
	l := &lab{client: c, eng: eng, dir: t.TempDir()}
	os.WriteFile(filepath.Join(l.dir, "flaky.wasm"), testmod.Module(t, "../tests/testdata/flaky.wat", "../tests/testdata/flaky.json"), 0o644)
	os.WriteFile(filepath.Join(l.dir, "hostile.wasm"), testmod.Module(t, "../host/testdata/hostile.wat", "../host/testdata/hostile.json"), 0o644)
	return l
}

// submit submits a flow (its body after the plugins) as tenant.
func (l *lab) submit(t *testing.T, tenant, name, body string) string {
	t.Helper()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	path := filepath.Join(l.dir, name+".toml")
	os.WriteFile(path, []byte("name = "+quote(name)+"\n[plugins]\nstats = "+quote(stats)+"\nflaky = \"flaky.wasm\"\nhostile = \"hostile.wasm\"\n"+body), 0o644)
	f, err := flowhost.LoadFlow(context.Background(), l.eng, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := runner.NewRunID()
	if err := f.Submit(context.Background(), l.client, id, tenant, time.Hour); err != nil {
		t.Fatal(err)
	}
	return id
}

func (l *lab) wait(t *testing.T, tenant, id string) *redis.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := l.client.Wait(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

const (
	okFlow   = "[inputs]\nx = [1, 2, 3]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n[[step]]\ncall = \"stats.sum\"\n"
	badFlow  = "[inputs]\nx = [1, 2, 3.5]\n[[step]]\nmap = \"stats.is_even\"\nparam = \"x\"\n"
	spinFlow = "[limits]\ntimeout = \"60s\"\n[[step]]\ncall = \"flaky.spin\"\n"
)

// get requests path on ts with token (none when ""), decoding the JSON
// body into v when given.
func do(t *testing.T, ts *httptest.Server, method, path, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q: %s", method, path, ct, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// TestAPI covers every endpoint on a real broker: list, run, events,
// cancel, rerun, tenants, and the errors of bad input.
// submitter is what `flowhost serve` gives the server to take runs.
func (l *lab) submitter() func(context.Context, string, *server.SubmitRequest) (string, error) {
	return func(ctx context.Context, tenant string, req *server.SubmitRequest) (string, error) {
		f, err := flowhost.LoadFlowSource(ctx, l.eng, req.Name, []byte(req.Flow), req.Modules, req.Inputs)
		if err != nil {
			return "", server.Invalid(err)
		}
		id := runner.NewRunID()
		return id, f.Submit(ctx, l.client, id, tenant, time.Hour)
	}
}

// post POSTs body (JSON) to path.
func post(t *testing.T, ts *httptest.Server, path, token string, body any, v any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(string(b)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(v)
	return res.StatusCode
}

func TestAPI(t *testing.T) {
	l := newLab(t)
	ts := httptest.NewServer(server.New(server.Config{Source: l.client, Submit: l.submitter()}))
	defer ts.Close()
	ok := l.submit(t, "default", "ok", okFlow)
	bad := l.submit(t, "default", "bad", badFlow)
	l.wait(t, "default", ok)
	l.wait(t, "default", bad)

	var page redis.RunPage
	if code := do(t, ts, "GET", "/api/v1/runs", "", &page); code != 200 || len(page.Runs) != 2 || page.Runs[0].RunID != bad || page.Runs[1].RunID != ok {
		t.Fatalf("runs: %d %+v", code, page)
	}
	if do(t, ts, "GET", "/api/v1/runs?status=failed", "", &page); len(page.Runs) != 1 || page.Runs[0].RunID != bad || !strings.Contains(page.Runs[0].Error, "must be an integer") {
		t.Fatalf("failed runs: %+v", page)
	}
	if do(t, ts, "GET", "/api/v1/runs?limit=1", "", &page); len(page.Runs) != 1 || page.Next == 0 {
		t.Fatalf("a page of 1: %+v", page)
	}
	var run redis.Status
	if code := do(t, ts, "GET", "/api/v1/runs/"+ok, "", &run); code != 200 || run.Status != track.Succeeded || len(run.Steps) != 2 ||
		run.Steps[0].Status != track.Succeeded || *run.Steps[0].Total != 3 || string(run.Result) != "14" ||
		run.Steps[0].Fuel == 0 || run.Steps[0].PeakMemory < 64<<10 {
		t.Fatalf("run: %d %+v", code, run)
	}

	// The events, from the first, to the end of the stream.
	res, err := ts.Client().Get(ts.URL + "/api/v1/runs/" + ok + "/events")
	if err != nil || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %v %v", err, res.Header)
	}
	var types []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: {\"") {
			var e track.Event
			json.Unmarshal([]byte(line[6:]), &e)
			types = append(types, string(e.Type))
		} else if line == "event: end" {
			break
		}
	}
	res.Body.Close()
	if len(types) < 4 || types[0] != "run_started" || types[len(types)-1] != "run_finished" {
		t.Fatalf("events: %v", types)
	}

	// Cancel a run that spins; rerun a failed one.
	spin := l.submit(t, "default", "spin", spinFlow)
	var c map[string]any
	if code := do(t, ts, "POST", "/api/v1/runs/"+spin+"/cancel", "", &c); code != 200 || c["cancelled"] != true {
		t.Fatalf("cancel: %d %v", code, c)
	}
	if st := l.wait(t, "default", spin); st.Status != track.Cancelled {
		t.Fatalf("cancelled run: %+v", st)
	}
	var rr map[string]string
	if code := do(t, ts, "POST", "/api/v1/runs/"+bad+"/rerun", "", &rr); code != 200 || rr["rerun_of"] != bad {
		t.Fatalf("rerun: %d %v", code, rr)
	}
	if st := l.wait(t, "default", rr["run_id"]); st.RerunOf != bad || st.Status != track.Failed {
		t.Fatalf("the rerun: %+v", st)
	}
	var tenants []map[string]any
	if code := do(t, ts, "GET", "/api/v1/tenants", "", &tenants); code != 200 || len(tenants) == 0 || tenants[0]["name"] != "default" {
		t.Fatalf("tenants: %d %v", code, tenants)
	}
	var workers []redis.WorkerInfo
	if code := do(t, ts, "GET", "/api/v1/workers", "", &workers); code != 200 || len(workers) != 2 || workers[0].Concurrency != 2 ||
		workers[0].Name == workers[1].Name || workers[0].LastSeen == "" {
		t.Fatalf("workers: %d %+v", code, workers)
	}

	// A step's batches: their times, every call in one of them.
	var bt struct {
		Batches []redis.BatchTime `json:"batches"`
	}
	if code := do(t, ts, "GET", "/api/v1/runs/"+ok+"/steps/1/batches", "", &bt); code != 200 || len(bt.Batches) == 0 {
		t.Fatalf("batches: %d %+v", code, bt)
	}
	calls := 0
	for _, b := range bt.Batches {
		calls += b.Calls
		if b.Queued == 0 || b.Started < b.Queued || b.Finished < b.Started {
			t.Fatalf("batch times out of order: %+v", b)
		}
	}
	if calls != 3 {
		t.Fatalf("batches hold %d calls, want 3: %+v", calls, bt)
	}
	if code := do(t, ts, "GET", "/api/v1/runs/"+ok+"/steps/0/batches", "", &bt); code != 400 {
		t.Fatalf("step 0: %d", code)
	}

	// A run's guest log lines.
	chatty := l.submit(t, "default", "chatty", "[[step]]\ncall = \"hostile.chatty\"\n")
	l.wait(t, "default", chatty)
	var logs struct {
		Lines []map[string]any `json:"lines"`
	}
	if code := do(t, ts, "GET", "/api/v1/runs/"+chatty+"/logs", "", &logs); code != 200 || len(logs.Lines) != 3 ||
		logs.Lines[0]["task"] != "chatty" || logs.Lines[0]["level"] != "INFO" || logs.Lines[0]["step"] != "call hostile.chatty" {
		t.Fatalf("logs: %d %+v", code, logs)
	}
	if code := do(t, ts, "GET", "/api/v1/runs/1a2b3c4d/logs", "", &logs); code != 404 {
		t.Fatalf("logs of no run: %d", code)
	}

	// A flow sent whole: its text and its module's bytes.
	stats, _ := os.ReadFile("../plugins/examples/stats-c/stats.wasm")
	flowText := "name = \"sent\"\n[plugins]\nstats = \"nowhere/stats.wasm\"\n[inputs]\nx = [1, 2]\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n"
	var sent map[string]string
	if code := post(t, ts, "/api/v1/runs", "", map[string]any{"flow": flowText, "modules": map[string][]byte{"stats": stats}, "inputs": map[string]any{"x": []int{3, 4}}}, &sent); code != 200 {
		t.Fatalf("submit: %d %v", code, sent)
	}
	if st := l.wait(t, "default", sent["run_id"]); st.Status != track.Succeeded || string(st.Result) != "[9,16]" || st.Name != "sent" {
		t.Fatalf("the sent run: %+v", st)
	}
	for _, c := range []struct {
		body   any
		errHas string
	}{
		{map[string]any{"flow": flowText}, "plugin stats: its module was not sent"},
		{map[string]any{"flow": flowText, "modules": map[string][]byte{"stats": []byte("not wasm")}}, "plugin stats"},
		{map[string]any{"flow": "[[step]\n", "modules": map[string][]byte{}}, "flow.toml:2:7: expected end of table array name"},
		{map[string]any{"flow": flowText, "modules": map[string][]byte{"stats": stats, "other": stats}}, `module "other": the flow has no plugin`},
		{map[string]any{"flow": flowText, "modules": map[string][]byte{"stats": stats}, "inputs": map[string]any{"y": 1}}, `no task of the flow reads an input "y"`},
		{map[string]any{"flow": ""}, "flow: the flow file's text is empty"},
		{map[string]any{"flow": flowText, "extra": 1}, "unknown field"},
		{"not an object", "the body must be"},
	} {
		var e map[string]string
		if code := post(t, ts, "/api/v1/runs", "", c.body, &e); code != 400 || !strings.Contains(e["error"], c.errHas) {
			t.Errorf("submit %v: %d %q; want 400 and %q", c.body, code, e["error"], c.errHas)
		}
	}

	// Every answer has the shape openapi.json gives it.
	for _, c := range []struct{ path, described string }{
		{"/api/v1/runs", "/runs"}, {"/api/v1/runs/" + ok, "/runs/{id}"}, {"/api/v1/runs/" + bad, "/runs/{id}"},
		{"/api/v1/tenants", "/tenants"}, {"/api/v1/workers", "/workers"}, {"/api/v1/session", "/session"},
		{"/api/v1/runs/" + chatty + "/logs", "/runs/{id}/logs"},
		{"/api/v1/runs/" + ok + "/steps/1/batches", "/runs/{id}/steps/{step}/batches"},
	} {
		var v any
		do(t, ts, "GET", c.path, "", &v)
		conforms(t, c.path, responseSchema(t, "GET", c.described), v)
	}

	// Without tokens, only a loopback name: a page elsewhere that rebinds
	// its name to 127.0.0.1 must not read the runs.
	for host, want := range map[string]int{"evil.example:8080": 403, "evil.example": 403, "10.0.0.1:80": 403,
		"localhost:8080": 200, "127.0.0.1:9": 200, "[::1]:80": 200, "LOCALHOST.": 200} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/runs", nil)
		req.Host = host
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}

	// Bad input: a clear JSON error with the right status, never a 500.
	for _, c := range []struct {
		method, path string
		code         int
		errHas       string
	}{
		{"GET", "/api/v1/runs/1a2b3c4d", 404, "no such run"},
		{"GET", "/api/v1/runs/bad:id", 400, "run id"},
		{"GET", "/api/v1/runs?tenant=a*b", 400, "tenant"},
		{"GET", "/api/v1/runs?limit=0", 400, "limit"},
		{"GET", "/api/v1/runs?limit=x", 400, "limit"},
		{"GET", "/api/v1/runs?status=done", 400, "status"},
		{"GET", "/api/v1/runs?before=-3", 400, "before"},
		{"GET", "/api/v1/runs/" + ok + "/events?tenant=x:y", 400, "tenant"},
		{"POST", "/api/v1/runs/1a2b3c4d/cancel", 404, "no such run"},
		{"POST", "/api/v1/runs/1a2b3c4d/rerun", 404, "no such run"},
		{"POST", "/api/v1/runs/" + ok + "/rerun?from=0", 400, "from"},
		{"GET", "/api/v1/nothing", 404, "no such API endpoint"},
		{"POST", "/api/v1/session", 400, "needs no token"},
	} {
		var e map[string]string
		if code := do(t, ts, c.method, c.path, "", &e); code != c.code || !strings.Contains(e["error"], c.errHas) {
			t.Errorf("%s %s: %d %q; want %d and %q", c.method, c.path, code, e["error"], c.code, c.errHas)
		}
	}
}

// TestAPITenants: with tokens, a tenant's token sees and acts on that
// tenant's runs only; an operator's sees every tenant's; no token or a
// bad one is 401; a cookie session's changes need the dashboard's header.
func TestAPITenants(t *testing.T) {
	l := newLab(t)
	tokens := filepath.Join(t.TempDir(), "tokens.toml")
	os.WriteFile(tokens, []byte("[tokens]\n\"acme-0123456789abcdef\" = \"acme\"\n\"bravo-0123456789abcdef\" = \"bravo\"\n\"ops-0123456789abcdef\" = \"*\"\n"), 0o600)
	tk, err := server.LoadTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Config{Source: l.client, Tokens: tk}))
	defer ts.Close()
	acmeRun := l.submit(t, "acme", "ok", okFlow)
	l.wait(t, "acme", acmeRun)
	const acme, bravo, ops = "acme-0123456789abcdef", "bravo-0123456789abcdef", "ops-0123456789abcdef"

	var page redis.RunPage
	if do(t, ts, "GET", "/api/v1/runs", acme, &page); len(page.Runs) != 1 || page.Runs[0].RunID != acmeRun {
		t.Fatalf("acme's runs: %+v", page)
	}
	if do(t, ts, "GET", "/api/v1/runs", bravo, &page); len(page.Runs) != 0 {
		t.Fatalf("bravo sees %+v", page)
	}
	if do(t, ts, "GET", "/api/v1/runs?tenant=acme", ops, &page); len(page.Runs) != 1 {
		t.Fatalf("the operator sees %+v", page)
	}
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/api/v1/runs?tenant=acme", bravo, 403},
		{"GET", "/api/v1/runs/" + acmeRun + "?tenant=acme", bravo, 403},
		{"GET", "/api/v1/runs/" + acmeRun, bravo, 404}, // looked up among bravo's runs
		{"GET", "/api/v1/runs/" + acmeRun + "/events", bravo, 404},
		{"POST", "/api/v1/runs/" + acmeRun + "/cancel", bravo, 404},
		{"POST", "/api/v1/runs/" + acmeRun + "/rerun?tenant=acme", bravo, 403},
		{"GET", "/api/v1/runs", "", 401},
		{"GET", "/api/v1/runs", "not-a-token-at-all", 401},
		{"GET", "/api/v1/tenants", "", 401},
		{"GET", "/api/v1/workers", bravo, 403},
		{"GET", "/api/v1/workers", ops, 200},
		{"GET", "/api/v1/runs/" + acmeRun, acme, 200},
	} {
		var v any
		if code := do(t, ts, c.method, c.path, c.token, &v); code != c.code {
			t.Errorf("%s %s as %q: %d %v; want %d", c.method, c.path, c.token, code, v, c.code)
		}
		if c.code != 200 && strings.Contains(strings.ToLower(jsonString(v)), "square") {
			t.Errorf("%s %s as %q: a refusal that shows the run: %v", c.method, c.path, c.token, v)
		}
	}
	// With tokens, any Host: the token is what is checked.
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/runs", nil)
	req.Host = "flowhost.example.com"
	req.Header.Set("Authorization", "Bearer "+acme)
	if res, err := ts.Client().Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("a token through another Host: %v %v", err, res)
	}
	var ten []map[string]any
	if do(t, ts, "GET", "/api/v1/tenants", bravo, &ten); len(ten) != 1 || ten[0]["name"] != "bravo" {
		t.Fatalf("bravo's tenants: %v", ten)
	}

	// A browser session: the token in an HttpOnly cookie.
	res, err := ts.Client().Post(ts.URL+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+bravo+`"}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign in: %v %v", err, res.Status)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "flowhost_token" && c.HttpOnly && c.SameSite == http.SameSiteStrictMode {
			cookie = c
		}
	}
	res.Body.Close()
	if cookie == nil {
		t.Fatal("no HttpOnly, SameSite=Strict session cookie")
	}
	req, _ = http.NewRequest("POST", ts.URL+"/api/v1/runs/"+acmeRun+"/rerun", nil)
	req.AddCookie(cookie)
	if res, _ := ts.Client().Do(req); res.StatusCode != 403 {
		t.Fatalf("a change by cookie without X-Flowhost: %s", res.Status)
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// conforms checks an answer against a schema of openapi.json: its type,
// the properties it requires, and so on down through arrays and refs.
func conforms(t *testing.T, what string, schema map[string]any, v any) {
	t.Helper()
	var doc map[string]any
	json.Unmarshal(server.OpenAPI, &doc)
	var check func(path string, s map[string]any, v any)
	check = func(path string, s map[string]any, v any) {
		if ref, ok := s["$ref"].(string); ok {
			name := ref[strings.LastIndexByte(ref, '/')+1:]
			s = doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		}
		switch s["type"] {
		case "object":
			m, ok := v.(map[string]any)
			if !ok {
				t.Errorf("%s%s: %v is not an object", what, path, v)
				return
			}
			for _, r := range s["required"].([]any) {
				if _, ok := m[r.(string)]; !ok {
					t.Errorf("%s%s lacks %q, which openapi.json requires: %v", what, path, r, m)
				}
			}
			props, _ := s["properties"].(map[string]any)
			for k, pv := range m {
				if ps, ok := props[k].(map[string]any); ok {
					check(path+"."+k, ps, pv)
				}
			}
		case "array":
			a, ok := v.([]any)
			if !ok {
				t.Errorf("%s%s: %v is not an array", what, path, v)
				return
			}
			for i, e := range a {
				check(fmt.Sprintf("%s[%d]", path, i), s["items"].(map[string]any), e)
			}
		case "string":
			if _, ok := v.(string); !ok {
				t.Errorf("%s%s: %v is not a string", what, path, v)
			}
		case "integer", "number":
			if _, ok := v.(float64); !ok {
				t.Errorf("%s%s: %v is not a number", what, path, v)
			}
		}
	}
	check("", schema, v)
}

// responseSchema is the 200 schema openapi.json gives method path.
func responseSchema(t *testing.T, method, path string) map[string]any {
	var doc map[string]any
	json.Unmarshal(server.OpenAPI, &doc)
	op := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	return op["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
}

// TestAPIQuotas: a tenant's quotas are what each live worker allows it.
func TestAPIQuotas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := redistest.Start(t)
	c, err := redis.Dial(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := tenant.Parse("worker.toml", []byte("[tenants.acme]\nmax_concurrent = 3\ntimeout = \"5s\"\nmemory = \"64MiB\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := host.New(ctx, host.Config{CacheDir: t.TempDir()})
	done := make(chan struct{})
	w := redis.NewWorker(c, redis.WorkerConfig{Engine: eng, Name: "limited", Tenants: cfg})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done; eng.Close(context.Background()) }()
	if err := c.AddTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Config{Source: c}))
	defer ts.Close()
	var tenants []struct {
		Name   string                 `json:"name"`
		Quotas map[string]redis.Quota `json:"quotas"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		do(t, ts, "GET", "/api/v1/tenants", "", &tenants)
		if len(tenants) == 1 && tenants[0].Quotas["limited"].MaxConcurrent == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenants: %+v", tenants)
		}
	}
	if q := tenants[0].Quotas["limited"]; q.TimeoutMS != 5000 || q.Memory != 64<<20 {
		t.Fatalf("acme's quota on worker limited: %+v", q)
	}
}
