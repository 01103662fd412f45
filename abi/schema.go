package abi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Schema is the type a manifest gives an input or an output: a subset of
// JSON Schema (docs/abi.md, "Types"). The zero Schema allows any value.
type Schema struct {
	// Type is one of string, number, integer, boolean, array, object and
	// null, or "" for any. An integer is a number with no fractional part
	// (3 and 3.0 both are).
	Type string `json:"type,omitempty"`
	// Items is the type of an array's elements.
	Items *Schema `json:"items,omitempty"`
	// Properties are the types of an object's members, by name: a member
	// present must have its type; members not listed may have any.
	Properties map[string]*Schema `json:"properties,omitempty"`
	// Enum, when set, lists the values allowed.
	Enum []json.RawMessage `json:"enum,omitempty"`
	// Nullable allows null besides Type.
	Nullable bool `json:"nullable,omitempty"`
}

var schemaTypes = map[string]bool{"string": true, "number": true, "integer": true, "boolean": true, "array": true, "object": true, "null": true}

// maxSchemaDepth bounds a schema's nesting (items and properties).
const maxSchemaDepth = 16

// Typed reports whether s constrains anything.
func (s *Schema) Typed() bool {
	return s != nil && (s.Type != "" || s.Items != nil || len(s.Properties) > 0 || len(s.Enum) > 0)
}

// Known reports whether every type s names is one flowhost checks. A
// schema with another type name (a manifest written for a newer host)
// still loads, but its values are not checked (`flowhost embed` warns).
func (s *Schema) Known() bool {
	if s == nil {
		return true
	}
	if s.Type != "" && !schemaTypes[s.Type] {
		return false
	}
	if !s.Items.Known() {
		return false
	}
	for _, p := range s.Properties {
		if !p.Known() {
			return false
		}
	}
	return true
}

