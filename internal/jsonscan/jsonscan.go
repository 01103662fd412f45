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

// Object calls fn with each member of the JSON object src, in order: its
// key, unescaped, and its value as a slice of src. It returns fn's first
// error, or an error when src is not an object.
func Object(src []byte, fn func(key string, value []byte) error) error {
	if !json.Valid(src) {
		return errors.New("not JSON")
	}
	i := skipSpace(src, 0)
	if i == len(src) || src[i] != '{' {
		return errors.New("not an object")
	}
	i++
	for {
		i = skipSpace(src, i)
		if src[i] == '}' {
			return nil
		}
		// A key: a string, decoded as encoding/json decodes it when it has
		// an escape or bytes that are not UTF-8.
		k0 := i
		i = skipString(src, i)
		key := string(src[k0+1 : i-1])
		if bytes.IndexByte(src[k0:i], '\\') >= 0 || !utf8.ValidString(key) {
			if err := json.Unmarshal(src[k0:i], &key); err != nil {
				return err
			}
		}
		i = skipSpace(src, i) + 1 // the ':'
		i = skipSpace(src, i)
		v0 := i
		i = skipValue(src, i)
		if err := fn(key, src[v0:i]); err != nil {
			return err
		}
		i = skipSpace(src, i)
		if src[i] == ',' {
			i++
		}
	}
}

// skipString returns the index just past the string starting at i.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the (valid) value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && !bytes.ContainsRune([]byte(" \t\n\r,}]"), rune(b[i])) {
		i++
	}
	return i
}
