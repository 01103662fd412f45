package text

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/flowhost/flowhost/pipeline"
)

// FuzzParseDuration: no string panics ParseDuration; what it accepts is
// positive, at most pipeline.MaxDuration, and reads back from its own
// String form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5s", "250ms", "1m30s", "1.5h", "8760h", "8760h0m0.000000001s", "2100000h", "3000000h",
		"-1s", "0", "5", " 5s ", "1µs", "1us", "+3m", "1h1h1h", ".5s", "5.s", "", "soon", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 || d > pipeline.MaxDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside (0, %v]", s, d, pipeline.MaxDuration)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, but ParseDuration(%q) = %v, %v", s, d, d.String(), back, err)
		}
	})
}

// FuzzParseSize: no string panics ParseSize; what it accepts is at least
// one byte and fits an int64, reads back from its decimal form, and a
// plain integer reads exactly.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "64KiB", "16MiB", "1GB", "1.5 MiB", "2gib", "1TiB", "1_000", "0", "0.5", "",
		"12 parsecs", "9007199254740993", "9223372036854775807", "9223372036854775808", "8388608TiB", "8388607.99TiB", ".", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 1 || n > math.MaxInt64 {
			t.Fatalf("ParseSize(%q) = %d, outside [1, MaxInt64]", s, n)
		}
		dec := strconv.FormatUint(n, 10)
		if back, err := ParseSize(dec); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, but ParseSize(%q) = %d, %v", s, n, dec, back, err)
		}
		if digits := strings.ReplaceAll(strings.TrimSpace(s), "_", ""); digits != "" && strings.Trim(digits, "0123456789") == "" {
			if exact, _ := strconv.ParseUint(digits, 10, 64); exact != n {
				t.Fatalf("ParseSize(%q) = %d, want exactly %d", s, n, exact)
			}
		}
	})
}
