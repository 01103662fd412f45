package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/flowhost/flowhost/pipeline"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/track"
)

// stepStat is what the summary shows of one step.
type stepStat struct {
	step          int
	label         string
	kind          pipeline.Kind
	total, failed int
	retries       int
	cached        int
	liveFailed    atomic.Int64 // read by the bar's decorator, which must not lock
	start, end    time.Time
	err           error
	// note is what the TIME column shows of a step that made no call: its
	// branch's choice, or that it was skipped.
	note string
}

// progress shows a run as it goes: on a terminal, a live bar per map and
// filter step and a line per finished step; otherwise plain log lines. At
// the end it prints a summary of per-step durations.
type progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	p     *mpb.Progress
	bars  map[int]*mpb.Bar
	stats map[int]*stepStat
	steps int
	// plain mode: when each step last printed progress
	lastLine map[int]time.Time
	// run is the run shown: its sub-flows' runs are shown by their step.
	run string
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, bars: map[int]*mpb.Bar{}, stats: map[int]*stepStat{}, lastLine: map[int]time.Time{}}
}

// line prints a line above the bars (terminal) or plainly.
func (pr *progress) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...) + "\n"
	if pr.p != nil {
		_, _ = pr.p.Write([]byte(s))
		return
	}
	_, _ = io.WriteString(pr.w, s)
}

func (pr *progress) name(e track.Event) string {
	if pr.steps > 0 {
		return fmt.Sprintf("[%d/%d] %s", e.Step, pr.steps, e.Name)
	}
	return e.Name
}

func fanning(k pipeline.Kind) bool { return k == pipeline.Map || k == pipeline.Filter }

// Event implements runner.Observer.
func (pr *progress) Event(e track.Event) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.run == "" && e.Type == track.RunStarted && e.Parent == "" {
		pr.run = e.RunID
	}
	if e.RunID != pr.run {
		return // a sub-flow's run: its flow step stands for it
	}
	st := pr.stats[e.Step]
	switch e.Type {
	case track.RunStarted:
		pr.steps = e.Steps
	case track.StepStarted:
		st = &stepStat{step: e.Step, label: e.Name, kind: e.Kind, total: e.Total, start: e.Time}
		pr.stats[e.Step] = st
		switch {
		case pr.tty && fanning(e.Kind):
			if pr.p == nil {
				pr.p = mpb.New(mpb.WithOutput(pr.w), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond), mpb.WithAutoRefresh())
			}
			pr.bars[e.Step] = pr.p.AddBar(int64(e.Total),
				mpb.PrependDecorators(decor.Name(pr.name(e), decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d", decor.WCSyncSpace)),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					if n := st.liveFailed.Load(); n > 0 {
						return fmt.Sprintf("%d failed", n)
					}
					return ""
				}, decor.WCSyncSpace), decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)),
				mpb.BarRemoveOnComplete())
		case pr.p == nil && fanning(e.Kind):
			pr.line("%s: started, %d elements", pr.name(e), e.Total)
		case pr.p == nil && e.Child != "":
			pr.line("%s: started run %s", pr.name(e), e.Child)
		case pr.p == nil:
			pr.line("%s: started", pr.name(e))
		}
	case track.StepProgress:
		if st == nil {
			return
		}
		st.failed = e.Failed
		st.liveFailed.Store(int64(e.Failed))
		if b := pr.bars[e.Step]; b != nil {
			b.SetCurrent(int64(e.Done))
		} else if pr.p == nil && fanning(e.Kind) && time.Since(pr.lastLine[e.Step]) >= time.Second {
			pr.lastLine[e.Step] = time.Now()
			pr.line("%s: %d/%d done, %d failed", pr.name(e), e.Done, e.Total, e.Failed)
		}
	case track.StepRetried:
		if st != nil {
			st.retries++
		}
		what := pr.name(e)
		if e.Element != nil {
			what += fmt.Sprintf(", element %d", *e.Element)
		}
		pr.line("%s: retry %d after: %v", what, e.Attempt, e.Err)
	case track.StepSkipped:
		pr.stats[e.Step] = &stepStat{step: e.Step, label: e.Name, note: "skipped"}
		pr.line("%s: skipped", pr.name(e))
		return
	case track.StepFinished, track.StepFailed:
		if e.Type == track.StepFinished && e.Kind == pipeline.Branch {
			choice := "case " + e.Case
			if e.Case == "" {
				choice = "no case"
			}
			pr.stats[e.Step] = &stepStat{step: e.Step, label: e.Name, note: choice}
			pr.line("%s: chose %s", pr.name(e), choice)
			return
		}
		if st == nil {
			st = &stepStat{step: e.Step, label: e.Name, start: e.Time}
			pr.stats[e.Step] = st
		}
		st.end, st.err = e.Time, e.Err
		if e.Type == track.StepFailed {
			st.failed = int(st.liveFailed.Load()) + e.Failed // the call that failed the step, too
		} else {
			st.failed, st.cached = e.Failed, e.Cached
		}
		if b := pr.bars[e.Step]; b != nil {
			if e.Err != nil {
				b.Abort(true)
			} else {
				b.SetCurrent(int64(st.total))
			}
			delete(pr.bars, e.Step)
			if len(pr.bars) == 0 {
				pr.p.Wait() // the bar is gone from the screen: print plainly again
				pr.p = nil
			}
		}
		mark, tail := "✓", ""
		if e.Err != nil {
			mark, tail = "✗", ": "+failureReason(e.Err)
		} else if st.failed > 0 {
			tail = fmt.Sprintf(" (%d skipped after errors)", st.failed)
		}
		if e.Cached > 0 {
			tail += fmt.Sprintf(" (%d of %d from the cache)", e.Cached, max(st.total, e.Cached))
		}
		if !pr.tty {
			mark = map[string]string{"✓": "done", "✗": "FAILED"}[mark]
			pr.line("%s: %s in %s%s", pr.name(e), mark, st.end.Sub(st.start).Round(time.Microsecond), tail)
			return
		}
		pr.line("%s %s  %s%s", mark, pr.name(e), st.end.Sub(st.start).Round(time.Microsecond), tail)
	}
}

