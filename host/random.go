package host

import (
	"io"
	"math/rand/v2"
	"sync"
)

// fixedSeed seeds the randomness of calls that are not granted real
// randomness.
var fixedSeed = [32]byte{'f', 'l', 'o', 'w', 'h', 'o', 's', 't'}

// fixedPrefixLen is how much of the fixed stream is kept, shared by every
// instance: a restart then costs nothing, where reseeding costs ~170 ns.
const fixedPrefixLen = 4 << 10

// fixedPrefix is the start of the ChaCha8 stream from fixedSeed.
var fixedPrefix = sync.OnceValue(func() []byte {
	b := make([]byte, fixedPrefixLen)
	rand.NewChaCha8(fixedSeed).Read(b)
	return b
})

// fixedRand is an instance's source of randomness (WASI random_get) when
// random is not granted: the ChaCha8 stream from fixedSeed, restarted at
// the start of every call, so that each call reads the same bytes
// whatever the instance served before (its start-up included).
type fixedRand struct {
	pos   int           // bytes of the stream read since the restart
	rest  *rand.ChaCha8 // the stream past the prefix, at pos; nil until needed
	meter *meterState   // charged for what is read
}

// Read implements io.Reader for the runtime's random_get.
func (r *fixedRand) Read(p []byte) (int, error) {
	r.meter.charge(randomCost(len(p)))
	n := 0
	if r.pos < fixedPrefixLen {
		n = copy(p, fixedPrefix()[r.pos:])
		r.pos += n
	}
	if n < len(p) {
		if r.rest == nil {
			r.rest = rand.NewChaCha8(fixedSeed)
			r.rest.Read(make([]byte, fixedPrefixLen)) // skip the prefix
		}
		r.rest.Read(p[n:])
		r.pos += len(p) - n
	}
	return len(p), nil
}

// restart rewinds the stream to its start.
func (r *fixedRand) restart() { r.pos, r.rest = 0, nil }

// randomCost is the fuel a random_get of n bytes costs: a unit per 16
// bytes, as for the bulk memory instructions, so that a guest cannot have
// the host fill buffers for minutes at a unit a call.
func randomCost(n int) uint64 { return bulkCost(uint64(n)) }

// chargedRand is an instance's real randomness (when granted), charged
// like fixedRand.
type chargedRand struct {
	r     io.Reader
	meter *meterState
}

func (r *chargedRand) Read(p []byte) (int, error) {
	r.meter.charge(randomCost(len(p)))
	return r.r.Read(p)
}
