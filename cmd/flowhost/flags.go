package main

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/alecthomas/kong"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/internal/text"
)

// Bounds of the count flags (docs/flows.md, "Limits on input"). A value
// outside is refused while the command line is parsed, before anything
// starts: --workers 100000000 would start as many goroutines.
const (
	maxWorkers    = 1024               // run --workers, worker --concurrency
	maxBatchSize  = redis.MaxBatchSize // worker --batch-size
	maxDeliveries = 1000               // worker --max-deliveries
	maxRunsLimit  = 1000               // runs --limit
)

// popCount reads a count flag's value and checks it is within [lo, hi];
// zero, when zeroMeans is set, is allowed too and means that.
func popCount(ctx *kong.DecodeContext, lo, hi int64, zeroMeans string) (int64, error) {
	t, err := ctx.Scan.PopValue("count")
	if err != nil {
		return 0, err
	}
	s := fmt.Sprint(t.Value)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || (n < lo || n > hi) && !(n == 0 && zeroMeans != "") {
		or := ""
		if zeroMeans != "" {
			or = ", or 0 for " + zeroMeans
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d%s", s, lo, hi, or)
	}
	return n, nil
}

// workersFlag is a number of calls run at once in one process: 1 to
// maxWorkers, or 0 for one per core.
type workersFlag int

// Decode reads the flag.
func (w *workersFlag) Decode(ctx *kong.DecodeContext) error {
	n, err := popCount(ctx, 1, maxWorkers, "one per core")
	*w = workersFlag(n)
	return err
}

// batchFlag is worker --batch-size.
type batchFlag int

// Decode reads the flag.
func (b *batchFlag) Decode(ctx *kong.DecodeContext) error {
	n, err := popCount(ctx, 1, maxBatchSize, "")
	*b = batchFlag(n)
	return err
}

// deliveriesFlag is worker --max-deliveries.
type deliveriesFlag int64

// Decode reads the flag.
func (d *deliveriesFlag) Decode(ctx *kong.DecodeContext) error {
	n, err := popCount(ctx, 1, maxDeliveries, "")
	*d = deliveriesFlag(n)
	return err
}

// runsLimitFlag is runs --limit.
type runsLimitFlag int64

// Decode reads the flag.
func (l *runsLimitFlag) Decode(ctx *kong.DecodeContext) error {
	n, err := popCount(ctx, 1, maxRunsLimit, "")
	*l = runsLimitFlag(n)
	return err
}

// durationMapper reads every time.Duration flag as flow.toml reads a
// duration: with a unit, positive, at most pipeline.MaxDuration.
var durationMapper = kong.TypeMapper(reflect.TypeOf(time.Duration(0)), kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
	t, err := ctx.Scan.PopValue("duration")
	if err != nil {
		return err
	}
	d, err := text.ParseDuration(fmt.Sprint(t.Value))
	if err != nil {
		return err
	}
	target.SetInt(int64(d))
	return nil
}))

// Shortest leases and result lifetimes: a worker heartbeats every third of
// its lease, and Redis keeps results for whole milliseconds.
const (
	minLease     = 100 * time.Millisecond
	minResultTTL = time.Second
)

// Validate refuses a lease too short to heartbeat (kong calls it after
// parsing).
func (c *workerCmd) Validate() error {
	if c.Lease < minLease {
		return fmt.Errorf("--lease %s is too short: at least %s", c.Lease, minLease)
	}
	if c.CacheTTL < time.Second {
		return fmt.Errorf("--cache-ttl %s is too short: at least 1s", c.CacheTTL)
	}
	return nil
}

// Validate refuses a result lifetime under a second (kong calls it after
// parsing).
func (c *runCmd) Validate() error {
	if c.ResultTTL < minResultTTL {
		return fmt.Errorf("--result-ttl %s is too short: at least %s", c.ResultTTL, minResultTTL)
	}
	return nil
}
