package cache_test

import (
	"testing"

	"github.com/flowhost/flowhost/cache"
)

// FuzzCanonical: any input (a tenant writes them) is refused or given a
// canonical form that is valid, stable and its own canonical form; an
// entry read back (from a store a tenant may write) unseals only intact.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2.50,-0,1e300]}`, `"\u00e9"`, `12345678901234567890123`, `[[[[]]]]`, `{"a":`, `1e400`, `-1E-400`, `{"a":1,"a":2}`, `{"z":{"b":[1,{"y":2,"x":"<"}],"a":true}}`, ` [ 1 , -0.0 , 5e-1 ] `, `"a\u0041"`, `01`, `1.`, `{"é":1,"e":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := cache.Canonical(b)
		slow, serr := cache.CanonicalSlow(b)
		if (err == nil) != (serr == nil) || string(c) != string(slow) {
			t.Fatalf("Canonical(%q) = %q, %v; the decoder's way: %q, %v", b, c, err, slow, serr)
		}
		if err == nil {
			again, err := cache.Canonical(c)
			if err != nil || string(again) != string(c) {
				t.Fatalf("Canonical(%q) = %q, whose canonical form is %q (%v)", b, c, again, err)
			}
		}
		if v, ok := cache.Unseal(b); ok && string(cache.Seal(v)) != string(b) {
			t.Fatalf("Unseal accepted %q", b)
		}
	})
}
