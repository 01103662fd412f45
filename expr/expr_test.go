package expr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var seqVars = []string{"inputs", "result"}

func TestBool(t *testing.T) {
	cases := []struct {
		src  string
		vars Vars
		want bool
		err  string
	}{
		{"size(result) > 3", Vars{"result": []byte("[1,2,3,4]")}, true, ""},
		{"inputs.n % 2 == 0", Vars{"inputs": []byte(`{"n":4}`)}, true, ""},
		{"inputs.x > 1.5", Vars{"inputs": []byte(`{"x":2}`)}, true, ""}, // an int against a double
		{"result == null", Vars{"result": []byte("null")}, true, ""},
		{`has(inputs.y) && inputs.y`, Vars{"inputs": []byte(`{"x":1}`)}, false, ""},
		{`result.exists(v, v.name == "b")`, Vars{"result": []byte(`[{"name":"a"},{"name":"b"}]`)}, true, ""},
		{"inputs.y > 1", Vars{"inputs": []byte(`{"x":2}`)}, false, "no such key: y"},
		{"result", Vars{"result": []byte("3")}, false, "not true or false"},
		{"result", Vars{"result": []byte("[1] [2]")}, false, "the value of result"},
		// A comprehension whose cost is past the limit stops.
		{strings.Repeat("[1,2,3,4,5,6,7,8,9,10].all(x, ", 6) + "true" + strings.Repeat(")", 6), nil, false, "cost limit exceeded"},
	}
	for _, c := range cases {
		p, err := Compile(c.src, seqVars, Bool)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := p.Bool(c.vars)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.src, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s = %v, %v; want %v", c.src, got, err, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ src, err string }{
		{"", "empty"},
		{"size(reslt) > 3", "col 6: undeclared reference to 'reslt' (did you mean 'result'?)"},
		{"result +", "Syntax error"},
		{"1 + 2", "is a number, not a boolean"},
		{`"a"`, "is a string, not a boolean"},
		{strings.Repeat("a", MaxSource+1), "more than 4096"},
		{strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), "recursion"},
	}
	for _, c := range cases {
		_, err := Compile(c.src, seqVars, Bool)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%.40q: error %v, want %q", c.src, err, c.err)
		}
	}
}

func TestReads(t *testing.T) {
	p, err := Compile(`inputs.a > 1 && inputs["b"] == 2 && has(inputs.c) && result.all(v, v > inputs.d)`, seqVars, Bool)
	if err != nil {
		t.Fatal(err)
	}
	fields, tested, whole := p.Reads("inputs")
	if strings.Join(fields, ",") != "a,b,d" || strings.Join(tested, ",") != "c" || whole {
		t.Fatalf("fields %v tested %v whole %v", fields, tested, whole)
	}
	if _, _, whole := p.Reads("result"); !whole {
		t.Fatal("result is read whole")
	}
	p, _ = Compile(`size(inputs) > 0`, seqVars, Bool)
	if _, _, whole := p.Reads("inputs"); !whole {
		t.Fatal("size(inputs) reads inputs whole")
	}
}

func TestKey(t *testing.T) {
	for _, c := range []struct{ src, want string }{{`"k-" + string(inputs.n)`, "k-7"}, {"inputs.n", "7"}, {"inputs.n > 1", "true"}, {"2.5", "2.5"}} {
		p, err := Compile(c.src, []string{"inputs"}, Any)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := p.Key(Vars{"inputs": []byte(`{"n":7}`)}); err != nil || s != c.want {
			t.Errorf("%s: %q %v, want %q", c.src, s, err, c.want)
		}
	}
	p, _ := Compile("[1]", []string{"inputs"}, Any)
	if _, err := p.Key(nil); err == nil || !strings.Contains(err.Error(), "a key is a string or a number") {
		t.Fatalf("a list as a key: %v", err)
	}
}

// FuzzCompile: an expression comes from a flow, which a tenant writes;
// compiling and evaluating any of them fails cleanly or not at all.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"size(result) > 3", `inputs.a == "x"`, "result.exists(v, v > 1)", "has(inputs.c)", "1 +", `result.map(x, x * 2).size() > 0`} {
		f.Add(s, `[1,2,3]`)
	}
	f.Fuzz(func(t *testing.T, src, value string) {
		p, err := Compile(src, seqVars, Bool)
		if err != nil {
			return
		}
		_, _ = p.Bool(Vars{"inputs": []byte(`{"a":"x","c":1}`), "result": []byte(value)})
	})
}

// reference decodes as encoding/json does, with numbers as decode has them.
func reference(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more than one value")
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i
			}
			f, _ := x.Float64()
			return f
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = walk(x[k])
			}
		}
		return v
	}
	return walk(v), nil
}

// FuzzDecode holds decode to encoding/json: a condition's variables are
// results a tenant's task wrote.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `{"a":"x\"y","b":[true,false,null],"c":-1.5e3}`, `9223372036854775807`, `9223372036854775808`, `-0`, `"\u00e9"`, `[1] [2]`, `{"a":1,"a":2}`, ` [ ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := decode(raw)
		want, werr := reference(raw)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, encoding/json %v", raw, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, encoding/json %#v", raw, got, want)
		}
	})
}

func TestJSON(t *testing.T) {
	vars := Vars{"inputs": []byte(`{"text":"a b","n":12345678901234567}`), "result": []byte(`[1, 2.5, {"a":true}]`)}
	cases := []struct{ src, want string }{
		{"result", `[1, 2.5, {"a":true}]`}, // the value as it was
		{"inputs.n", `12345678901234567`},  // no float on the way
		{"result.size()", `3`},
		{`{"text": inputs.text, "k": 1}`, `{"k":1,"text":"a b"}`},
		{"result[2]", `{"a":true}`},
	}
	for _, c := range cases {
		p, err := Compile(c.src, seqVars, Any)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.JSON(vars)
		var a, b any
		json.Unmarshal(got, &a)
		json.Unmarshal([]byte(c.want), &b)
		if err != nil || !reflect.DeepEqual(a, b) || (c.src == "inputs.n" && string(got) != c.want) {
			t.Errorf("%s = %s, %v; want %s", c.src, got, err, c.want)
		}
	}
}
