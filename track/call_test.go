package track

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFailedCallCheck(t *testing.T) {
	good := FailedCall{Step: 2, Element: 3, SHA256: strings.Repeat("ab", 32), Task: "square", Input: json.RawMessage(`{"x":1}`)}
	if err := good.Check(); err != nil || good.Key() != "2:3" {
		t.Fatalf("a good record: %v %q", err, good.Key())
	}
	for name, mutate := range map[string]func(*FailedCall){
		"step 0":          func(c *FailedCall) { c.Step = 0 },
		"element -2":      func(c *FailedCall) { c.Element = -2 },
		"short sha":       func(c *FailedCall) { c.SHA256 = "abc" },
		"sha not hex":     func(c *FailedCall) { c.SHA256 = strings.Repeat("zz", 32) },
		"no task":         func(c *FailedCall) { c.Task = "" },
		"input not JSON":  func(c *FailedCall) { c.Input = json.RawMessage(`{`) },
		"negative limits": func(c *FailedCall) { c.Limits.Timeout = -1 },
	} {
		c := good
		mutate(&c)
		if c.Check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzFailedCall: a failed-call record read back from a tenant's Redis
// keys is refused or safe to act on, never a panic.
func FuzzFailedCall(f *testing.F) {
	f.Add([]byte(`{"step":1,"element":-1,"sha256":"` + strings.Repeat("0", 64) + `","task":"t","input":{},"limits":{"Timeout":1000}}`))
	f.Add([]byte(`{"step":-5,"sha256":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c FailedCall
		if json.Unmarshal(b, &c) != nil || c.Check() != nil {
			return
		}
		if c.Step < 1 || c.Element < -1 || len(c.SHA256) != 64 || c.Task == "" || !json.Valid(c.Input) {
			t.Fatalf("accepted %+v", c)
		}
		_ = c.Key()
		_ = c.SHA256[:12]
	})
}
