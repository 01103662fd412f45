package redis

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowhost/flowhost/dag"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/policy"
)

// fuzzPlan is a real plan (filter, map, group over the C example
// module) for checking planted messages against.
func fuzzPlan(f *testing.F) *runState {
	f.Helper()
	ctx := context.Background()
	eng, err := host.New(ctx, host.Config{CacheDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close(ctx) })
	wasm, err := os.ReadFile("../../plugins/examples/stats-c/stats.wasm")
	if err != nil {
		f.Fatal(err)
	}
	m, err := eng.Load(ctx, wasm)
	if err != nil {
		f.Fatal(err)
	}
	seq := pipeline.New(nil).Filter("stats.is_even").Map("stats.square").Group([]string{"stats.sum", "stats.describe"})
	plan, err := dag.PlanSequential(dag.Catalog{"stats": m.Manifest}, seq, pipeline.Inputs{"x": json.RawMessage("[1,2,3]")})
	if err != nil {
		f.Fatal(err)
	}
	return &runState{seq: plan, mods: map[string]*host.Module{"stats": m}}
}

// FuzzMessage: whatever a tenant writes to its stream, checking it never
// panics, and a message both checks accept names a step, task and calls
// the plan has.
func FuzzMessage(f *testing.F) {
	rs := fuzzPlan(f)
	for _, s := range []string{
		`{"k":"init","r":"0190abc"}`, `{"k":"step","r":"0190abc","s":1}`,
		`{"k":"call","r":"0190abc","s":2,"ti":1,"i":3,"in":[{"values":[1]}]}`,
		`{"k":"call","r":"0190abc","s":0,"in":[{"x":1}],"el":[1]}`, `{"k":"done","r":"x","s":0}`,
		`{"k":"finish","r":"0190abc","t":"bravo"}`, `{"k":"call","r":"a:b","s":99,"i":-1}`, `not json`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m message
		if json.Unmarshal(body, &m) != nil || m.check() != nil || rs.check(&m) != nil {
			return
		}
		if m.Tenant != "" {
			t.Fatalf("the body set the tenant: %q", m.Tenant)
		}
		// What a worker writes of it reads back the same.
		var again message
		if err := json.Unmarshal([]byte(m.encode()), &again); err != nil || !reflect.DeepEqual(m, again) {
			t.Fatalf("encoded %+v as %s: read back %+v (%v)", m, m.encode(), again, err)
		}
		if policy.CheckRunID(m.Run) != nil || m.Step < 0 || m.Index < 0 || len(m.Inputs) > maxBatchCalls {
			t.Fatalf("accepted %+v", m)
		}
		if m.Kind == kindCall || m.Kind == kindStep {
			st := &rs.seq.Steps[m.Step] // must not panic
			if m.Kind == kindCall {
				_ = st.Tasks[m.Task]
			}
		}
	})
}

// FuzzSpec: a stored spec, read back from a key its tenant may write,
// either fails its check or is one a worker can plan from safely.
func FuzzSpec(f *testing.F) {
	good, _ := json.Marshal(&Spec{ID: "0190abc", Name: "n", Modules: map[string]string{"stats": strings.Repeat("ab", 32)},
		Seq: pipeline.New(nil).Map("stats.square"), Inputs: pipeline.Inputs{"x": json.RawMessage("[1]")}, ResultTTL: time.Hour})
	f.Add(good, "0190abc")
	f.Add([]byte(`{"id":"r","modules":{"a":"zz"},"result_ttl":-1}`), "r")
	f.Add([]byte(`{"id":"r","modules":{},"sequential":{},"dataflow":{}}`), "r")
	f.Fuzz(func(t *testing.T, b []byte, run string) {
		var s Spec
		if json.Unmarshal(b, &s) != nil || s.check(run) != nil {
			return
		}
		if s.ID != run || (s.Seq == nil) == (s.DF == nil) || len(s.Modules) == 0 || s.ResultTTL <= 0 || s.ResultTTL > maxResultTTL {
			t.Fatalf("accepted %+v", s)
		}
		for _, sha := range s.Modules {
			if len(sha) != 64 {
				t.Fatalf("accepted module %q", sha)
			}
		}
	})
}

// FuzzBatches: a step hash, read back from a key its tenant may write,
// is either refused or holds batches within its count of calls that add
// up to it, so that collecting it allocates only what it holds.
func FuzzBatches(f *testing.F) {
	f.Add("2", `{"i":0,"o":[1]}`, `{"i":1,"o":[2],"e":["x"]}`)
	f.Add("3", `{"i":0,"o":[1,2]}`, `{"i":2,"o":[3],"k":[3]}`)
	f.Add("16777215", `{"i":16777214,"o":[1]}`, `{}`)
	f.Add("-1", `{"i":-5,"o":[]}`, `nope`)
	f.Fuzz(func(t *testing.T, total, b1, b2 string) {
		h := map[string]string{"total": total, "b:0": b1, "b:7": b2, "done": "1"}
		n, brs, err := parseBatches(h)
		if err != nil {
			return
		}
		sum := 0
		for i, br := range brs {
			if br.Index < 0 || br.Index+len(br.Outputs) > n || (i > 0 && br.Index < brs[i-1].Index) {
				t.Fatalf("accepted batch %+v of %d calls", br, n)
			}
			sum += len(br.Outputs)
		}
		if sum != n || n > maxStepCalls {
			t.Fatalf("accepted %d results for %d calls", sum, n)
		}
	})
}

// FuzzScheduleDef: a stored schedule is read back from a key its tenant
// may write; any text there is refused or accepted, never a panic, and
// one accepted has a schedule that ticks.
func FuzzScheduleDef(f *testing.F) {
	f.Add("s", `{"name":"s","schedule":{"cron":"*/5 * * * *"},"spec":{"modules":{"a":"`+strings.Repeat("a", 64)+`"},"sequential":{"Steps":[]},"inputs":{},"result_ttl":1000}}`)
	f.Add("s", `{"name":"s","schedule":{"every":1000000000,"timezone":"Europe/Paris"},"spec":null}`)
	f.Add("s", `{"name":"s","schedule":{"cron":"0 0 31 2 *"}}`)
	f.Fuzz(func(t *testing.T, name, raw string) {
		_, sc, err := parseDef(name, raw)
		if err == nil && sc.Next(time.Now()).IsZero() {
			t.Fatalf("%q: accepted a schedule that never ticks", raw)
		}
	})
}
