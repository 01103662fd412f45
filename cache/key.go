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
	"sync"
	"sync/atomic"

	"github.com/flowhost/flowhost/abi"
)

// Format is the version of the key and entry format: a new format never
// reads an old entry.
const Format = "2"

// Key is a cache key: the sha256 of everything that determines a call's
// result. The zero Key names no entry (a call that is not cached).
type Key [sha256.Size]byte

// String is the key in hex, as it names a Redis key.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// KeyOf is the cache key of a call of the task exported as export by the
// module with sha256 module, on input: the hash of the ABI version, the
// cache format, the module, the export and the input's canonical JSON.
// grants, when the call has any (a cache opted into by the flow), are
// part of the key too: a result read with other files or hosts is
// another result.
func KeyOf(module, export string, input []byte, grants string) (Key, error) {
	canon, err := Canonical(input)
	if err != nil {
		return Key{}, err
	}
	return keyPrefix(module, export, grants).key(canon), nil
}

// prefix is the hash of what every key of one task's calls is made of
// besides the input: a key is then the hash of prefix and input, one
// block of sha256 for a small input.
type prefix [sha256.Size]byte

func keyPrefix(module, export, grants string) prefix {
	k := prefixOf{module, export, grants}
	if p, ok := prefixes.Load(k); ok {
		return p.(prefix)
	}
	p := prefix(sha256.Sum256(fmt.Appendf(nil, "flowhost-cache\x00abi %d\x00format %s\x00%s\x00%s\x00%s\x00", abi.Version, Format, module, export, grants)))
	if prefixCount.Add(1) > maxPrefixes { // bounded: a worker serves many flows
		prefixes.Clear()
		prefixCount.Store(0)
	}
	prefixes.Store(k, p)
	return p
}

// prefixes remembers the prefixes of the tasks called lately: a dataflow
// node is a batch of one call, whose prefix would cost more than its key.
var (
	prefixes    sync.Map // prefixOf -> prefix
	prefixCount atomic.Int64
)

const maxPrefixes = 4096

type prefixOf struct{ module, export, grants string }

// key is the key of the call on canon. Its buffer stays on the stack for
// an input of up to 224 bytes.
func (p prefix) key(canon []byte) Key {
	var buf [256]byte
	return Key(sha256.Sum256(append(append(buf[:0], p[:]...), canon...)))
}

// Canonical is v's canonical JSON: object keys sorted, no white space,
// numbers normalised (1, 1.0 and 1e0 are 1; -0 is 0), strings as Go's
// encoder writes them. Two inputs a task cannot tell apart have the same
// canonical form. An input already canonical is returned as it is.
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
