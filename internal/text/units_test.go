package text

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"250ms", 250 * time.Millisecond, ""},
		{" 1m30s ", 90 * time.Second, ""},
		{"8760h", 8760 * time.Hour, ""},
		{"8760h0m0.000000001s", 0, "too long: at most 8760h (365 days)"},
		{"2100000h", 0, `duration "2100000h" is too long`},
		{"3000000h", 0, `duration "3000000h" is too long`}, // past what a time.Duration holds
		{"-3000000h", 0, "must be positive"},
		{"5", 0, `duration "5" has no unit`},
		{"0", 0, "must be positive"},
		{"-1s", 0, "must be positive"},
		{"soon", 0, `invalid duration "soon"`},
		{"", 0, "invalid duration"},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseDuration(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"512", 512, false}, {"64KiB", 64 << 10, false}, {"16MiB", 16 << 20, false}, {"1GB", 1e9, false},
		{"1.5 MiB", 3 << 19, false}, {"2gib", 2 << 30, false}, {"", 0, true}, {"12 parsecs", 0, true}, {"0", 0, true},
		// Whole numbers read exactly, past a float64's 53 bits; 8 EiB overflows an int64.
		{"9007199254740993", 9007199254740993, false}, {"9223372036854775807", 1<<63 - 1, false},
		{"9223372036854775808", 0, true}, {"8388607TiB", 8388607 << 40, false}, {"8388608TiB", 0, true},
		{"8388607.5TiB", 8388607<<40 + 1<<39, false}, {"8388608.5TiB", 0, true}, {"99999999999999999999999", 0, true}, {"0.5", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v", c.in, got, err)
		}
	}
}
