package host

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestWriteName(t *testing.T) {
	for _, name := range []string{"x", "a_b-c.d", "", `q"uote`, `back\slash`, "<&>", "tab\t", "é", "\u2028", "\xff"} {
		var b bytes.Buffer
		writeName(&b, name)
		want, _ := json.Marshal(name)
		if b.String() != string(want) {
			t.Errorf("writeName(%q) = %s, want %s", name, b.String(), want)
		}
	}
}
