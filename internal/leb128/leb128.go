// Package leb128 reads and writes the LEB128 integers of the WebAssembly
// binary format: seven bits a byte, least significant first, the high bit
// of each byte set when another follows.
//
// The readers take the bytes an integer starts at and return its value and
// the number of bytes it took. On an error the value is 0 and the count is
// the bytes read up to and including the one found wrong (all of them for
// ErrTruncated), so that a caller can name where the integer went wrong.
package leb128

import "errors"

var (
	// ErrTruncated: the bytes end inside the integer.
	ErrTruncated = errors.New("leb128: the input ends inside an integer")
	// ErrTooLong: the integer takes more bytes than one of its size may
	// (ceil(bits/7)).
	ErrTooLong = errors.New("leb128: integer representation too long")
	// ErrOverflow: an unsigned integer's last byte carries bits beyond its
	// size.
	ErrOverflow = errors.New("leb128: integer too large")
)

// Uint reads an unsigned integer of at most bits bits (1 to 64), as the
// format requires: at most ceil(bits/7) bytes, and in the last of those
// no bit beyond the size.
func Uint(b []byte, bits uint) (uint64, int, error) {
	var v uint64
	var shift uint
	for i, c := range b {
		if shift+7 > bits && c>>(bits-shift) != 0 {
			// the last byte allowed may carry only the remaining bits, and
			// no continuation bit
			if c&0x80 != 0 {
				return 0, i + 1, ErrTooLong
			}
			return 0, i + 1, ErrOverflow
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
		if shift += 7; shift >= bits { // a size of a multiple of 7 bits
			return 0, i + 1, ErrTooLong
		}
	}
	return 0, len(b), ErrTruncated
}

// Int reads a signed integer of at most bits bits (1 to 64): at most
// ceil(bits/7) bytes, sign-extended from bit 6 of the last one. The unused
// high bits of a last byte of the greatest length are not checked (the
// format wants them to repeat the sign): flowhost's readers skip over
// signed immediates and leave validation to the runtime, so the value of a
// badly padded integer is what those bits make of it, not an error.
func Int(b []byte, bits uint) (int64, int, error) {
	var v int64
	var shift uint
	for i, c := range b {
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1, nil
		}
		if shift >= bits {
			return 0, i + 1, ErrTooLong
		}
	}
	return 0, len(b), ErrTruncated
}

// Uint32 reads a u32: at most 5 bytes, the fifth carrying at most 4 bits.
func Uint32(b []byte) (uint32, int, error) {
	v, n, err := Uint(b, 32)
	return uint32(v), n, err
}

// Uint64 reads a u64: at most 10 bytes, the tenth carrying at most 1 bit.
func Uint64(b []byte) (uint64, int, error) { return Uint(b, 64) }

// Int32 reads an s32: at most 5 bytes. The value is Int's, truncated to 32
// bits.
func Int32(b []byte) (int32, int, error) {
	v, n, err := Int(b, 32)
	return int32(v), n, err
}

// Int64 reads an s64: at most 10 bytes.
func Int64(b []byte) (int64, int, error) { return Int(b, 64) }

// AppendUint appends the shortest encoding of v.
func AppendUint(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendInt appends the shortest encoding of v.
func AppendInt(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
