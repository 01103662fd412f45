package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/internal/redistest"
	"github.com/flowhost/flowhost/track"
)

// subStatus reads a run's status.
func subStatus(t *testing.T, srv *redistest.Server, id string) track.RunStatus {
	t.Helper()
	r := flowhost(t, "status", "--json", "--broker", srv.URL(), id)
	var st track.RunStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status %s: %v %s %s", id, err, r.stdout, r.stderr)
	}
	return st
}

// waitStatus polls until cond holds of the run's status.
func waitStatus(t *testing.T, srv *redistest.Server, id, what string, cond func(track.RunStatus) bool) track.RunStatus {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := subStatus(t, srv, id)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %s never happened: %+v", id, what, st)
		}
	}
}

// TestSubFlowCancel: on Redis workers, cancelling a parent cancels its
// sub-flow's run, and cancelling the sub-flow's run fails its parent's
// step with the child's error; both runs name each other.
func TestSubFlowCancel(t *testing.T) {
	srv := redistest.Start(t)
	worker(t, srv, "f1", "--concurrency", "2")
	parent := writeFlow(t, "[[step]]\nflow = \"child.toml\"\n")
	busy, _ := os.ReadFile(busyFlow(t, 300))
	child := strings.Replace(string(busy), "[plugins]", "name = \"busy\"\n[plugins]", 1)
	os.WriteFile(filepath.Join(filepath.Dir(parent), "child.toml"), []byte(child), 0o644)

	start := func() (string, string) {
		id := submit(t, srv, parent)
		st := waitStatus(t, srv, id, "the sub-flow started", func(st track.RunStatus) bool { return len(st.Steps) == 1 && st.Steps[0].Child != "" })
		kid := st.Steps[0].Child
		cst := waitStatus(t, srv, kid, "the sub-flow running", func(st track.RunStatus) bool { return st.Status == track.Running })
		if cst.Parent != id || cst.ParentStep != 1 || cst.Name != "busy" {
			t.Fatalf("the child names parent %q step %d (%s), want %s step 1", cst.Parent, cst.ParentStep, cst.Name, id)
		}
		return id, kid
	}

	// The parent cancelled: the child with it.
	id, kid := start()
	if r := flowhost(t, "status", "--broker", srv.URL(), kid); !strings.Contains(r.stdout, "a sub-flow of run "+id+", step 1") {
		t.Fatalf("the child's status: %s", r.stdout)
	}
	if r := flowhost(t, "status", "--broker", srv.URL(), id); !strings.Contains(r.stdout, "running (run "+kid+")") {
		t.Fatalf("the parent's status: %s", r.stdout)
	}
	if r := flowhost(t, "cancel", "--broker", srv.URL(), id); r.code != 0 {
		t.Fatalf("cancel: %d %s", r.code, r.stderr)
	}
	cst := waitStatus(t, srv, kid, "the child cancelled", func(st track.RunStatus) bool { return st.Ended() })
	if cst.Status != track.Cancelled || !strings.Contains(cst.Error, "its parent run "+id+" ended") {
		t.Fatalf("child %s: %s %q", kid, cst.Status, cst.Error)
	}

	// The child cancelled: its failure is the parent's step's.
	id, kid = start()
	if r := flowhost(t, "cancel", "--broker", srv.URL(), kid); r.code != 0 {
		t.Fatalf("cancel: %d %s", r.code, r.stderr)
	}
	st := waitStatus(t, srv, id, "the parent ended", func(st track.RunStatus) bool { return st.Ended() })
	want := "step 1 (flow busy): sub-flow busy (run " + kid + "): cancelled by request"
	if st.Status != track.Failed || st.Error != want || st.Steps[0].Status != track.Failed {
		t.Fatalf("parent: %s %q, step %s; want failed %q", st.Status, st.Error, st.Steps[0].Status, want)
	}
}
