package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// ErrTooDeep is the error CheckJSON wraps for a value nested past
// MaxDepth.
var ErrTooDeep = fmt.Errorf("nested more than %d levels deep: at most %d levels of arrays and objects are allowed", MaxDepth, MaxDepth)

// CheckJSON checks that v is one valid JSON value whose arrays and objects
// nest at most MaxDepth levels deep. It is the one check of every input
// value where it enters: a flow's [inputs] and args, --input, the values a
// Go program passes to Run, and the defaults a manifest declares. (A
// decoder that recurses per level fails on deep values, and Go's own stops
// at 10,000 levels; every input is refused alike, before anything runs.)
// The depth is measured first, without recursion, so a value millions of
// levels deep is refused as deep, not as invalid.
func CheckJSON(v []byte) error {
	depth := 0
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxDepth {
				return ErrTooDeep
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	var raw json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not valid JSON: %v (at byte %d)", se, se.Offset)
		}
		return fmt.Errorf("not valid JSON: %v", err)
	}
	return nil
}

// CheckInputs checks every value of in with CheckJSON, naming the first
// bad input (in name order).
func CheckInputs(in Inputs) error {
	for _, name := range in.names() {
		if err := CheckJSON(in[name]); err != nil {
			return fmt.Errorf("input %s: %w", name, err)
		}
	}
	return nil
}

// names returns the inputs' names, sorted.
func (in Inputs) names() []string {
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
