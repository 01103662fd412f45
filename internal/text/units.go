package text

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowhost/flowhost/pipeline"
)

// durationRe matches what time.ParseDuration reads, so that a duration it
// refuses for its size is told from one it cannot read.
var durationRe = regexp.MustCompile(`^[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// ParseDuration parses a positive duration written as in Go ("250ms",
// "5s", "1m30s"), refusing bare numbers, which have no unit, and
// durations longer than pipeline.MaxDuration.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	d, err := time.ParseDuration(t)
	if err != nil {
		if _, nerr := strconv.ParseFloat(t, 64); nerr == nil {
			return 0, fmt.Errorf("duration %q has no unit: write it like \"%ss\" or \"%sms\"", s, t, t)
		}
		if durationRe.MatchString(t) { // well written, but past what a time.Duration holds
			if strings.HasPrefix(t, "-") {
				return 0, fmt.Errorf("duration %q must be positive", s)
			}
			return 0, fmt.Errorf("duration %q is too long: at most %s", s, pipeline.MaxDurationText)
		}
		return 0, fmt.Errorf("invalid duration %q: write a number with a unit, like \"5s\", \"250ms\" or \"1m30s\"", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	if d > pipeline.MaxDuration {
		return 0, fmt.Errorf("duration %q is too long: at most %s", s, pipeline.MaxDurationText)
	}
	return d, nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// ParseSize parses a byte size: "512", "64KiB", "1.5MB", "2GiB" (KiB,
// MiB, GiB are powers of 1024; KB, MB, GB powers of 1000).
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '_') {
		i++
	}
	num, unit := strings.ReplaceAll(t[:i], "_", ""), strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := sizeUnits[unit]
	if err != nil && !errors.Is(err, strconv.ErrRange) || !ok {
		return 0, fmt.Errorf("invalid size %q: write a number with an optional unit, like \"65536\", \"64KiB\", \"16MiB\" or \"1GB\"", s)
	}
	outOfRange := fmt.Errorf("size %q is out of range: at least 1 byte, less than 8 EiB", s)
	if !strings.Contains(num, ".") {
		// A whole number reads exactly: a float64 holds only 53 bits.
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || n == 0 || n > math.MaxInt64/uint64(mult) {
			return 0, outOfRange
		}
		return n * uint64(mult), nil
	}
	v := f * mult
	if v < 1 || v >= 1<<63 {
		return 0, outOfRange
	}
	return uint64(v), nil
}
