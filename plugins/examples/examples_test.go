// Package examples_test checks every example task under two engines:
// flowhost and the reference implementation of the Extism calling
// convention, the Extism Go SDK. Both must give the same output, or fail
// in the same class.
package examples_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"

	"github.com/flowhost/flowhost/host"
)

// A diffCase runs one task on one input. want, when set, is the exact
// output expected; fail, when set, is a text the error must hold. An
// input that the manifest's types refuse fails in flowhost before the
// call; the guest, under Extism, must refuse it too.
type diffCase struct {
	task  string
	input string
	want  string
	fail  string
}

var modules = []struct {
	path  string
	cases []diffCase
}{
	{"textkit-go/textkit.wasm", []diffCase{
		{task: "split", input: `{"text":"the quick  brown fox"}`, want: `["the","quick","brown","fox"]`},
		{task: "split", input: `{"text":"a,b,,c","sep":","}`, want: `["a","b","c"]`},
		{task: "split", input: `{"text":42}`, fail: "text"},
		{task: "profile", input: `{"words":["a","b","a"]}`, want: `{"vocab":2,"total":3}`},
		{task: "upper", input: `{"text":"héllo"}`, want: `"HÉLLO"`},
		{task: "wordcount", input: `{"text":" one two  three "}`, want: `3`},
		{task: "ratio", input: `{"vocab":2,"total":4}`, want: `0.5`},
		{task: "ratio", input: `{"vocab":0,"total":0}`, want: `0`},
		{task: "report", input: `{"word_count":4,"ratio":0.75,"title":"fox"}`, want: `"fox: 4 words, 75% distinct"`},
		{task: "report", input: `{"word_count":"x","ratio":1}`, fail: "word_count"},
		{task: "slugify", input: `{"text":"Hello, World! 2024"}`, want: `"hello-world-2024"`},
		{task: "is_long", input: `{"word":"elephant","min_len":5}`, want: `true`},
		{task: "is_long", input: `{"word":"cat","min_len":5}`, want: `false`},
		{task: "fail_if", input: `{"flag":true,"message":"custom failure text"}`, fail: "custom failure text"},
		{task: "fail_if", input: `{"flag":false,"message":"x"}`, want: `false`},
		{task: "echo", input: `{"value":{"nested":[1,2,3]}}`, want: `{"nested":[1,2,3]}`},
	}},
	{"stats-c/stats.wasm", []diffCase{
		{task: "sum", input: `{"values":[1,2,3.5]}`, want: `6.5`},
		{task: "sum", input: `{"values":[]}`, want: `0`},
		{task: "mean", input: `{"values":[1,2,3,4]}`, want: `2.5`},
		{task: "mean", input: `{"values":[]}`, fail: "non-empty array"},
		{task: "mean", input: `{"values":"nope"}`, fail: "mean"},
		{task: "minmax", input: `{"values":[3,-1,7]}`},
		{task: "describe", input: `{"values":[2,4,4,4,5,5,7,9]}`},
		{task: "square", input: `{"x":12}`, want: `144`},
		{task: "is_even", input: `{"x":10}`, want: `true`},
		{task: "is_even", input: `{"x":7}`, want: `false`},
	}},
	{"rustkit-rust/rustkit.wasm", []diffCase{
		{task: "reverse", input: `{"text":"héllo, wörld"}`, want: `"dlröw ,olléh"`},
		{task: "reverse", input: `{"text":"\ud83d\ude00 \"quoted\"\n"}`, want: `"\n\"detouq\" 😀"`},
		{task: "reverse", input: `{"text":42}`, fail: `input "text" must be a string, not 42`},
		{task: "caesar", input: `{"text":"Hello, World!","shift":3}`, want: `"Khoor, Zruog!"`},
		{task: "caesar", input: `{"text":"abc","shift":-27}`, want: `"zab"`},
		{task: "fib", input: `{"n":0}`, want: `0`},
		{task: "fib", input: `{"n":93}`, want: `12200160415121876738`},
		{task: "fib", input: `{"n":94}`, fail: "from 0 to 93"},
		{task: "fib", input: `{"n":1.5}`, fail: "integer"},
		{task: "primes", input: `{"limit":30}`, want: `[2,3,5,7,11,13,17,19,23,29]`},
		{task: "primes", input: `{"limit":1}`, want: `[]`},
		{task: "word_freq", input: `{"text":"The cat and the hat; THE end.","top":0}`, want: `{"the":3,"cat":1,"and":1,"hat":1,"end":1}`},
		{task: "word_freq", input: `{"text":"b a b c a b","top":2}`, want: `{"b":3,"a":2}`},
	}},
	{"jsonkit-as/jsonkit.wasm", []diffCase{
		{task: "pick", input: `{"object":{"a":1,"b":2,"c":3},"keys":["c","a"]}`},
		{task: "flatten", input: `{"items":[1,[2,[3,[4]]]],"depth":-1}`},
		{task: "flatten", input: `{"items":[1,[2,[3,[4]]]],"depth":1}`},
		{task: "count_keys", input: `{"object":{"a":1,"b":{"c":2}}}`, want: `2`},
		{task: "merge", input: `{"a":{"x":1,"y":{"p":1}},"b":{"y":{"q":2}},"deep":true}`},
		{task: "merge", input: `{"a":{"x":1},"b":{"x":2},"deep":false}`},
		{task: "count_keys", input: `{"object":[1,2]}`, fail: "object"},
	}},
	{"mathwat/mathwat.wasm", []diffCase{
		{task: "add", input: `{"a":40,"b":2}`, want: `42`},
		{task: "add", input: `{"a":-5,"b":3}`, want: `-2`},
		{task: "inc", input: `{"x":41}`, want: `42`},
		{task: "inc", input: `{"x":"nope"}`, fail: "x"},
	}},
}

