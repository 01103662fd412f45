package metrics

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets are the upper bounds (seconds) of the task duration histogram.
var durationBuckets = []float64{1e-6, 5e-6, 25e-6, 100e-6, 500e-6, 2.5e-3, 0.01, 0.05, 0.25, 1, 5, 30}

// hist is one label set's duration histogram. Calls are timed into a
// Timer on the calling goroutine and added here once per batch, so the
// workers do not contend on shared counters call by call.
type hist struct {
	counts  [13]atomic.Uint64 // len(durationBuckets)+1, the last is +Inf
	sumBits atomic.Uint64     // float64 seconds
	labels  []string
}

func (h *hist) add(counts *[13]uint64, sum float64) {
	for i := range counts {
		if counts[i] != 0 {
			h.counts[i].Add(counts[i])
		}
	}
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+sum)) {
			return
		}
	}
}

// histVec is a Collector of histograms by label values.
type histVec struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	all  map[[3]string]*hist
}

func newHistVec(name, help string, labels []string) *histVec {
	return &histVec{desc: prometheus.NewDesc(name, help, labels, nil), all: map[[3]string]*hist{}}
}

func (v *histVec) get(k [3]string) *hist {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.all[k]
	if h == nil {
		h = &hist{labels: []string{k[0], k[1], k[2]}}
		v.all[k] = h
	}
	return h
}

// Describe implements prometheus.Collector.
func (v *histVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

// Collect implements prometheus.Collector.
func (v *histVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	hs := make([]*hist, 0, len(v.all))
	for _, h := range v.all {
		hs = append(hs, h)
	}
	v.mu.Unlock()
	sort.Slice(hs, func(i, j int) bool { return hs[i].labels[2] < hs[j].labels[2] })
	for _, h := range hs {
		buckets := make(map[float64]uint64, len(durationBuckets))
		var cum uint64
		for i, ub := range durationBuckets {
			cum += h.counts[i].Load()
			buckets[ub] = cum
		}
		count := cum + h.counts[len(durationBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(v.desc, count, math.Float64frombits(h.sumBits.Load()), buckets, h.labels...)
	}
}

// Timer gathers the durations of a batch of calls on one goroutine; Flush
// adds them to the task's histogram at once.
type Timer struct {
	h      *hist
	counts [13]uint64
	sum    float64
}

// Timer starts a batch; the zero Timer of a nil Task records nothing.
func (t *Task) Timer() Timer {
	if t == nil {
		return Timer{}
	}
	return Timer{h: t.hist}
}

// Observe records one call's duration.
func (tm *Timer) Observe(d time.Duration) {
	if tm.h == nil {
		return
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(durationBuckets, s)
	tm.counts[i]++
	tm.sum += s
}

// Flush adds the batch to the histogram.
func (tm *Timer) Flush() {
	if tm.h == nil {
		return
	}
	tm.h.add(&tm.counts, tm.sum)
	tm.counts, tm.sum = [13]uint64{}, 0
}
