// Package expr compiles and evaluates the expressions of flows: a step's
// or task's `when`, a branch's cases and a concurrency key. They are CEL
// (https://cel.dev), checked when the flow is loaded, so that a syntax
// error, an unknown name or an expression of the wrong type is a flow
// error before anything runs. Evaluation is bounded: an expression has
// at most MaxSource bytes and a cost limit, so a tenant's expression
// cannot hold a worker.
package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// MaxSource bounds an expression's length in bytes.
const MaxSource = 4096

// maxCost bounds the work of one evaluation, in CEL's cost units (about
// one per operation and per element a comprehension visits).
const maxCost = 1_000_000

// Result types an expression may be compiled for.
var (
	Bool = cel.BoolType
	// Any is an expression of any type (a key: checked when evaluated).
	Any = cel.DynType
)

// Program is a checked expression, safe for concurrent use.
type Program struct {
	src  string
	prg  cel.Program
	want *cel.Type
	uses map[string]bool
	// fields are the fields read of each variable (x.f, x["f"]), tested
	// those only tested for (has(x.f)), and whole the variables read
	// otherwise too.
	fields, tested map[string][]string
	whole          map[string]bool
	// path is the variable (and field) the expression is, when it is
	// nothing more: `result`, `inputs.text`.
	path []string
}

// Compile checks src, an expression over the variables vars (each any
// JSON value; "inputs"-like names are maps from string) of type want.
func Compile(src string, vars []string, want *cel.Type) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the expression is empty")
	}
	if len(src) > MaxSource {
		return nil, fmt.Errorf("the expression is %d bytes, more than %d", len(src), MaxSource)
	}
	// No string extensions: replace, join and format build their result
	// before CEL can charge its size, so a short expression could
	// allocate gigabytes within the cost limit.
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true), cel.ParserExpressionSizeLimit(MaxSource), cel.ParserRecursionLimit(64)}
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s (in %q; names: %s)", describe(iss.Errors()), src, strings.Join(vars, ", "))
	}
	if t := ast.OutputType(); !want.IsExactType(cel.DynType) && !t.IsExactType(want) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("%q is %s, not %s", src, typeName(t), typeName(want))
	}
	prg, err := env.Program(ast, cel.CostLimit(maxCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("%q: %v", src, err)
	}
	p := &Program{src: src, prg: prg, want: want, uses: map[string]bool{}, fields: map[string][]string{}, tested: map[string][]string{}, whole: map[string]bool{}}
	refs := ast.NativeRep().ReferenceMap()
	for _, r := range refs {
		if r.Name != "" && r.Value == nil && len(r.OverloadIDs) == 0 { // a variable
			p.uses[r.Name] = true
		}
	}
	for _, e := range celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.IdentKind)) {
		name := e.AsIdent()
		if r, ok := refs[e.ID()]; !ok || r.Name != name {
			continue // a comprehension's own variable
		}
		if f, test, ok := fieldOf(e); ok && test {
			p.tested[name] = append(p.tested[name], f)
		} else if ok {
			p.fields[name] = append(p.fields[name], f)
		} else {
			p.whole[name] = true
		}
	}
	switch e := ast.NativeRep().Expr(); e.Kind() {
	case celast.IdentKind:
		if p.uses[e.AsIdent()] {
			p.path = []string{e.AsIdent()}
		}
	case celast.SelectKind:
		if sel := e.AsSelect(); !sel.IsTestOnly() && sel.Operand().Kind() == celast.IdentKind && p.uses[sel.Operand().AsIdent()] {
			p.path = []string{sel.Operand().AsIdent(), sel.FieldName()}
		}
	}
	return p, nil
}

// fieldOf is the field its parent reads of e (e.f or e["f"]), and
// whether it only tests for it (has(e.f)).
func fieldOf(e celast.NavigableExpr) (field string, test, ok bool) {
	parent, ok := e.Parent()
	if !ok {
		return "", false, false
	}
	switch parent.Kind() {
	case celast.SelectKind:
		sel := parent.AsSelect()
		return sel.FieldName(), sel.IsTestOnly(), true
	case celast.CallKind:
		c := parent.AsCall()
		if args := c.Args(); c.FunctionName() == "_[_]" && len(args) == 2 && args[0].ID() == e.ID() && args[1].Kind() == celast.LiteralKind {
			if s, ok := args[1].AsLiteral().(types.String); ok {
				return string(s), false, true
			}
		}
	}
	return "", false, false
}

// Reads says which fields of the variable name the expression reads
// (fields), which it only tests for with has() (tested), and whether it
// uses the variable otherwise than by field (whole).
func (p *Program) Reads(name string) (fields, tested []string, whole bool) {
	return p.fields[name], p.tested[name], p.whole[name]
}

func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(cel.BoolType):
		return "a boolean (true or false)"
	case t.IsExactType(cel.StringType):
		return "a string"
	case t.IsExactType(cel.IntType), t.IsExactType(cel.DoubleType), t.IsExactType(cel.UintType):
		return "a number"
	}
	return "of type " + t.String()
}

// describe is CEL's errors in one line, each at its column.
func describe(errs []*common.Error) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, fmt.Sprintf("col %d: %s", e.Location.Column()+1, e.Message))
	}
	return strings.Join(parts, "; ")
}

// String is the expression's source.
func (p *Program) String() string { return p.src }

