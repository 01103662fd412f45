package meter

import (
	"errors"
	"fmt"

	"github.com/flowhost/flowhost/internal/leb128"
)

// ErrMalformed is wrapped by the errors Instrument returns for input that
// is not a well-formed WebAssembly binary module.
var ErrMalformed = errors.New("malformed module")

// ErrUnsupported is wrapped by the errors Instrument returns for modules
// that are well-formed but use something it cannot rewrite safely
// (a proposal it does not know, an earlier instrumentation, a name clash).
var ErrUnsupported = errors.New("unsupported module")

// decodeError is what the decoding helpers panic with; Instrument turns it
// back into an ordinary error. Panicking keeps the byte-level code linear.
type decodeError struct {
	kind error  // ErrMalformed or ErrUnsupported
	off  int    // absolute offset in the input, -1 if unknown
	msg  string // what went wrong, innermost first
}

func (e *decodeError) Error() string {
	if e.off >= 0 {
		return fmt.Sprintf("%v: %s (at byte offset %#x)", e.kind, e.msg, e.off)
	}
	return fmt.Sprintf("%v: %s", e.kind, e.msg)
}

func (e *decodeError) Unwrap() error { return e.kind }

// within runs f and prefixes the context ctx to any decodeError it raises.
func within(ctx string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			if de, ok := r.(*decodeError); ok {
				panic(&decodeError{kind: de.kind, off: de.off, msg: ctx + ": " + de.msg})
			}
			panic(r)
		}
	}()
	f()
}

func malformed(off int, format string, args ...any) {
	panic(&decodeError{kind: ErrMalformed, off: off, msg: fmt.Sprintf(format, args...)})
}

func unsupported(off int, format string, args ...any) {
	panic(&decodeError{kind: ErrUnsupported, off: off, msg: fmt.Sprintf(format, args...)})
}

// reader decodes a byte slice that starts at offset base of the input.
type reader struct {
	b    []byte
	pos  int
	base int
}

func newReader(b []byte, base int) *reader { return &reader{b: b, base: base} }

func (r *reader) off() int { return r.base + r.pos }

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) malformed(format string, args ...any) {
	panic(&decodeError{kind: ErrMalformed, off: r.off(), msg: fmt.Sprintf(format, args...)})
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.malformed("unexpected end of data")
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) peek() byte {
	if r.pos >= len(r.b) {
		r.malformed("unexpected end of data")
	}
	return r.b[r.pos]
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)-r.pos) {
		r.malformed("length %d runs past the end of data", n)
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	v, n, err := leb128.Uint(r.b[r.pos:], bits)
	r.pos += n
	if err != nil {
		r.lebError(err, bits)
	}
	return v
}

// sleb reads a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	v, n, err := leb128.Int(r.b[r.pos:], bits)
	r.pos += n
	if err != nil {
		r.lebError(err, bits)
	}
	return v
}

// lebError raises the error of a LEB128 read, just past the byte found wrong.
func (r *reader) lebError(err error, bits uint) {
	switch err {
	case leb128.ErrTruncated:
		r.malformed("unexpected end of data")
	case leb128.ErrOverflow:
		r.malformed("integer too large for %d bits", bits)
	}
	r.malformed("integer representation too long")
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *reader) name() string { return string(r.bytes(uint64(r.u32()))) }

// valType reads a value type, including the typed references of the
// function-references proposal (0x63/0x64 followed by a heap type).
func (r *reader) valType() {
	at := r.off()
	switch c := r.byte(); {
	case c >= 0x7b && c <= 0x7f: // i32 i64 f32 f64 v128
	case c >= 0x69 && c <= 0x74: // shorthand reference types (funcref, externref, exnref, ...)
	case c == 0x63 || c == 0x64: // (ref null ht), (ref ht)
		r.sleb(33)
	default:
		panic(&decodeError{kind: ErrMalformed, off: at, msg: fmt.Sprintf("invalid value type %#x", c)})
	}
}

// blockType reads a block type: 0x40, a value type or a type index.
func (r *reader) blockType() {
	if c := r.peek(); c == 0x63 || c == 0x64 {
		r.valType()
		return
	}
	r.sleb(33)
}

// limits reads table or memory limits (any flag combination: max, shared, 64-bit).
func (r *reader) limits() (flags byte) {
	flags = r.byte()
	if flags > 0x07 {
		r.malformed("invalid limits flags %#x", flags)
	}
	r.uleb(64)
	if flags&1 != 0 {
		r.uleb(64)
	}
	return flags
}

// memarg reads a memory argument: alignment (bit 6 announces a memory
// index, multi-memory) and offset (64-bit for memory64).
func (r *reader) memarg() (offset uint64) {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	return r.uleb(64)
}

func appendName(b []byte, s string) []byte {
	b = leb128.AppendUint(b, uint64(len(s)))
	return append(b, s...)
}
