package cache

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// canonFast writes v's canonical JSON without decoding it into Go values:
// the common case (no escapes, no duplicate keys, nesting of at most
// fastDepth) in one pass. ok is false for anything else, which
// canonicalSlow then handles; both give the same bytes (a fuzz target
// checks it).
func canonFast(v []byte) (out []byte, ok bool) {
	if isCanonical(v) {
		return v, true
	}
	s := scanner{in: v, out: make([]byte, 0, len(v))}
	s.ws()
	if !s.value(0) {
		return nil, false
	}
	s.ws()
	if s.pos != len(s.in) {
		return nil, false
	}
	return s.out, true
}

// isCanonical reports whether v is its own canonical form, in one pass
// that writes nothing: a false answer only means the writing pass must
// decide. Inputs the runner builds from canonical parts are, so they
// cost no copy.
func isCanonical(v []byte) bool {
	s := scanner{in: v, verify: true}
	return s.value(0) && s.pos == len(s.in)
}

const fastDepth = 64

// scanner walks JSON, writing its canonical form to out; with verify set
// it writes nothing and fails at the first byte that is not already
// canonical (white space, a number to normalise, keys out of order).
type scanner struct {
	in     []byte
	pos    int
	out    []byte
	verify bool
}

func (s *scanner) emit(b ...byte) {
	if !s.verify {
		s.out = append(s.out, b...)
	}
}

// ws skips white space; it fails only in verify mode, where any is.
func (s *scanner) ws() bool {
	start := s.pos
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return !s.verify || s.pos == start
		}
	}
	return !s.verify || s.pos == start
}

func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.in) || depth > fastDepth {
		return false
	}
	switch c := s.in[s.pos]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.num()
	}
	return false
}

func (s *scanner) lit(l string) bool {
	if !bytes.HasPrefix(s.in[s.pos:], []byte(l)) {
		return false
	}
	s.pos += len(l)
	if !s.verify {
		s.out = append(s.out, l...)
	}
	return true
}

// str copies a string that needs no escape in Go's encoding: no
// backslash, no control character, none of < > & (escaped for HTML), no
// U+2028 or U+2029, valid UTF-8.
func (s *scanner) str() bool {
	start := s.pos
	s.pos++
	for s.pos < len(s.in) {
		c := s.in[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.emit(s.in[start:s.pos]...)
			return true
		case c == '\\' || c < 0x20 || c == '<' || c == '>' || c == '&':
			return false
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.in[s.pos:])
			if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
				return false
			}
			s.pos += n
		}
	}
	return false
}

// num copies a number in JSON's grammar, normalised by number.
func (s *scanner) num() bool {
	start := s.pos
	if s.in[s.pos] == '-' {
		s.pos++
	}
	digits := func() int {
		n := 0
		for s.pos < len(s.in) && s.in[s.pos] >= '0' && s.in[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.in) && s.in[s.pos] == '0' {
		s.pos++
	} else if digits() == 0 {
		return false
	}
	if s.pos < len(s.in) && s.in[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return false
		}
	}
	if s.pos < len(s.in) && (s.in[s.pos] == 'e' || s.in[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.in) && (s.in[s.pos] == '+' || s.in[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return false
		}
	}
	lit := s.in[start:s.pos]
	if s.verify {
		// An integer other than -0 is its own form; any other number is
		// left to the writing pass.
		return bytes.IndexAny(lit, ".eE") < 0 && string(lit) != "-0"
	}
	s.out = append(s.out, number(string(lit))...)
	return true
}

func (s *scanner) array(depth int) bool {
	s.pos++
	s.emit('[')
	if !s.ws() {
		return false
	}
	if s.pos < len(s.in) && s.in[s.pos] == ']' {
		s.pos++
		s.emit(']')
		return true
	}
	for {
		if !s.ws() || !s.value(depth+1) || !s.ws() || s.pos >= len(s.in) {
			return false
		}
		switch s.in[s.pos] {
		case ',':
			s.pos++
			s.emit(',')
		case ']':
			s.pos++
			s.emit(']')
			return true
		default:
			return false
		}
	}
}

// member is an object member as written to out: its key (with quotes)
// and its value.
type member struct{ k0, k1, v1 int }

func (s *scanner) object(depth int) bool {
	s.pos++
	base := len(s.out)
	var buf [8]member
	ms := buf[:0]
	if !s.ws() {
		return false
	}
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		s.emit('{', '}')
		return true
	}
	var prev []byte // verify: the previous key, which this one must follow
	for {
		if !s.ws() || s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return false
		}
		k0, in0 := len(s.out), s.pos
		if !s.str() {
			return false
		}
		if s.verify {
			k := s.in[in0+1 : s.pos-1]
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return false
			}
			prev = k
		}
		k1 := len(s.out)
		if !s.ws() || s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return false
		}
		s.pos++
		if !s.ws() || !s.value(depth+1) {
			return false
		}
		if !s.verify {
			ms = append(ms, member{k0, k1, len(s.out)})
		}
		if !s.ws() || s.pos >= len(s.in) {
			return false
		}
		if s.in[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.in[s.pos] != '}' {
			return false
		}
		s.pos++
		break
	}
	if s.verify {
		return true
	}
	key := func(m member) []byte { return s.out[m.k0+1 : m.k1-1] }
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(key(a), key(b)) })
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(key(ms[i-1]), key(ms[i])) {
			return false // a duplicate key: the last one wins, as the decoder does
		}
	}
	sorted := make([]byte, 0, len(s.out)-base+len(ms)+2)
	sorted = append(sorted, '{')
	for i, m := range ms {
		if i > 0 {
			sorted = append(sorted, ',')
		}
		sorted = append(sorted, s.out[m.k0:m.k1]...)
		sorted = append(sorted, ':')
		sorted = append(sorted, s.out[m.k1:m.v1]...)
	}
	sorted = append(sorted, '}')
	s.out = append(s.out[:base], sorted...)
	return true
}
