package dag

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flowhost/flowhost/expr"
	"github.com/flowhost/flowhost/pipeline"
)

// Throttle is a step's or dataflow task's checked concurrency key and
// rate limit (pipeline.Concurrency, pipeline.Rate).
type Throttle struct {
	// Key is the concurrency key, nil for none; Limit the calls with the
	// same key that may run at once.
	Key   *expr.Program
	Limit int
	// Rate is the calls per second, 0 for no rate limit; RateKey the
	// rate's key, nil for one rate per task; RateText as written.
	Rate     float64
	RateKey  *expr.Program
	RateText string
}

// KeyVars are the variables of a concurrency or rate key: the flow's
// inputs and the call's own input values, each an object.
var KeyVars = []string{"inputs", "args"}

// MaxConcurrencyLimit bounds a concurrency key's limit.
const MaxConcurrencyLimit = 1 << 16

// MaxRate bounds a rate limit's count per unit.
const MaxRate = 1_000_000

// ParseRate reads "N/s", "N/m" or "N/h" (N from 1 to MaxRate) as calls
// per second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	secs := map[string]float64{"s": 1, "m": 60, "h": 3600}[strings.TrimSpace(unit)]
	if !ok || err != nil || count < 1 || count > MaxRate || secs == 0 {
		return 0, fmt.Errorf("rate %q: write calls per unit of time, like \"100/s\", \"30/m\" or \"1000/h\" (1 to %d per unit)", s, MaxRate)
	}
	return float64(count) / secs, nil
}

// planThrottle checks a step's or task's concurrency and rate options
// against the flow's inputs and the inputs of tasks (the step's). It
// returns the key at fault with an error.
func planThrottle(o pipeline.Options, in pipeline.Inputs, tasks []TaskRef) (*Throttle, string, error) {
	if o.Concurrency == nil && o.Rate == nil {
		return nil, "", nil
	}
	th := &Throttle{}
	key := func(src string) (*expr.Program, error) {
		p, err := expr.Compile(src, KeyVars, expr.Any)
		if err != nil {
			return nil, err
		}
		for _, tr := range tasks {
			if err := checkReads(p, src, in, &tr); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	if c := o.Concurrency; c != nil {
		if c.Limit < 1 || c.Limit > MaxConcurrencyLimit {
			return nil, "concurrency", fmt.Errorf("concurrency limit %d: between 1 and %d", c.Limit, MaxConcurrencyLimit)
		}
		p, err := key(c.Key)
		if err != nil {
			return nil, "concurrency", fmt.Errorf("concurrency key: %w", err)
		}
		th.Key, th.Limit = p, c.Limit
	}
	if r := o.Rate; r != nil {
		rate, err := ParseRate(r.Limit)
		if err != nil {
			return nil, "rate", err
		}
		th.Rate, th.RateText = rate, r.Limit
		if r.Key != "" {
			if th.RateKey, err = key(r.Key); err != nil {
				return nil, "rate", fmt.Errorf("rate key: %w", err)
			}
		}
	}
	return th, "", nil
}
