package flowhost_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/internal/testmod"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
)

func TestHostStatus(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flaky := filepath.Join(t.TempDir(), "flaky.wasm")
	if err := os.WriteFile(flaky, testmod.Module(t, "tests/testdata/flaky.wat", "tests/testdata/flaky.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for alias, path := range map[string]string{"text": "plugins/examples/textkit-go/textkit.wasm", "flaky": flaky} {
		if err := h.Load(ctx, alias, path); err != nil {
			t.Fatal(err)
		}
	}
	in := pipeline.Inputs{"text": json.RawMessage(`"a bb ccc dddd"`)}

	ok, err := pipeline.New(h).CallNext("text.split").Map("text.upper", pipeline.Named("shout")).Run(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	st, found := h.Status(ok.RunID)
	if !found || st.Status != "succeeded" || len(st.Steps) != 2 || st.Steps[1].Name != "shout" || st.Steps[1].Status != "succeeded" ||
		*st.Steps[1].Done != 4 || *st.Steps[1].Total != 4 || st.Steps[0].Done != nil || st.Steps[0].Attempts != 1 {
		t.Fatalf("succeeded run: %+v", st)
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Steps[1].StartedAt); err != nil {
		t.Fatalf("started_at %q", st.Steps[1].StartedAt)
	}

	retried, err := pipeline.New(h).CallNext("flaky.flaky", pipeline.Retries(2), pipeline.WithLimits(pipeline.Limits{State: policy.StateKeep})).Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := h.Status(retried.RunID); st.Steps[0].Attempts != 2 || st.Status != "succeeded" {
		t.Fatalf("retried run: %+v", st)
	}

	_, err = pipeline.New(h).CallNext("text.fail_if", pipeline.Arg("flag", true), pipeline.Arg("message", "no good")).Run(ctx, nil)
	if err == nil {
		t.Fatal("fail_if succeeded")
	}
	runs := h.Runs()
	if len(runs) != 3 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "no good") ||
		runs[0].Steps[0].Status != "failed" || runs[2].RunID != ok.RunID {
		t.Fatalf("runs: %+v", runs)
	}
}

// TestFirstFailureWins: a run whose one task fails while its siblings
// run reports that task's error, every time, never a sibling canceled on
// its account nor "context canceled".
func TestFirstFailureWins(t *testing.T) {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for alias, path := range map[string]string{"text": "plugins/examples/textkit-go/textkit.wasm", "stats": "plugins/examples/stats-c/stats.wasm"} {
		if err := h.Load(ctx, alias, path); err != nil {
			t.Fatal(err)
		}
	}
	df := &pipeline.Dataflow{Tasks: []string{"text.split", "text.profile", "text.slugify", "stats.describe"},
		Outputs: []string{"vocab", "total", "slug", "stddev", "mean"}}
	in := pipeline.Inputs{"text": json.RawMessage(`"to be or not to be"`), "values": json.RawMessage(`[]`)}
	seq := pipeline.New(h).Map("stats.square")
	seqIn := pipeline.Inputs{"x": json.RawMessage(`[1, 2, 3, "four", 5, 6, 7, 8, 9, 10, 11, 12]`)}
	for i := range 100 {
		_, err := h.RunDataflow(ctx, df, in)
		if err == nil || !strings.Contains(err.Error(), "stats.describe") || !strings.Contains(err.Error(), "non-empty array") {
			t.Fatalf("dataflow run %d: %v", i, err)
		}
		_, err = seq.Run(ctx, seqIn)
		if err == nil || !strings.Contains(err.Error(), "stats.square") || strings.Contains(err.Error(), "cancel") {
			t.Fatalf("map run %d: %v", i, err)
		}
	}
}
