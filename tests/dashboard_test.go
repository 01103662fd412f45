package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowhost/flowhost/internal/redistest"
)

// serve starts `flowhost serve` on a free loopback port and returns its
// URL once it answers.
func serve(t *testing.T, srv *redistest.Server, extra ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, append([]string{"serve", "--broker", srv.URL(), "--addr", addr}, extra...)...)
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(url + "/api/v1/session"); err == nil {
			res.Body.Close()
			return url
		}
	}
	t.Fatalf("flowhost serve did not answer:\n%s", p.output())
	return ""
}

// browser is a headless Chromium (Debian's), for the test's lifetime.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the dashboard tests drive Debian's chromium (.ci/run installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1360, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(bctx); err != nil { // the browser lives as long as this first context
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// inBrowser runs browser actions within a deadline.
func inBrowser(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		html, _ := chromedp.Run(hctx, chromedp.OuterHTML(css("main")))
		t.Fatalf("%s: %v\nthe page's main: %.2000s", what, err, html)
	}
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// clickOn clicks the element sel selects, in one evaluation (see textOf).
func clickOn(sel string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		ok, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+string(q)+`); if (!e) return false; e.click(); return true; })()`)(ctx, tg)
		if err == nil && !ok {
			err = fmt.Errorf("nothing to click at %s", sel)
		}
		return err
	})
}

// textOf reads the text of the element sel selects, in one evaluation:
// the page re-renders as its run's events come, so a node found first and
// read after may be gone.
func textOf(sel string) chromedp.Action[string] {
	q, _ := json.Marshal(sel)
	return chromedp.Evaluate[string](`(document.querySelector(` + string(q) + `) || {}).innerText || ""`)
}

