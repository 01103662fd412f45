// Package jsonscan walks JSON without decoding it into Go values: the
// elements of an array and the members of an object, as slices of the
// input. What crosses a trust boundary (a step's result, a task's input)
// is checked whole first (json.Valid), so the walk is a plain scan; fuzz
// targets hold it to encoding/json.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Array returns the elements of the JSON array src, as slices of it (no
// copy), or an error when src is not an array. null has no elements, as
// json.Unmarshal has it.
func Array(src []byte) ([]json.RawMessage, error) {
	if !json.Valid(src) {
		var v []json.RawMessage
		return nil, json.Unmarshal(src, &v) // its error names the fault
	}
	i := skipSpace(src, 0)
	if bytes.Equal(trimSpace(src[i:]), []byte("null")) {
		return nil, nil // as json.Unmarshal has it: no elements
	}
	if i == len(src) || src[i] != '[' {
		return nil, errors.New("not an array")
	}
	// src is valid JSON: elements end at a comma or the closing bracket
	// found outside any string or nested value.
	elems := make([]json.RawMessage, 0, bytes.Count(src, []byte{','})+1)
	depth, start, inStr := 0, -1, false
	for i++; i < len(src); i++ {
		c := src[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inStr = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 { // the array's own end
				if start >= 0 {
					elems = append(elems, trimSpace(src[start:i]))
				}
				return elems, nil
			}
			depth--
		case ',':
			if depth == 0 {
				elems = append(elems, trimSpace(src[start:i]))
				start = -1
				continue
			}
		}
		if start < 0 {
			start = i
		}
	}
	return nil, errors.New("not an array")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	j := len(b)
	for j > 0 && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[:j:j]
}

var errNotObject = errors.New("not a JSON object")

// Object calls fn with each member of the JSON object src, in order: its
// key, unescaped, and its value as a slice of src. It returns fn's first
// error, or an error when src is not an object. It does not check src
// whole first (a task's input, walked before every call, would pay for
// it twice): on valid JSON it agrees with encoding/json, and on anything
// else it fails or yields slices of src, never more.
func Object(src []byte, fn func(key, value []byte) error) error {
	i := skipSpace(src, 0)
	if i >= len(src) || src[i] != '{' {
		return errNotObject
	}
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == '}' {
		return end(src, i+1)
	}
	for {
		if i >= len(src) || src[i] != '"' {
			return errNotObject
		}
		k0 := i
		if i = skipString(src, i); i < 0 {
			return errNotObject
		}
		// A key is decoded as encoding/json decodes it when it has an
		// escape or bytes that are not UTF-8.
		key := src[k0+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var k string
			if json.Unmarshal(src[k0:i], &k) != nil {
				return errNotObject
			}
			key = []byte(k)
		}
		i = skipSpace(src, i)
		if i >= len(src) || src[i] != ':' {
			return errNotObject
		}
		i = skipSpace(src, i+1)
		v0 := i
		if i = skipValue(src, i); i <= v0 {
			return errNotObject
		}
		if err := fn(key, src[v0:i]); err != nil {
			return err
		}
		if i = skipSpace(src, i); i >= len(src) {
			return errNotObject
		}
		switch src[i] {
		case ',':
			i = skipSpace(src, i+1)
		case '}':
			return end(src, i+1)
		default:
			return errNotObject
		}
	}
}

// end checks nothing but white space follows index i.
func end(src []byte, i int) error {
	if skipSpace(src, i) != len(src) {
		return errNotObject
	}
	return nil
}

// skipString returns the index just past the string starting at i, or
// -1 when it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index just past the value starting at i (a
// scalar runs to the next delimiter), or -1 when a string or a nesting
// does not end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r', ',', '}', ']':
			return i
		}
		i++
	}
	return i
}