// validate checks the schema itself, where: as the manifest names it.
func (s *Schema) validate(where string, depth int) error {
	if s == nil {
		return nil
	}
	if depth > maxSchemaDepth {
		return fmt.Errorf("%s: the type nests deeper than %d levels", where, maxSchemaDepth)
	}
	if s.Items != nil && s.Type != "array" {
		return fmt.Errorf("%s: \"items\" applies to \"type\": \"array\", not %q", where, s.Type)
	}
	if len(s.Properties) > 0 && s.Type != "object" {
		return fmt.Errorf("%s: \"properties\" applies to \"type\": \"object\", not %q", where, s.Type)
	}
	for _, e := range s.Enum {
		if !json.Valid(e) {
			return fmt.Errorf("%s: an \"enum\" value is not JSON", where)
		}
	}
	if err := s.Items.validate(where+" items", depth+1); err != nil {
		return err
	}
	for name, p := range s.Properties {
		if err := p.validate(fmt.Sprintf("%s property %q", where, name), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// String describes the type as an error or a signature shows it:
// "number", "array of string", "object {a: integer}", `"x" or "y"`,
// "string or null".
func (s *Schema) String() string {
	if !s.Typed() {
		return "any"
	}
	var out string
	switch {
	case len(s.Enum) > 0:
		vs := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vs[i] = string(compact(e))
		}
		out = strings.Join(vs, " or ")
	case s.Type == "array" && s.Items.Typed():
		out = "array of " + s.Items.String()
	case s.Type == "object" && len(s.Properties) > 0:
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			names[i] = n + ": " + s.Properties[n].String()
		}
		out = "object {" + strings.Join(names, ", ") + "}"
	case s.Type == "":
		out = "any"
	default:
		out = s.Type
	}
	if s.Nullable {
		out += " or null"
	}
	return out
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// TypeError is a value that does not have its declared type.
type TypeError struct {
	// Path locates the culprit inside the value ("", "[2]", ".a[0]").
	Path string
	Want *Schema
	Got  []byte
}

func (e *TypeError) Error() string {
	got := string(compact(e.Got))
	if len(got) > 60 {
		got = got[:57] + "..."
	}
	if e.Path == "" {
		return fmt.Sprintf("must be %s, not %s", article(e.Want.String()), got)
	}
	return fmt.Sprintf("%s must be %s, not %s", e.Path, article(e.Want.String()), got)
}

func article(t string) string {
	switch {
	case t == "any" || strings.HasPrefix(t, `"`) || t[0] >= '0' && t[0] <= '9' || t == "null" || t == "true" || t == "false":
		return t
	case strings.IndexByte("aeio", t[0]) >= 0:
		return "an " + t
	}
	return "a " + t
}

// Check reports whether v, a JSON value, has the type s; a *TypeError
// names the part that does not. A schema with a type flowhost does not
// know (Known) allows anything.
func (s *Schema) Check(v []byte) error {
	if !s.Typed() || !s.Known() {
		return nil
	}
	v = bytes.TrimSpace(v)
	if s.simple() {
		if !s.matchKind(kindOf(v), v) {
			return &TypeError{Want: s, Got: v}
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return &TypeError{Want: s, Got: v}
	}
	return s.check("", x, v)
}

// simple reports whether a look at the value's first bytes decides it.
func (s *Schema) simple() bool {
	return len(s.Enum) == 0 && s.Items == nil && len(s.Properties) == 0 && s.Type != "integer"
}

type jsonKind byte

const (
	kindBad jsonKind = iota
	kindString
	kindNumber
	kindBool
	kindNull
	kindArray
	kindObject
)

func kindOf(v []byte) jsonKind {
	if len(v) == 0 {
		return kindBad
	}
	switch c := v[0]; {
	case c == '"':
		return kindString
	case c == '-' || c >= '0' && c <= '9':
		return kindNumber
	case c == 't' || c == 'f':
		return kindBool
	case c == 'n':
		return kindNull
	case c == '[':
		return kindArray
	case c == '{':
		return kindObject
	}
	return kindBad
}

func (s *Schema) matchKind(k jsonKind, v []byte) bool {
	if k == kindNull && (s.Nullable || s.Type == "null") {
		return true
	}
	switch s.Type {
	case "":
		return k != kindBad
	case "string":
		return k == kindString
	case "number":
		return k == kindNumber
	case "integer":
		return k == kindNumber && isInteger(string(v))
	case "boolean":
		return k == kindBool
	case "array":
		return k == kindArray
	case "object":
		return k == kindObject
	}
	return false
}

func isInteger(n string) bool {
	if !strings.ContainsAny(n, ".eE") {
		return true
	}
	f, err := json.Number(n).Float64()
	return err == nil && !math.IsInf(f, 0) && f == math.Trunc(f)
}

func (s *Schema) check(path string, x any, raw []byte) error {
	bad := func() error {
		if raw == nil {
			raw, _ = json.Marshal(x)
		}
		return &TypeError{Path: path, Want: s, Got: raw}
	}
	if x == nil && (s.Nullable || s.Type == "null") {
		return nil
	}
	if len(s.Enum) > 0 {
		for _, e := range s.Enum {
			var ev any
			d := json.NewDecoder(bytes.NewReader(e))
			d.UseNumber()
			if d.Decode(&ev) == nil && sameJSON(ev, x) {
				return nil
			}
		}
		return bad()
	}
	switch v := x.(type) {
	case string:
		if s.Type != "" && s.Type != "string" {
			return bad()
		}
	case json.Number:
		if s.Type != "" && s.Type != "number" && !(s.Type == "integer" && isInteger(string(v))) {
			return bad()
		}
	case bool:
		if s.Type != "" && s.Type != "boolean" {
			return bad()
		}
	case nil:
		if s.Type != "" {
			return bad()
		}
	case []any:
		if s.Type != "" && s.Type != "array" {
			return bad()
		}
		if s.Items.Typed() && s.Items.Known() {
			for i, e := range v {
				if err := s.Items.check(fmt.Sprintf("%s[%d]", path, i), e, nil); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		if s.Type != "" && s.Type != "object" {
			return bad()
		}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if m, ok := v[n]; ok && s.Properties[n].Known() {
				if err := s.Properties[n].check(path+"."+n, m, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sameJSON compares two decoded values, numbers by value.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, e1 := x.Float64()
		fy, e2 := y.Float64()
		return e1 == nil && e2 == nil && fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}

// CanMatch reports whether a value of type out may also have type in: a
// dataflow binding of out to in is refused when it cannot. It is false
// only when both name a base type and no value has both (an integer is a
// number, and a number may be an integer).
func CanMatch(out, in *Schema) bool {
	if !out.Typed() || !in.Typed() || !out.Known() || !in.Known() || out.Type == "" || in.Type == "" {
		return true
	}
	if out.Nullable && in.Nullable {
		return true
	}
	if out.Type == in.Type {
		if out.Type == "array" && out.Items != nil && in.Items != nil {
			return CanMatch(out.Items, in.Items)
		}
		return true
	}
	num := func(t string) bool { return t == "number" || t == "integer" }
	return num(out.Type) && num(in.Type)
}
