package tests

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
)

// submitAs submits a flow on the broker with extra run flags, detached.
func submitAs(t *testing.T, srv *redistest.Server, flow string, args ...string) string {
	t.Helper()
	r := flowhost(t, append(append([]string{"run", "--detach", "--broker", srv.URL()}, args...), flow)...)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" {
		t.Fatalf("submit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return id
}

// finishedAt is when a run ended, as its status says.
func finishedAt(t *testing.T, srv *redistest.Server, tenant, id string) time.Time {
	t.Helper()
	st := statusOf(t, srv, tenant, id)
	if st.Status != "succeeded" {
		t.Fatalf("run %s: %s", id, st.Status)
	}
	at, err := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if err != nil {
		t.Fatalf("run %s finished at %q", id, st.FinishedAt)
	}
	return at
}

type runStatusOut struct {
	Status     string `json:"status"`
	FinishedAt string `json:"finished_at"`
}

func statusOf(t *testing.T, srv *redistest.Server, tenant, id string) runStatusOut {
	t.Helper()
	r := flowhost(t, "wait", "--json", "--tenant", tenant, "--broker", srv.URL(), id)
	if r.code != 0 {
		t.Fatalf("wait %s: exit %d %s %s", id, r.code, r.stdout, r.stderr)
	}
	r = flowhost(t, "status", "--json", "--tenant", tenant, "--broker", srv.URL(), id)
	var st runStatusOut
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status %s: %v %s", id, err, r.stdout)
	}
	return st
}

// TestPriorities: within one tenant, the work of a run of higher
// priority is taken before a lower one's, though submitted after it; at
// the same priority the run submitted first goes first (the control).
// Across tenants, priorities buy nothing: a tenant's priority-5 flood
// does not hold back another tenant's priority-1 run.
func TestPriorities(t *testing.T) {
	srv := redistest.Start(t)
	flow := busyFlow(t, 20) // ~1 s of calls at concurrency 1
	order := func(pa, pb string) (aFirst bool) {
		a := submitAs(t, srv, flow, "--priority", pa)
		b := submitAs(t, srv, flow, "--priority", pb)
		w := worker(t, srv, "w-"+pa+pb) // both queued before any worker reads them
		defer func() { w.cmd.Process.Kill(); w.cmd.Wait() }()
		return finishedAt(t, srv, "default", a).Before(finishedAt(t, srv, "default", b))
	}
	if !order("3", "3") {
		t.Fatal("control: at the same priority the run submitted second finished first")
	}
	if order("1", "5") {
		t.Fatal("the priority-5 run submitted second did not finish before the priority-1 run")
	}

	// Across tenants: fairness first.
	worker(t, srv, "w-fair")
	flood := submitAs(t, srv, busyFlow(t, 400), "--tenant", "a", "--priority", "5")
	took := besideFlood(t, srv, "a", flood, 400, "--tenant", "b", "--priority", "1")
	t.Logf("tenant b's priority-1 run took %s beside tenant a's priority-5 flood", took)
	if took > 3*time.Second {
		t.Fatalf("tenant b's run waited %s behind tenant a's higher priority", took)
	}
	flowhost(t, "cancel", "--tenant", "a", "--broker", srv.URL(), flood)
}
