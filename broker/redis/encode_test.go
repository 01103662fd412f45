package redis

import (
	"encoding/json"
	"testing"
)

// TestEncode: the hand-written encoders write what json.Marshal writes.
func TestEncode(t *testing.T) {
	raw := func(ss ...string) []json.RawMessage {
		out := make([]json.RawMessage, len(ss))
		for i, s := range ss {
			out[i] = json.RawMessage(s)
		}
		return out
	}
	for _, m := range []message{
		{Kind: kindInit, Run: "1a0000000000000000000aa"},
		{Kind: kindStep, Run: "r", Step: 3, Tenant: "acme"},
		{Kind: kindCall, Run: "r", Step: 1, Index: 256, Task: 2, Inputs: raw(`{"x":1}`, `[1,2]`, `"a\"b"`), Attempt: 2, Priority: 5},
		{Kind: kindCall, Run: "r", Inputs: raw(`1`), Elems: raw(`{"v":true}`)},
		{Kind: "weird <&> \"kind\"\n\\\b\f\r\x01", Run: "é\u2028\xff"},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.encode(); got != string(want) {
			t.Errorf("message %+v:\n got %s\nwant %s", m, got, want)
		}
	}
	for _, br := range []batchResult{
		{Index: 0, Outputs: raw(`144`)},
		{Index: 7},
		{Index: 7, Outputs: raw()},
		{Index: 2, Outputs: raw(`null`, `{"y":1}`), Errs: []string{"", "step 1: \"boom\"\t<b>"}, Kept: raw(`3`)},
		{Index: 1, Outputs: raw(`1`), Errs: []string{"bad \xff byte, é"}},
	} {
		want, err := json.Marshal(br)
		if err != nil {
			t.Fatal(err)
		}
		if got := br.encode(); string(got) != string(want) {
			t.Errorf("batch %+v:\n got %s\nwant %s", br, got, want)
		}
	}
}
