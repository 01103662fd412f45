package host

import (
	"math/rand/v2"
)

// fixedSeed seeds the randomness of calls that are not granted real
// randomness.
var fixedSeed = [32]byte{'f', 'l', 'o', 'w', 'h', 'o', 's', 't'}

// fixedRand is an instance's source of randomness (WASI random_get) when
// random is not granted: a ChaCha8 stream from fixedSeed, restarted at
// the start of every call, so that each call reads the same bytes
// whatever the instance served before (its start-up included).
type fixedRand struct {
	c    rand.ChaCha8
	read bool // since the last restart
}

func newFixedRand() *fixedRand {
	r := &fixedRand{}
	r.c.Seed(fixedSeed)
	return r
}

// Read implements io.Reader for the runtime's random_get.
func (r *fixedRand) Read(p []byte) (int, error) {
	r.read = true
	return r.c.Read(p)
}

// restart rewinds the stream to its start, if anything read it.
func (r *fixedRand) restart() {
	if r.read {
		r.c.Seed(fixedSeed)
		r.read = false
	}
}
