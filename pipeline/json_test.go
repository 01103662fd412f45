package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	objects := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	cases := []struct {
		name, in string
		want     string // "" for valid
	}{
		{"number", "12", ""},
		{"string", `"x"`, ""},
		{"spaces", " [1, 2] ", ""},
		{"at the limit", deep(64), ""},
		{"objects at the limit", objects(64), ""},
		{"past the limit", deep(65), "nested more than 64 levels deep"},
		{"objects past the limit", objects(65), "nested more than 64 levels deep"},
		{"past Go's own limit", deep(20000), "nested more than 64 levels deep"},
		{"deep and unclosed", strings.Repeat("[", 5_000_000), "nested more than 64 levels deep"},
		{"brackets in strings", `"` + strings.Repeat("[", 100) + `"`, ""},
		{"escaped quotes", `["\"` + strings.Repeat("[", 100) + `"]`, ""},
		{"backslash before a quote", `["\\", ` + deep(64) + "]", "nested more than 64"},
		{"wide", "[" + strings.Repeat(deep(64)+",", 1000) + "1]", "nested more than 64"},
		{"wide at the limit", "[" + strings.Repeat(deep(63)+",", 1000) + "1]", ""},
		{"unclosed", "[1, 2", "not valid JSON: unexpected end of JSON input"},
		{"two values", "1 2", "not valid JSON: invalid character '2' after top-level value"},
		{"empty", "", "not valid JSON"},
		{"text", "hello", "not valid JSON: invalid character 'h'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJSON([]byte(c.in))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			case strings.Contains(c.want, "nested") && !errors.Is(err, ErrTooDeep):
				t.Fatalf("error %v is not ErrTooDeep", err)
			}
		})
	}
}

func TestCheckInputs(t *testing.T) {
	in := Inputs{"b": json.RawMessage(strings.Repeat("[", 65)), "a": json.RawMessage("1"), "c": json.RawMessage("[")}
	if err := CheckInputs(in); err == nil || !strings.HasPrefix(err.Error(), "input b: nested more than 64 levels deep") {
		t.Fatalf("error %v, want one naming input b first", err)
	}
	if err := CheckInputs(Inputs{"a": json.RawMessage(`{"x":[1]}`)}); err != nil {
		t.Fatal(err)
	}
}
