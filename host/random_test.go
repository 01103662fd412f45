package host

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFixedRand: the fixed stream is ChaCha8 from fixedSeed however it is
// read (in small or large reads, across the end of the shared prefix),
// and a restart rewinds it to its start.
func TestFixedRand(t *testing.T) {
	want := make([]byte, 3*fixedPrefixLen)
	rand.NewChaCha8(fixedSeed).Read(want)
	for _, chunk := range []int{1, 7, 16, fixedPrefixLen - 1, fixedPrefixLen, fixedPrefixLen + 3, len(want)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			r := &fixedRand{}
			for pass := 0; pass < 2; pass++ { // the second pass after a restart
				var got []byte
				for len(got) < len(want) {
					b := make([]byte, min(chunk, len(want)-len(got)))
					if n, err := r.Read(b); n != len(b) || err != nil {
						t.Fatalf("Read = %d, %v", n, err)
					}
					got = append(got, b...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("pass %d: the stream read in chunks of %d differs from ChaCha8's", pass, chunk)
				}
				r.restart()
			}
		})
	}
}