// screenshot keeps a PNG of the page: in docs/ when
// FLOWHOST_SCREENSHOTS=1 (to refresh the documentation's), else in a
// temporary folder; either way it must be a real image.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100)) // 100: a PNG
	dir := t.TempDir()
	if os.Getenv("FLOWHOST_SCREENSHOTS") == "1" {
		dir = "../docs"
	}
	if len(png) < 10000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, not a page", name, len(png))
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashboard: in a real browser, during real runs on a real
// redis-server with two workers: a run goes from running to succeeded in
// the list, its page shows its graph's nodes with their status, a
// spinning run is cancelled from its button, a failed run shows its
// error.
func TestDashboard(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	worker(t, srv, "w2")
	url := serve(t, srv)
	ctx := browser(t)

	// The list is open before the run starts, so it sees it run.
	inBrowser(t, ctx, "the run list opens", chromedp.Navigate(url+"/#/runs"), chromedp.WaitVisible(css(`#runs`)))
	busy := submit(t, srv, busyFlow(t, 160)) // ~50 ms a call, 160 calls on two workers of one slot: ~4 s
	row := fmt.Sprintf(`tr[data-run="%s"]`, busy)
	inBrowser(t, ctx, "the run list shows the run running",
		chromedp.WaitVisible(css(row+` .badge[data-status="running"]`)))
	inBrowser(t, ctx, "the run list shows it succeeded",
		chromedp.WaitVisible(css(row+` .badge[data-status="succeeded"]`)))
	screenshot(t, ctx, "dashboard-runs.png")

	inBrowser(t, ctx, "the run's page shows its graph",
		chromedp.Navigate(url+"/#/runs/"+busy),
		chromedp.WaitVisible(css(`#graph .node[data-status="succeeded"]`)))
	nodes := value(t, ctx, "the graph's nodes", chromedp.Evaluate[string](`[...document.querySelectorAll("#graph .node")].map(n => n.dataset.step + "=" + n.dataset.status).join(",")`))
	steps := value(t, ctx, "the steps", textOf(`#steps tbody`))
	if nodes != "map flaky.busy=succeeded" || !strings.Contains(steps, "160/160") {
		t.Fatalf("graph %q, steps %q", nodes, steps)
	}
	inBrowser(t, ctx, "the run's page charts its batches", chromedp.WaitVisible(css(`#batches .batchchart svg rect.ran`)))
	bars := value(t, ctx, "the batches", chromedp.Evaluate[int](`document.querySelectorAll("#batches rect.ran").length`))
	if bars != 160 { // the workers run batches of one call
		t.Fatalf("%d batches charted, want 160", bars)
	}
	screenshot(t, ctx, "dashboard-run.png")

	spin := submit(t, srv, writeFlow(t, "[limits]\ntimeout = \"60s\"\n[[step]]\ncall = \"flaky.spin\"\n"))
	inBrowser(t, ctx, "cancel a spinning run from its button",
		chromedp.Navigate(url+"/#/runs/"+spin),
		chromedp.WaitVisible(css(`#graph .node[data-status="running"]`)),
		clickOn(`#cancel`),
		chromedp.WaitVisible(css(`h1 .badge[data-status="cancelled"]`)))

	// A dataflow run's graph is its DAG: nodes in layers, an edge from each
	// producer.
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	dfFlow := filepath.Join(t.TempDir(), "df.toml")
	os.WriteFile(dfFlow, []byte("mode = \"dataflow\"\ntasks = [\"text.*\"]\noutputs = [\"report\"]\n[plugins]\ntext = "+strconvQuote(textkit)+
		"\n[inputs]\ntext = \"to be or not to be\"\n"), 0o644)
	df := submit(t, srv, dfFlow)
	inBrowser(t, ctx, "a dataflow run's graph",
		chromedp.Navigate(url+"/#/runs/"+df),
		chromedp.WaitVisible(css(`#graph .node[data-step="text.report"][data-status="succeeded"]`)))
	shape := value(t, ctx, "the DAG", chromedp.Evaluate[string](`(() => {
		const xs = new Set([...document.querySelectorAll("#graph .node rect")].map(r => r.getAttribute("x")));
		return document.querySelectorAll("#graph .node").length + " nodes, " + document.querySelectorAll("#graph path.edge").length + " edges, " + xs.size + " layers";
	})()`))
	if shape != "5 nodes, 4 edges, 4 layers" { // split→profile→ratio→report, wordcount→report
		t.Fatalf("the DAG: %s", shape)
	}

	inBrowser(t, ctx, "the workers page lists both workers",
		chromedp.Navigate(url+"/#/workers"),
		chromedp.WaitVisible(css(`tr[data-worker="w1"]`)),
		chromedp.WaitVisible(css(`tr[data-worker="w2"]`)))

	failed := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"text.fail_if\"\nargs = { flag = true, message = \"the widget is broken\" }\n"))
	inBrowser(t, ctx, "a failed run's page shows its error",
		chromedp.Navigate(url+"/#/runs/"+failed),
		chromedp.WaitVisible(css(`#run-error`)))
	msg := value(t, ctx, "the error", textOf(`#run-error`))
	if !strings.Contains(msg, "textkit.fail_if: the widget is broken") {
		t.Fatalf("error shown: %q", msg)
	}

	// A run's own text (here a task's error) is shown as text,
	// never run: the page injects nothing, and its CSP allows no inline
	// script.
	evil := submit(t, srv, writeFlow(t, "[[step]]\ncall = \"text.fail_if\"\nargs = { flag = true, message = \"<script>window.pwned=2</script><img src=x onerror=window.pwned=3>\" }\n"))
	inBrowser(t, ctx, "a run whose texts are HTML",
		chromedp.Navigate(url+"/#/runs/"+evil),
		chromedp.WaitVisible(css(`#run-error`)))
	shown := value(t, ctx, "the error", textOf(`#run-error`))
	injected := value(t, ctx, "what ran", chromedp.Evaluate[string](`String(window.pwned) + "," + document.querySelectorAll("main img, main script").length`))
	if !strings.Contains(shown, "<script>window.pwned=2</script>") || injected != "undefined,0" {
		t.Fatalf("error shown %q; window.pwned and injected elements: %s", shown, injected)
	}
}

