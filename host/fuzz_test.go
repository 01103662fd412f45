package host_test

import (
	"context"
	"testing"

	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/internal/testmod"
)

// FuzzOutput: whatever a task outputs, the host's output check neither
// panics nor passes what is not JSON. The echo task returns its input's
// "value" member, so the fuzzer controls the output.
func FuzzOutput(f *testing.F) {
	e, err := host.New(context.Background(), host.Config{CacheDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close(context.Background())
	m, err := e.Load(context.Background(), testmod.Module(f, "testdata/hostile.wat", "testdata/hostile.json"))
	if err != nil {
		f.Fatal(err)
	}
	echo, _ := m.Task("echo")
	half, _ := m.Task("half_outputs")
	f.Add([]byte(`{"value":1}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"a":1,"b":2}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, in []byte) {
		// echo outputs its whole input: the output check sees exactly in.
		out, err := echo.Call(context.Background(), in, host.Limits{Memory: 16 << 20, MaxOutput: 1 << 16})
		if err == nil && string(out) != string(in) {
			t.Fatalf("echo changed %q into %q", in, out)
		}
		if _, err := echo.Outputs(in); err == nil && len(echo.Spec.Outputs) != 1 {
			t.Fatal("unreachable")
		}
		_, _ = half.Outputs(in)
	})
}
