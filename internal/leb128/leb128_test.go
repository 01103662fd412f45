package leb128

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func rep(c byte, n int, last byte) []byte {
	return append(bytes.Repeat([]byte{c}, n), last)
}

// readCase is a reader's input and what it should return.
type readCase[T int64 | uint64] struct {
	name string
	in   []byte
	bits uint
	want T
	n    int
	err  error
}

func checkReads[T int64 | uint64](t *testing.T, fn string, read func([]byte, uint) (T, int, error), cases []readCase[T]) {
	t.Helper()
	for _, c := range cases {
		v, n, err := read(c.in, c.bits)
		if v != c.want || n != c.n || err != c.err {
			t.Errorf("%s: %s(% x, %d) = %d, %d, %v; want %d, %d, %v", c.name, fn, c.in, c.bits, v, n, err, c.want, c.n, c.err)
		}
	}
}

func TestUint(t *testing.T) {
	checkReads(t, "Uint", Uint, []readCase[uint64]{
		{"zero", []byte{0x00}, 32, 0, 1, nil},
		{"one byte", []byte{0x7f}, 32, 127, 1, nil},
		{"two bytes", []byte{0x80, 0x01}, 32, 128, 2, nil},
		{"624485", []byte{0xe5, 0x8e, 0x26}, 32, 624485, 3, nil},
		{"what follows is left", []byte{0x05, 0xff}, 32, 5, 1, nil},
		{"padded zero", rep(0x80, 4, 0x00), 32, 0, 5, nil},
		{"max u32", rep(0xff, 4, 0x0f), 32, math.MaxUint32, 5, nil},
		{"u32 overflow", rep(0xff, 4, 0x1f), 32, 0, 5, ErrOverflow},
		{"u32 overflow, high bit", rep(0x80, 4, 0x40), 32, 0, 5, ErrOverflow},
		{"u32 six bytes", append(rep(0x80, 4, 0x80), 0x00), 32, 0, 5, ErrTooLong},
		{"u32 six bytes at the end", rep(0x80, 4, 0x80), 32, 0, 5, ErrTooLong},
		{"empty", nil, 32, 0, 0, ErrTruncated},
		{"continued, then nothing", []byte{0x80}, 32, 0, 1, ErrTruncated},
		{"four of five", rep(0xff, 3, 0xff), 32, 0, 4, ErrTruncated},
		{"max u64", rep(0xff, 9, 0x01), 64, math.MaxUint64, 10, nil},
		{"u64 overflow", rep(0xff, 9, 0x02), 64, 0, 10, ErrOverflow},
		{"u64 eleven bytes", append(rep(0x80, 9, 0x80), 0x00), 64, 0, 10, ErrTooLong},
		{"u64 in nine", rep(0xff, 8, 0x7f), 64, 1<<63 - 1, 9, nil},
		{"u1", []byte{0x01}, 1, 1, 1, nil},
		{"u1 overflow", []byte{0x02}, 1, 0, 1, ErrOverflow},
		{"u7", []byte{0x7f}, 7, 127, 1, nil},
		{"u7 continued", []byte{0x81, 0x00}, 7, 0, 1, ErrTooLong},
		{"u8 in two", []byte{0xff, 0x01}, 8, 255, 2, nil},
		{"u8 overflow", []byte{0xff, 0x02}, 8, 0, 2, ErrOverflow},
	})
}

func TestInt(t *testing.T) {
	checkReads(t, "Int", Int, []readCase[int64]{
		{"zero", []byte{0x00}, 32, 0, 1, nil},
		{"-1", []byte{0x7f}, 32, -1, 1, nil},
		{"63", []byte{0x3f}, 32, 63, 1, nil},
		{"-64", []byte{0x40}, 32, -64, 1, nil},
		{"64", []byte{0xc0, 0x00}, 32, 64, 2, nil},
		{"-128", []byte{0x80, 0x7f}, 32, -128, 2, nil},
		{"-123456", []byte{0xc0, 0xbb, 0x78}, 32, -123456, 3, nil},
		{"what follows is left", []byte{0x7f, 0xff}, 32, -1, 1, nil},
		{"max s32", rep(0xff, 4, 0x07), 32, math.MaxInt32, 5, nil},
		{"min s32", rep(0x80, 4, 0x78), 32, math.MinInt32, 5, nil},
		{"padded -1", rep(0xff, 4, 0x7f), 32, -1, 5, nil},
		{"unused bits are not checked", rep(0xff, 4, 0x0f), 32, math.MaxUint32, 5, nil},
		{"s32 six bytes", append(rep(0x80, 4, 0x80), 0x00), 32, 0, 5, ErrTooLong},
		{"s33 block type 0x40", []byte{0x40}, 33, -64, 1, nil},
		{"s33 type index", rep(0xff, 4, 0x0f), 33, math.MaxUint32, 5, nil},
		{"s33 six bytes", append(rep(0x80, 4, 0x80), 0x00), 33, 0, 5, ErrTooLong},
		{"max s64", rep(0xff, 9, 0x00), 64, math.MaxInt64, 10, nil},
		{"min s64", rep(0x80, 9, 0x7f), 64, math.MinInt64, 10, nil},
		{"s64 eleven bytes", append(rep(0x80, 9, 0x80), 0x00), 64, 0, 10, ErrTooLong},
		{"empty", nil, 64, 0, 0, ErrTruncated},
		{"continued, then nothing", []byte{0xff, 0xff}, 64, 0, 2, ErrTruncated},
	})
}

