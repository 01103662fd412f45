package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagBounds: a count or a duration out of its range is refused while
// the command line is parsed, with exit code 2, naming the flag and the
// range, before any flow is read or broker dialled (the flow and the
// broker here do not exist).
func TestFlagBounds(t *testing.T) {
	const broker = "redis://127.0.0.1:1/0"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "nope.toml", "--workers", "100000000"}, `--workers: "100000000" is not a number from 1 to 1024, or 0 for one per core`},
		{[]string{"run", "nope.toml", "--workers=-1"}, `--workers: "-1" is not a number from 1 to 1024`},
		{[]string{"run", "nope.toml", "--workers", "1025"}, `--workers: "1025" is not a number`},
		{[]string{"run", "nope.toml", "--workers", "1e3"}, `--workers: "1e3" is not a number`},
		{[]string{"run", "nope.toml", "--result-ttl", "2100000h"}, `--result-ttl: duration "2100000h" is too long: at most 8760h (365 days)`},
		{[]string{"run", "nope.toml", "--result-ttl", "1ms"}, `--result-ttl 1ms is too short: at least 1s`},
		{[]string{"run", "nope.toml", "--result-ttl", "24"}, `--result-ttl: duration "24" has no unit`},
		{[]string{"worker", "--broker", broker, "--concurrency", "100000000"}, `--concurrency: "100000000" is not a number from 1 to 1024`},
		{[]string{"worker", "--broker", broker, "--batch-size", "0"}, `--batch-size: "0" is not a number from 1 to 10000`},
		{[]string{"worker", "--broker", broker, "--batch-size", "1000000000"}, `--batch-size: "1000000000" is not a number from 1 to 10000`},
		{[]string{"worker", "--broker", broker, "--max-deliveries", "0"}, `--max-deliveries: "0" is not a number from 1 to 1000`},
		{[]string{"worker", "--broker", broker, "--lease", "2100000h"}, `--lease: duration "2100000h" is too long`},
		{[]string{"worker", "--broker", broker, "--lease", "1ns"}, `--lease 1ns is too short: at least 100ms`},
		{[]string{"worker", "--broker", broker, "--drain", "3000000h"}, `--drain: duration "3000000h" is too long`},
		{[]string{"worker", "--broker", broker, "--drain", "0s"}, `--drain: duration "0s" must be positive`},
		{[]string{"runs", "--broker", broker, "--limit", "0"}, `--limit: "0" is not a number from 1 to 1000`},
		{[]string{"runs", "--broker", broker, "--limit=-1"}, `--limit: "-1" is not a number from 1 to 1000`},
		{[]string{"runs", "--broker", broker, "--limit", "9223372036854775807"}, `--limit: "9223372036854775807" is not a number from 1 to 1000`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			if code != exitInvalid || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("exit %d, stderr %q\nwant exit 2 and %q", code, errb.String(), c.want)
			}
		})
	}
}

// TestFlagDefaults: every default is within its flag's range, and the
// ends of each range are accepted. The flow and the broker URL are bad:
// parsing succeeded when the error is about them.
func TestFlagDefaults(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "nope.toml"}, "nope.toml"},
		{[]string{"run", "nope.toml", "--workers", "1024", "--result-ttl", "8760h"}, "nope.toml"},
		{[]string{"run", "nope.toml", "--workers", "1", "--result-ttl", "1s"}, "nope.toml"},
		{[]string{"worker", "--broker", "nope://x"}, `broker URL "nope://x"`},
		{[]string{"worker", "--broker", "nope://x", "--concurrency", "1024", "--batch-size", "10000", "--max-deliveries", "1000", "--lease", "100ms", "--drain", "8760h"}, `broker URL "nope://x"`},
		{[]string{"runs", "--broker", "nope://x"}, `broker URL "nope://x"`},
		{[]string{"runs", "--broker", "nope://x", "--limit", "1000"}, `broker URL "nope://x"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(c.args, &out, &errb); code != exitInvalid || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want it about %q", code, errb.String(), c.want)
			}
		})
	}
}

// TestCPUProfile: --cpuprofile writes a profile pprof reads (it starts
// with gzip's magic), and an unwritable path is refused with exit code 2.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.prof")
	var out, errb bytes.Buffer
	if code := run([]string{"--cpuprofile", path, "inspect", "../../plugins/examples/mathwat/mathwat.wasm"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %d bytes, %v", len(b), err)
	}
	errb.Reset()
	if code := run([]string{"--cpuprofile", filepath.Join(dir, "no", "such", "dir"), "inspect", "x.wasm"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--cpuprofile") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
