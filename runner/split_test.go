package runner

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestSplitArray(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil with bad: an error
		bad  bool
	}{
		{in: `[]`, want: []string{}},
		{in: ` [ 1 , 2 ,3 ] `, want: []string{`1`, `2`, `3`}},
		{in: `["a,b", "c]\"", {"x":[1,2]}, [[]], null]`, want: []string{`"a,b"`, `"c]\""`, `{"x":[1,2]}`, `[[]]`, `null`}},
		{in: "[\n\t{\"a\" : 1}\n]", want: []string{`{"a" : 1}`}},
		{in: `null`},
		{in: `{"a":1}`, bad: true},
		{in: `"[1]"`, bad: true},
		{in: `[1,]`, bad: true},
		{in: `[1`, bad: true},
		{in: ``, bad: true},
	} {
		got, err := splitArray([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("splitArray(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("splitArray(%q): %v", tc.in, err)
			continue
		}
		var s []string
		for _, e := range got {
			s = append(s, string(e))
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("splitArray(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

// FuzzSplitArray: a step's result (a hostile module's output) is split
// exactly as encoding/json would decode it into raw elements.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1,"a\"]",{"b":[2]}]`, ` [ null , true ] `, `{"a":1}`, `[1,]`, `null`, `["\\"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := splitArray(b)
		var want []json.RawMessage
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("splitArray(%q): error %v, encoding/json: %v", b, err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("splitArray(%q) = %q, encoding/json: %q", b, got, want)
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("splitArray(%q)[%d] = %q, encoding/json: %q", b, i, got[i], want[i])
			}
		}
	})
}
