package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowhost/flowhost/internal/redistest"
)

// BenchmarkDashboardLoad measures what an open dashboard adds to Redis:
// the commands per second Redis processes while a 100,000-element map
// runs on two worker processes, with no dashboard (closed), and with
// Debian's headless chromium showing the run's page (open: its events
// streamed, the page refreshed as they come), in the same run.
func BenchmarkDashboardLoad(b *testing.B) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		b.Fatalf("needs Debian's chromium: %v", err)
	}
	srv := redistest.Start(b, "--appendfsync", "everysec")
	bin := flowhostBin(b)
	startWorkers(b, bin, srv, 2, "--concurrency", "1", "--no-cache")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	serve := exec.Command(bin, "serve", "--broker", srv.URL(), "--addr", addr)
	if err := serve.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	for i := 0; ; i++ {
		if res, err := http.Get("http://" + addr + "/api/v1/session"); err == nil {
			res.Body.Close()
			break
		}
		if i > 200 {
			b.Fatal("serve did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := b.TempDir()
	stats, _ := filepath.Abs("../plugins/examples/stats-c/stats.wasm")
	xs := make([]int, redisN)
	for i := range xs {
		xs[i] = i % 1000
	}
	xj, _ := json.Marshal(xs)
	input := filepath.Join(dir, "x.json")
	os.WriteFile(input, xj, 0o644)
	flow := filepath.Join(dir, "map.toml")
	os.WriteFile(flow, []byte(fmt.Sprintf("[plugins]\nstats = %q\n[[step]]\nmap = \"stats.square\"\nparam = \"x\"\n", stats)), 0o644)
	rdb := srv.Client()
	commands := func() int64 {
		info, _ := rdb.Info(context.Background(), "stats").Result()
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/#/runs")); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, open bool) {
		var total, cmds float64
		for b.Loop() {
			id, err := exec.Command(bin, "run", "--detach", "--broker", srv.URL(), "--input", "x=@"+input, flow).Output()
			if err != nil {
				b.Fatal(err)
			}
			if !open {
				if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
					b.Fatal(err)
				}
			}
			c0, t0 := commands(), time.Now()
			if open {
				if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/#/runs/"+strings.TrimSpace(string(id)))); err != nil {
					b.Fatal(err)
				}
			}
			out, err := exec.Command(bin, "wait", "--json", "--broker", srv.URL(), strings.TrimSpace(string(id))).Output()
			if err != nil || !strings.Contains(string(out), `"succeeded"`) {
				b.Fatalf("wait: %v %.200s", err, out)
			}
			total += time.Since(t0).Seconds()
			cmds += float64(commands() - c0)
		}
		b.ReportMetric(cmds/total, "redis-cmds/s")
		b.ReportMetric(cmds/float64(b.N), "redis-cmds/run")
		b.ReportMetric(float64(redisN)*float64(b.N)/total, "items/s")
	}
	// Warm: the workers fetch and compile the module.
	if out, err := exec.Command(bin, "run", "--broker", srv.URL(), "--input", "x=@"+input, flow).CombinedOutput(); err != nil {
		b.Fatalf("warm-up: %v %s", err, out)
	}
	b.Run("closed", func(b *testing.B) { run(b, false) })
	b.Run("open", func(b *testing.B) { run(b, true) })
}