// Close ends the live display once every line has been drawn.
func (pr *progress) Close() {
	pr.mu.Lock()
	if pr.p == nil {
		pr.mu.Unlock()
		return
	}
	defer pr.mu.Unlock()
	for id, b := range pr.bars { // steps that never finished (an interrupted run)
		b.Abort(true)
		delete(pr.bars, id)
	}
	pr.p.Wait()
	pr.p = nil
}

// Summary prints per-step durations and the run's outcome.
func (pr *progress) Summary(runID string, elapsed time.Duration, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	steps := make([]*stepStat, 0, len(pr.stats))
	for _, s := range pr.stats {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].step < steps[j].step })
	fmt.Fprintln(pr.w)
	tw := tabwriter.NewWriter(pr.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tCALLS\tCACHED\tFAILED\tRETRIES\tTIME")
	for _, s := range steps {
		d := "-"
		switch {
		case s.note != "":
			d = s.note
		case !s.end.IsZero():
			d = s.end.Sub(s.start).Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%d %s\t%d\t%d\t%d\t%d\t%s\n", s.step, s.label, s.total, s.cached, s.failed, s.retries, d)
	}
	tw.Flush()
	status := track.Succeeded
	if err != nil {
		status = track.Failed
	}
	fmt.Fprintf(pr.w, "run %s %s in %s\n", runID, status, elapsed.Round(time.Microsecond))
}

// failureReason is why a step failed, for its line: the element and the
// task's own error, without the step's name the line already shows.
func failureReason(err error) string {
	var re *runner.RunError
	reason := err.Error()
	if errors.As(err, &re) {
		reason = re.Err.Error()
		if re.Element >= 0 {
			reason = fmt.Sprintf("element %d: %s", re.Element, reason)
		}
	}
	if r := []rune(reason); len(r) > 300 {
		reason = string(r[:300]) + "…"
	}
	return reason
}