func TestSized(t *testing.T) {
	if v, n, err := Uint32(rep(0xff, 4, 0x0f)); v != math.MaxUint32 || n != 5 || err != nil {
		t.Errorf("Uint32(max) = %d, %d, %v", v, n, err)
	}
	if _, _, err := Uint32(rep(0xff, 4, 0x1f)); err != ErrOverflow {
		t.Errorf("Uint32(max+) error = %v, want ErrOverflow", err)
	}
	if v, n, err := Uint64(rep(0xff, 9, 0x01)); v != math.MaxUint64 || n != 10 || err != nil {
		t.Errorf("Uint64(max) = %d, %d, %v", v, n, err)
	}
	if v, n, err := Int32(rep(0x80, 4, 0x78)); v != math.MinInt32 || n != 5 || err != nil {
		t.Errorf("Int32(min) = %d, %d, %v", v, n, err)
	}
	if v, n, err := Int64(rep(0x80, 9, 0x7f)); v != math.MinInt64 || n != 10 || err != nil {
		t.Errorf("Int64(min) = %d, %d, %v", v, n, err)
	}
	if _, n, err := Int64(rep(0x80, 10, 0x00)); n != 10 || err != ErrTooLong {
		t.Errorf("Int64(11 bytes) = %d, %v; want 10, ErrTooLong", n, err)
	}
}

func TestAppend(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{624485, []byte{0xe5, 0x8e, 0x26}},
		{math.MaxUint32, rep(0xff, 4, 0x0f)},
		{math.MaxUint64, rep(0xff, 9, 0x01)},
	} {
		if got := AppendUint([]byte{0xaa}, c.v); !bytes.Equal(got, append([]byte{0xaa}, c.want...)) {
			t.Errorf("AppendUint(%d) = % x, want aa % x", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}},
		{-1, []byte{0x7f}},
		{63, []byte{0x3f}},
		{64, []byte{0xc0, 0x00}},
		{-64, []byte{0x40}},
		{-65, []byte{0xbf, 0x7f}},
		{-123456, []byte{0xc0, 0xbb, 0x78}},
		{math.MinInt32, rep(0x80, 4, 0x78)},
		{math.MaxInt64, rep(0xff, 9, 0x00)},
		{math.MinInt64, rep(0x80, 9, 0x7f)},
	} {
		if got := AppendInt([]byte{0xaa}, c.v); !bytes.Equal(got, append([]byte{0xaa}, c.want...)) {
			t.Errorf("AppendInt(%d) = % x, want aa % x", c.v, got, c.want)
		}
	}
}

// FuzzRoundTrip: what Append* writes, the readers read back whole.
func FuzzRoundTrip(f *testing.F) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		f.Add(uint64(v), v)
	}
	f.Fuzz(func(t *testing.T, u uint64, s int64) {
		b := AppendUint(nil, u)
		if v, n, err := Uint64(b); v != u || n != len(b) || err != nil {
			t.Fatalf("Uint64(AppendUint(%d) = % x) = %d, %d, %v", u, b, v, n, err)
		}
		if u <= math.MaxUint32 {
			if v, n, err := Uint32(b); uint64(v) != u || n != len(b) || err != nil {
				t.Fatalf("Uint32(AppendUint(%d) = % x) = %d, %d, %v", u, b, v, n, err)
			}
		} else if _, _, err := Uint32(b); err == nil {
			t.Fatalf("Uint32(AppendUint(%d) = % x) read a u32", u, b)
		}
		b = AppendInt(nil, s)
		if v, n, err := Int64(b); v != s || n != len(b) || err != nil {
			t.Fatalf("Int64(AppendInt(%d) = % x) = %d, %d, %v", s, b, v, n, err)
		}
		if s >= math.MinInt32 && s <= math.MaxInt32 {
			if v, n, err := Int32(b); int64(v) != s || n != len(b) || err != nil {
				t.Fatalf("Int32(AppendInt(%d) = % x) = %d, %d, %v", s, b, v, n, err)
			}
		}
	})
}

// FuzzRead: no input makes a reader panic or misreport its length, and an
// unsigned integer read is within its size and is written back no longer.
func FuzzRead(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add(rep(0xff, 4, 0x0f))
	f.Add(rep(0xff, 9, 0x01))
	f.Add(rep(0x80, 10, 0x00))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, bits := range []uint{1, 7, 8, 32, 33, 63, 64} {
			most := int(bits+6) / 7
			check := func(what string, n int, err error) {
				switch {
				case err == nil:
					if n < 1 || n > most {
						t.Fatalf("%s(% x, %d) took %d bytes", what, b, bits, n)
					}
				case errors.Is(err, ErrTruncated):
					if n != len(b) || n >= most {
						t.Fatalf("%s(% x, %d): truncated after %d bytes", what, b, bits, n)
					}
				case errors.Is(err, ErrTooLong), errors.Is(err, ErrOverflow):
					if n < 1 || n > most || n > len(b) {
						t.Fatalf("%s(% x, %d): %v after %d bytes", what, b, bits, err, n)
					}
				default:
					t.Fatalf("%s(% x, %d): unexpected error %v", what, b, bits, err)
				}
			}
			u, n, err := Uint(b, bits)
			check("Uint", n, err)
			if err == nil {
				if bits < 64 && u>>bits != 0 {
					t.Fatalf("Uint(% x, %d) = %d, more than %d bits", b, bits, u, bits)
				}
				if enc := AppendUint(nil, u); len(enc) > n {
					t.Fatalf("Uint(% x, %d) = %d in %d bytes, but AppendUint writes % x", b, bits, u, n, enc)
				}
			}
			s, n, err := Int(b, bits)
			check("Int", n, err)
			if err == nil {
				if enc := AppendInt(nil, s); bits < 64 && s >= -1<<(bits-1) && s < 1<<(bits-1) && len(enc) > n {
					t.Fatalf("Int(% x, %d) = %d in %d bytes, but AppendInt writes % x", b, bits, s, n, enc)
				}
			}
		}
	})
}
