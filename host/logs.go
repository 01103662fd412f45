package host

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Guest logs (the Extism log_* imports) go to the engine's slog logger
// with the module and task, and with the run and step when the caller
// put them in the call's context with WithLogInfo. A LogBudget shared by
// a run's calls rate-limits what they may log, so that a chatty guest
// cannot flood the host.

type logInfoKey struct{}

type logInfo struct {
	run, step string
	budget    *LogBudget
}

// LogLine is one line a guest logged, as a run keeps it (WithLogSink).
type LogLine struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Step   string    `json:"step,omitempty"`
	Module string    `json:"module"`
	Task   string    `json:"task"`
	Msg    string    `json:"msg"`
}

type logSinkKey struct{}

// WithLogSink hands every guest log line of calls made with ctx, within
// their log budget and at any level, to sink (besides the engine's
// logger): how a run keeps its guest's lines for the dashboard. sink is
// called on the call's goroutine, and must be quick.
func WithLogSink(ctx context.Context, sink func(LogLine)) context.Context {
	return context.WithValue(ctx, logSinkKey{}, sink)
}

// WithLogInfo labels the guest logs of calls made with ctx with run and
// step, and charges them to budget (which may be nil: no limit beyond the
// per-call cap).
func WithLogInfo(ctx context.Context, run, step string, budget *LogBudget) context.Context {
	return context.WithValue(ctx, logInfoKey{}, &logInfo{run: run, step: step, budget: budget})
}

// LogBudget is a token bucket of guest log lines.
type LogBudget struct {
	mu      sync.Mutex
	tokens  float64
	rate    float64 // lines per second
	burst   float64
	last    time.Time
	dropped int64
}

// NewLogBudget allows perSecond lines a second, in bursts of up to burst.
func NewLogBudget(perSecond, burst int) *LogBudget {
	return &LogBudget{tokens: float64(burst), rate: float64(perSecond), burst: float64(burst), last: time.Now()}
}

// allow takes a token; the second result is true for the first line
// refused since the budget last allowed one, so the host can say once
// that it is dropping lines.
func (b *LogBudget) allow() (ok, firstDrop bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.dropped = 0
		return true, false
	}
	b.dropped++
	return false, b.dropped == 1
}

func (k *kernel) log(level slog.Level, off uint64) {
	msg := k.blockBytes("log", off)
	k.logLines++
	sink, _ := k.callCtx.Value(logSinkKey{}).(func(LogLine))
	toLogger := k.logger != nil && k.logger.Enabled(context.Background(), level)
	if k.logLines > maxLogLines || (!toLogger && sink == nil) {
		return
	}
	attrs := []any{"module", k.module, "task", k.task, "source", "guest"}
	step := ""
	if li, _ := k.callCtx.Value(logInfoKey{}).(*logInfo); li != nil {
		attrs = append(attrs, "run", li.run, "step", li.step)
		step = li.step
		if li.budget != nil {
			ok, first := li.budget.allow()
			if !ok {
				if first && k.logger != nil {
					k.logger.Warn("guest logs rate-limited: dropping lines", attrs...)
				}
				return
			}
		}
	}
	if len(msg) > maxLogBytes {
		msg = msg[:maxLogBytes]
	}
	if sink != nil {
		sink(LogLine{Time: time.Now().UTC(), Level: level.String(), Step: step, Module: k.module, Task: k.task, Msg: string(msg)})
	}
	if toLogger {
		k.logger.Log(context.Background(), level, string(msg), attrs...)
	}
}