func TestDifferential(t *testing.T) {
	ctx := context.Background()
	eng, err := host.New(ctx, host.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	for _, mod := range modules {
		t.Run(mod.path, func(t *testing.T) {
			m, err := eng.LoadFile(ctx, mod.path)
			if err != nil {
				t.Fatal(err)
			}
			plugin, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmFile{Path: mod.path}}}, extism.PluginConfig{EnableWasi: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer plugin.Close(ctx)

			covered := map[string]bool{}
			for _, c := range mod.cases {
				covered[c.task] = true
				t.Run(c.task, func(t *testing.T) {
					tk, ok := m.Task(c.task)
					if !ok {
						t.Fatalf("module has no task %q", c.task)
					}
					var values map[string]json.RawMessage
					if err := json.Unmarshal([]byte(c.input), &values); err != nil {
						t.Fatal(err)
					}
					input, err := tk.Input(values)
					if err != nil {
						t.Fatal(err)
					}
					lim := host.Limits{Timeout: 10 * time.Second, Memory: 64 << 20, MaxOutput: 1 << 20}
					got, gotErr := tk.Call(ctx, input, lim)
					_, ref, refErr := plugin.Call(tk.Spec.Export, input)

					if host.KindOf(gotErr) == host.KindBadInput {
						// Refused before the call by the manifest's types: the
						// guest, run on it by Extism, must refuse it too.
						if refErr == nil || c.fail == "" || !strings.Contains(gotErr.Error(), c.fail) {
							t.Fatalf("flowhost refused the input (%v); Extism's run of the guest: %s, %v; want a failure holding %q", gotErr, ref, refErr, c.fail)
						}
						return
					}
					if cls, refCls := classOf(gotErr), extismClass(refErr); cls != refCls {
						t.Fatalf("flowhost: %s (%v), Extism: %s (%v)", cls, gotErr, refCls, refErr)
					}
					if gotErr != nil {
						if c.fail == "" {
							t.Fatalf("failed: %v", gotErr)
						}
						if !strings.Contains(gotErr.Error(), c.fail) {
							t.Fatalf("error %q lacks %q", gotErr, c.fail)
						}
						if host.KindOf(gotErr) == host.KindGuestError {
							// The guest's own words, verbatim under both engines.
							if msg := gotErr.(*host.TaskError).Msg; msg != refErr.Error() {
								t.Fatalf("error text: flowhost %q, Extism %q", msg, refErr)
							}
						}
						return
					}
					if c.fail != "" {
						t.Fatalf("succeeded with %s; want a failure holding %q", got, c.fail)
					}
					if string(got) != string(ref) {
						t.Fatalf("output: flowhost %s, Extism %s", got, ref)
					}
					if c.want != "" && string(got) != c.want {
						t.Fatalf("output %s, want %s", got, c.want)
					}
				})
			}
			for _, task := range m.Manifest.Tasks {
				if !covered[task.Name] {
					t.Errorf("task %s has no differential case", task.Name)
				}
			}
		})
	}
}

// classOf maps a flowhost failure onto the classes the Extism SDK can tell apart.
func classOf(err error) string {
	switch host.KindOf(err) {
	case 0:
		if err != nil {
			return "other: " + err.Error()
		}
		return "ok"
	case host.KindGuestError:
		return "guest error"
	default:
		return "trap"
	}
}

func extismClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case strings.Contains(err.Error(), "wasm error") || strings.Contains(err.Error(), "exit"):
		return "trap"
	default:
		return "guest error"
	}
}
