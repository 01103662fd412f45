package jsonscan

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestArray(t *testing.T) {
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
		got, err := Array([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("Array(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Array(%q): %v", tc.in, err)
			continue
		}
		var s []string
		for _, e := range got {
			s = append(s, string(e))
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("Array(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

// FuzzArray: a step's result (a hostile module's output) is split
// exactly as encoding/json would decode it into raw elements.
func FuzzArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1,"a\"]",{"b":[2]}]`, ` [ null , true ] `, `{"a":1}`, `[1,]`, `null`, `["\\"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Array(b)
		var want []json.RawMessage
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("Array(%q): error %v, encoding/json: %v", b, err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("Array(%q) = %q, encoding/json: %q", b, got, want)
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("Array(%q)[%d] = %q, encoding/json: %q", b, i, got[i], want[i])
			}
		}
	})
}

func TestObject(t *testing.T) {
	var got []string
	err := Object([]byte(` { "a" : 1 , "b\u0063":[1,{"x":"}"}], "d":"\"q\"" ,"e":{} } `), func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	})
	want := []string{"a=1", `bc=[1,{"x":"}"}]`, `d="\"q\""`, "e={}"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Object = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{`[1]`, `null`, `{"a":}`, `{`, ``} {
		if err := Object([]byte(bad), func(_, _ []byte) error { return nil }); err == nil {
			t.Errorf("Object(%q): no error", bad)
		}
	}
}

// FuzzObject: a task's input (which may come from anywhere) is walked
// without a panic, and, when it is JSON, member by member exactly as
// encoding/json decodes it: the same keys, unescaped, with the same raw
// values (the last of a duplicate wins).
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[1,"]"],"c":{"d":null}}`, `{"\u0061":1,"a":2}`, `{"a":"\\"}`, `[1]`, `null`, `{"a" : true }`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		last := map[string]string{}
		err := Object(b, func(k, v []byte) error {
			if len(v) == 0 || len(v) > len(b) {
				t.Fatalf("Object(%q) yielded %q", b, v)
			}
			last[string(k)] = string(v)
			return nil
		})
		if !json.Valid(b) {
			return
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if werr == nil && want == nil { // null: no object
			werr = errors.New("null")
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("Object(%q): error %v, encoding/json: %v", b, err, werr)
		}
		if err != nil {
			return
		}
		if len(last) != len(want) {
			t.Fatalf("Object(%q) = %q, encoding/json: %q", b, last, want)
		}
		for k, v := range want {
			if last[k] != string(v) {
				t.Fatalf("Object(%q)[%q] = %q, encoding/json: %q", b, k, last[k], v)
			}
		}
	})
}
