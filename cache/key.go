// Package cache keeps the results of task calls, content-addressed, so
// that a call is never computed twice. A call under flowhost is a pure
// function unless a grant lets the world in: its result is determined by
// the module's bytes, the task and its input, and every call starts from
// the same guest state (host.Reset). So the key is exactly those, and a
// hit is sound by construction: a module whose bytes changed has another
// sha256, an input that changed has another canonical form. Nothing
// needs invalidating.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/flowhost/flowhost/abi"
)

// Format is the version of the key and entry format: a new format never
// reads an old entry.
const Format = "1"

// Key is the cache key of a call of the task exported as export by the
// module with sha256 module, on input: the hash of the ABI version, the
// cache format, the module, the export and the input's canonical JSON.
// grants, when the call has any (a cache opted into by the flow), are
// part of the key too: a result read with other files or hosts is
// another result.
func Key(module, export string, input []byte, grants string) (string, error) {
	canon, err := Canonical(input)
	if err != nil {
		return "", err
	}
	return keyOf(module, export, canon, grants), nil
}

// keyOf is Key of an input already canonical.
func keyOf(module, export string, canon []byte, grants string) string {
	return keyPrefix(module, export, grants).key(canon)
}

// prefix is what every key of one task's calls begins with.
type prefix []byte

func keyPrefix(module, export, grants string) prefix {
	return prefix(fmt.Sprintf("flowhost-cache\x00abi %d\x00format %s\x00%s\x00%s\x00%s\x00", abi.Version, Format, module, export, grants))
}

func (p prefix) key(canon []byte) string {
	h := sha256.New()
	h.Write(p)
	h.Write(canon)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// Canonical is v's canonical JSON: object keys sorted, no white space,
// numbers normalised (1, 1.0 and 1e0 are 1; -0 is 0), strings as Go's
// encoder writes them. Two inputs a task cannot tell apart have the same
// canonical form.
func Canonical(v []byte) ([]byte, error) {
	if out, ok := canonFast(v); ok {
		return out, nil
	}
	return canonicalSlow(v)
}

// canonicalSlow is Canonical through Go's decoder and encoder: every
// input, escapes and duplicate keys included.
func canonicalSlow(v []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	var b bytes.Buffer
	if err := canon(&b, x); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func canon(b *bytes.Buffer, x any) error {
	switch v := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if err := canon(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canon(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(number(string(v)))
	default: // string, bool, nil
		eb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(eb)
	}
	return nil
}

// number normalises a JSON number: an integer literal stays exact, however
// long; any other is the shortest form of its float64 value, written as an
// integer when it is one.
func number(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return s
	}
	if f == 0 {
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