// Constant reports whether the expression reads no variable: its value
// is the same at every evaluation.
func (p *Program) Constant() bool { return len(p.uses) == 0 }

// Uses reports whether the expression reads the variable name.
func (p *Program) Uses(name string) bool { return p.uses[name] }

// Vars are an evaluation's variables, as JSON; only those the expression
// uses are decoded.
type Vars map[string]json.RawMessage

// Bool evaluates a Bool expression.
func (p *Program) Bool(vars Vars) (bool, error) {
	v, err := p.eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%q is %s, not true or false", p.src, preview(v))
	}
	return bool(b), nil
}

// Key evaluates a key: a string, or a number or boolean, which is
// written as text (7 is "7").
func (p *Program) Key(vars Vars) (string, error) {
	v, err := p.eval(vars)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Double:
		return strconv.FormatFloat(float64(x), 'g', -1, 64), nil
	case types.Bool:
		return strconv.FormatBool(bool(x)), nil
	}
	return "", fmt.Errorf("%q is %s: a key is a string or a number", p.src, preview(v))
}

// JSON evaluates the expression to a JSON value. An expression that is
// a variable, or a field of one (`result`, `inputs.text`), gives that
// value's own JSON, as it was.
func (p *Program) JSON(vars Vars) (json.RawMessage, error) {
	if p.path != nil {
		raw := vars[p.path[0]]
		if len(p.path) == 1 {
			if raw == nil {
				return json.RawMessage("null"), nil
			}
			return raw, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("%q: %s is not an object", p.src, p.path[0])
		}
		v, ok := fields[p.path[1]]
		if !ok {
			return nil, fmt.Errorf("%q: no such key: %s", p.src, p.path[1])
		}
		return v, nil
	}
	v, err := p.eval(vars)
	if err != nil {
		return nil, err
	}
	pb, err := v.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
	if err != nil {
		return nil, fmt.Errorf("%q: %v", p.src, err)
	}
	b, err := protojson.Marshal(pb.(*structpb.Value))
	if err != nil {
		return nil, fmt.Errorf("%q: %v", p.src, err)
	}
	return b, nil
}

func (p *Program) eval(vars Vars) (ref.Val, error) {
	act := make(map[string]any, len(p.uses))
	for name := range p.uses {
		raw, ok := vars[name]
		if !ok || len(raw) == 0 {
			act[name] = nil
			continue
		}
		v, err := decode(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: the value of %s: %v", p.src, name, err)
		}
		act[name] = v
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", p.src, err)
	}
	return out, nil
}

func preview(v ref.Val) string {
	s := fmt.Sprint(v.Value())
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// decode reads JSON into the values CEL takes, with integers as int64
// (so that `%` and integer comparisons work) and other numbers as
// float64. The input is checked whole once, then read in one pass: a
// condition over a 20,000-element result costs a step a millisecond,
// not the several that encoding/json's generic decoding takes.
func decode(raw []byte) (any, error) {
	if !json.Valid(raw) {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return nil, errors.New("not one JSON value")
	}
	d := decoder{b: raw}
	return d.value()
}

// decoder reads valid JSON.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) space() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *decoder) value() (any, error) {
	d.space()
	switch c := d.b[d.i]; {
	case c == '[':
		d.i++
		out := []any{}
		for {
			d.space()
			if d.b[d.i] == ']' {
				d.i++
				return out, nil
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			d.space()
			if d.b[d.i] == ',' {
				d.i++
			}
		}
	case c == '{':
		d.i++
		out := map[string]any{}
		for {
			d.space()
			if d.b[d.i] == '}' {
				d.i++
				return out, nil
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.space()
			d.i++ // ':'
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			out[k] = v
			d.space()
			if d.b[d.i] == ',' {
				d.i++
			}
		}
	case c == '"':
		return d.str()
	case c == 't':
		d.i += 4
		return true, nil
	case c == 'f':
		d.i += 5
		return false, nil
	case c == 'n':
		d.i += 4
		return nil, nil
	default:
		j := d.i
		integer, n := true, int64(0)
	digits:
		for ; d.i < len(d.b); d.i++ {
			switch c := d.b[d.i]; {
			case c >= '0' && c <= '9':
				if n > (1<<62)/10 {
					integer = false // ParseInt says whether it fits
				}
				n = n*10 + int64(c-'0')
			case c == '-' && d.i == j:
			case c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E':
				integer = false
			default:
				break digits
			}
		}
		if integer {
			if d.b[j] == '-' {
				return -n, nil
			}
			return n, nil
		}
		num := string(d.b[j:d.i])
		if n, err := strconv.ParseInt(num, 10, 64); err == nil {
			return n, nil
		}
		f, _ := strconv.ParseFloat(num, 64) // valid JSON: past the range, ±Inf
		return f, nil
	}
}

// str reads a string; one with escapes (or bytes that are not UTF-8,
// which encoding/json replaces) is unquoted by encoding/json.
func (d *decoder) str() (string, error) {
	j := d.i
	d.i++
	escaped := false
	for d.b[d.i] != '"' {
		if d.b[d.i] == '\\' {
			escaped = true
			d.i++
		}
		d.i++
	}
	d.i++
	if !escaped && utf8.Valid(d.b[j+1:d.i-1]) {
		return string(d.b[j+1 : d.i-1]), nil
	}
	var s string
	err := json.Unmarshal(d.b[j:d.i], &s)
	return s, err
}
