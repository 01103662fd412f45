package tests

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
)

// TestScheduleExactlyOnce: a cron schedule of one tick a second, fired
// by three workers, one of them SIGKILLed at a tick, makes exactly one
// run per tick: none twice, none missed.
func TestScheduleExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	var ws []*proc
	for _, name := range []string{"s1", "s2", "s3"} {
		ws = append(ws, worker(t, srv, name, "--concurrency", "2"))
	}
	flow := writeFlow(t, "[schedule]\ncron = \"* * * * * *\"\n[inputs]\ntext = \"a b\"\n[[step]]\ncall = \"text.split\"\n")
	if r := flowhost(t, "schedule", "add", "--broker", srv.URL(), "--name", "every-second", flow); r.code != 0 || !strings.Contains(r.stdout, "schedule every-second (tenant default): cron * * * * * *") {
		t.Fatalf("schedule add: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	added := time.Now()
	// Kill a worker exactly at a tick, three ticks in.
	time.Sleep(time.Until(added.Truncate(time.Second).Add(3 * time.Second)))
	ws[0].cmd.Process.Signal(syscall.SIGKILL)
	ws[0].cmd.Wait()
	time.Sleep(3200 * time.Millisecond)
	if r := flowhost(t, "schedule", "remove", "--broker", srv.URL(), "every-second"); r.code != 0 {
		t.Fatalf("schedule remove: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	removed := time.Now()
	r := flowhost(t, "runs", "--json", "--limit", "1000", "--broker", srv.URL())
	var runs []struct {
		RunID    string `json:"run_id"`
		Schedule string `json:"schedule"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("runs: %v %s", err, r.stdout)
	}
	var ticks []int64
	for _, run := range runs {
		if run.Schedule != "every-second" {
			t.Fatalf("run %s has schedule %q", run.RunID, run.Schedule)
		}
		ms, err := strconv.ParseInt(run.RunID[:11], 16, 64) // a scheduled run's id starts with its tick
		if err != nil {
			t.Fatal(err)
		}
		ticks = append(ticks, ms)
		out, rr := runJSONOutArgs(t, func(args ...string) result { return flowhost(t, args...) }, "wait", "--json", "--broker", srv.URL(), run.RunID)
		if out.Status != "succeeded" || string(out.Result) != `["a","b"]` {
			t.Fatalf("run %s: %s %s", run.RunID, rr.stdout, rr.stderr)
		}
	}
	slices.Sort(ticks)
	for i := 1; i < len(ticks); i++ {
		if d := ticks[i] - ticks[i-1]; d != 1000 {
			t.Fatalf("ticks %v: %d ms between two runs (a tick fired twice, or none fired)", ticks, d)
		}
	}
	// Every tick from the first after adding to the last before removing.
	first, last := added.Truncate(time.Second).Add(time.Second), removed.Truncate(time.Second)
	want := int(last.Sub(first)/time.Second) + 1
	if len(ticks) < want-1 || len(ticks) > want || ticks[0] != first.UnixMilli() {
		t.Fatalf("%d runs, ticks %v; want one per second from %s to %s (%d)", len(ticks), ticks, first.Format(time.RFC3339), last.Format(time.RFC3339), want)
	}
	t.Logf("%d ticks, one run each, with a worker killed at the tick of %s", len(ticks), added.Truncate(time.Second).Add(3*time.Second).Format(time.TimeOnly))
}

// TestScheduleCommands: list, errors, a schedule without [schedule], and
// a run's link to its schedule.
func TestScheduleCommands(t *testing.T) {
	srv := redistest.Start(t)
	plain := writeFlow(t, "[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n")
	if r := flowhost(t, "schedule", "add", "--broker", srv.URL(), plain); r.code != 2 || !strings.Contains(r.stderr, "the flow declares no [schedule]") {
		t.Errorf("a flow without [schedule]: exit %d %s", r.code, r.stderr)
	}
	hourly := writeFlow(t, "[schedule]\ncron = \"0 * * * *\"\ntimezone = \"Asia/Tokyo\"\ncatch_up = \"none\"\n[inputs]\ntext = \"a\"\n[[step]]\ncall = \"text.split\"\n")
	if r := flowhost(t, "schedule", "add", "--broker", srv.URL(), "--tenant", "acme", "--name", "hourly", hourly); r.code != 0 {
		t.Fatalf("add: %d %s", r.code, r.stderr)
	}
	r := flowhost(t, "schedule", "list", "--broker", srv.URL(), "--tenant", "acme")
	if r.code != 0 || !strings.Contains(r.stdout, "hourly") || !strings.Contains(r.stdout, "cron 0 * * * * (Asia/Tokyo), missed ticks skipped") {
		t.Fatalf("list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := flowhost(t, "schedule", "list", "--broker", srv.URL()); strings.Contains(r.stdout, "hourly") {
		t.Fatalf("another tenant's list shows acme's schedule: %s", r.stdout)
	}
	if r := flowhost(t, "schedule", "remove", "--broker", srv.URL(), "--tenant", "acme", "hourly"); r.code != 0 {
		t.Fatalf("remove: %d %s", r.code, r.stderr)
	}
	if r := flowhost(t, "schedule", "remove", "--broker", srv.URL(), "--tenant", "acme", "hourly"); r.code != 1 || !strings.Contains(r.stderr, `tenant acme has no schedule "hourly"`) {
		t.Fatalf("remove twice: %d %s", r.code, r.stderr)
	}
	// A definition its tenant broke fails alone: listed as such.
	srv.Client().HSet(t.Context(), "fh:t:acme:schedules", "d:broken", `{"name":"broken","schedule":{"cron":"99 * * * *"},"spec":{}}`)
	if r := flowhost(t, "schedule", "list", "--broker", srv.URL(), "--tenant", "acme"); !strings.Contains(r.stdout, "cannot fire") {
		t.Fatalf("a broken definition: %s", r.stdout)
	}
}