// TestDashboardTenants: with tokens, tenant bravo's browser session
// cannot see tenant acme's run: not in its list, not at the run's own
// address.
func TestDashboardTenants(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1")
	tokens := filepath.Join(t.TempDir(), "tokens.toml")
	os.WriteFile(tokens, []byte("[tokens]\n\"acme-secret-0123456789\" = \"acme\"\n\"bravo-secret-0123456789\" = \"bravo\"\n"), 0o600)
	for _, tn := range []string{"acme", "bravo"} {
		if r := flowhost(t, "tenants", "add", tn, "--broker", srv.URL()); r.code != 0 {
			t.Fatalf("tenants add: %s", r.stderr)
		}
	}
	url := serve(t, srv, "--auth", tokens)
	r := flowhost(t, "run", "--detach", "--broker", srv.URL(), "--tenant", "acme", writeFlow(t, "[[step]]\ncall = \"text.upper\"\nargs = { text = \"acme's secret\" }\n"))
	acmeRun := strings.TrimSpace(r.stdout)
	if r.code != 0 || acmeRun == "" {
		t.Fatalf("submit: %s", r.stderr)
	}
	ctx := browser(t)
	signIn := func(token string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(url+"/#/runs"),
			chromedp.WaitVisible(css(`#signin`)),
			chromedp.SendKeys(css(`#token`), token),
			chromedp.Click(css(`#signin button`)), // a click: form.submit() would skip the page's handler
			chromedp.WaitNotVisible(css(`#signin`)),
		)
	}
	inBrowser(t, ctx, "acme signs in and sees its run", signIn("acme-secret-0123456789"),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-run="%s"]`, acmeRun))),
		chromedp.Click(css(`#signout`)),
		// Signing out reloads the page once the session is gone: a
		// navigation before that reload is aborted by it.
		chromedp.WaitVisible(css(`#signin`)))
	inBrowser(t, ctx, "bravo signs in", signIn("bravo-secret-0123456789"),
		chromedp.WaitVisible(css(`#runs .empty`)))
	list := value(t, ctx, "bravo's run list", textOf(`#runs`))
	inBrowser(t, ctx, "bravo opens acme's run", chromedp.Navigate(url+"/#/runs/"+acmeRun), chromedp.WaitVisible(css(`main .error`)))
	page := value(t, ctx, "the page", textOf(`main`))
	if strings.Contains(list, acmeRun) || strings.Contains(page, "secret") || !strings.Contains(page, "no such run") {
		t.Fatalf("bravo's list %q, page %q", list, page)
	}
}

// TestDashboardInProcess: `flowhost run --serve` shows an in-process run
// with no Redis at all: its list, its page while it runs, and its Cancel
// button, which stops it; --hold keeps the page up after the run.
func TestDashboardInProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, "run", "--serve", addr, "--hold", busyFlow(t, 400))
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(url + "/api/v1/session"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dashboard:\n%s", p.output())
		}
	}
	ctx := browser(t)
	inBrowser(t, ctx, "the in-process run, running, from the list",
		chromedp.Navigate(url+"/#/runs"),
		chromedp.WaitVisible(css(`#runs tr[data-run] .badge[data-status="running"]`)),
		clickOn(`#runs tr[data-run] a`),
		chromedp.WaitVisible(css(`#graph .node[data-status="running"]`)),
		chromedp.WaitVisible(css(`#batches rect.ran`)), // its batches, as they settle
		clickOn(`#cancel`),
		chromedp.WaitVisible(css(`h1 .badge[data-status="cancelled"]`)))
	// Held: the page still answers after the run.
	if res, err := http.Get(url + "/api/v1/runs"); err != nil || res.StatusCode != 200 {
		t.Fatalf("after the run: %v %v\n%s", err, res, p.output())
	}
	if !strings.Contains(p.output(), "the dashboard stays up") {
		t.Fatalf("no word of --hold:\n%s", p.output())
	}
}

// TestDashboardControls: a run with a skipped step and a sub-flow, in a
// real browser: the skipped step's badge, the flow step's link to its
// child run, whose page links back to its parent.
func TestDashboardControls(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "w1", "--concurrency", "2")
	url := serve(t, srv)
	ctx := browser(t)
	parent := writeFlow(t, "[inputs]\ntext = \"a b c\"\n[[step]]\ncall = \"text.split\"\nwhen = \"false\"\n[[step]]\nflow = \"child.toml\"\ninputs = { text = \"inputs.text\" }\n")
	textkit, _ := filepath.Abs("../plugins/examples/textkit-go/textkit.wasm")
	os.WriteFile(filepath.Join(filepath.Dir(parent), "child.toml"), []byte("name = \"child\"\n[plugins]\ntext = "+strconvQuote(textkit)+"\n[[step]]\ncall = \"text.split\"\n"), 0o644)
	id := submit(t, srv, parent)
	waitResult := flowhost(t, "wait", "--json", "--broker", srv.URL(), id)
	if !strings.Contains(waitResult.stdout, `"succeeded"`) {
		t.Fatalf("run: %s %s", waitResult.stdout, waitResult.stderr)
	}
	inBrowser(t, ctx, "the run's page shows the skipped step and the sub-flow",
		chromedp.Navigate(url+"/#/runs/"+id),
		chromedp.WaitVisible(css(`#steps .badge[data-status="skipped"]`)),
		chromedp.WaitVisible(css(`#steps a.child`)))
	inBrowser(t, ctx, "the child's page links back to its parent",
		clickOn(`#steps a.child`),
		chromedp.WaitVisible(css(`#parent a`)))
	back := value(t, ctx, "the parent link", textOf(`#parent`))
	if back != "sub-flow of "+id+", step 2" {
		t.Fatalf("the child's page says %q", back)
	}
}
