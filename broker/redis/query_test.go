package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/track"
)

// TestListRuns: pages of a tenant's runs, newest first, follow one
// another without a gap or a repeat; filters by status and flow name
// keep only what they name; another tenant's runs are not listed; Run
// has the steps, and Rerun submits a run recorded as re-running another.
func TestListRuns(t *testing.T) {
	f := setup(t)
	f.workers(t, 1, WorkerConfig{Concurrency: 2})
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		spec := &Spec{Name: "ok", Seq: pipeline.New(nil).Map("stats.square", pipeline.Param("x")), Inputs: pipeline.Inputs{"x": json.RawMessage(`[1,2]`)},
			Steps: []StepInfo{{Name: "map stats.square", Fanning: true}}}
		if i%3 == 2 {
			spec = &Spec{Name: "bad", Seq: pipeline.New(nil).CallNext("text.fail_if", pipeline.Arg("flag", true))}
		}
		ids = append(ids, f.submit(t, spec).RunID)
	}
	other := f.submit(t, &Spec{Tenant: "bravo", Name: "ok", Seq: pipeline.New(nil).Map("stats.square", pipeline.Param("x")), Inputs: pipeline.Inputs{"x": json.RawMessage(`[1]`)}})
	var seen []string
	q := RunQuery{Limit: 3}
	for range 5 {
		p, err := f.client.ListRuns(ctx, "default", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Runs {
			seen = append(seen, r.RunID)
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	if len(seen) != 7 {
		t.Fatalf("pages listed %d runs: %v", len(seen), seen)
	}
	for i, id := range seen {
		if id != ids[len(ids)-1-i] || id == other.RunID {
			t.Fatalf("run %d of the pages is %s; want %s (newest first)", i, id, ids[len(ids)-1-i])
		}
	}
	// Runs created after the fourth: the three after it.
	st4, _ := f.client.ListRuns(ctx, "default", RunQuery{Limit: 4})
	cut := st4.Runs[3]
	at, _ := time.Parse(time.RFC3339Nano, cut.CreatedAt)
	if p, _ := f.client.ListRuns(ctx, "default", RunQuery{After: at.UnixMilli()}); len(p.Runs) != 3 || p.Runs[2].RunID != st4.Runs[2].RunID {
		t.Fatalf("runs after %s: %+v", cut.RunID, p)
	}
	p, err := f.client.ListRuns(ctx, "default", RunQuery{Status: track.Failed})
	if err != nil || len(p.Runs) != 2 || p.Runs[0].Name != "bad" || p.Runs[0].Error == "" {
		t.Fatalf("failed runs: %+v %v", p, err)
	}
	if p, _ := f.client.ListRuns(ctx, "default", RunQuery{Name: "ok", Limit: 2}); len(p.Runs) != 2 || p.Next == 0 {
		t.Fatalf("runs of flow ok: %+v", p)
	}
	st, err := f.client.Run(ctx, "default", ids[0])
	if err != nil || len(st.Steps) != 1 || st.Steps[0].Status != track.Succeeded || *st.Steps[0].Total != 2 {
		t.Fatalf("run: %+v %v", st, err)
	}
	again, err := f.client.Rerun(ctx, "default", ids[2], 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := f.client.Wait(ctx, "default", again); err != nil || st.RerunOf != ids[2] || st.Status != track.Failed {
		t.Fatalf("rerun: %+v %v", st, err)
	}
	if _, err := f.client.Rerun(ctx, "default", "nosuchrun", 0); err == nil {
		t.Fatal("rerun of no run")
	}
}
