// Package schedule is when a scheduled flow runs: its ticks, from a cron
// expression or a fixed interval in a time zone, and which of the ticks
// a scheduler that was away must still fire. Every scheduler (a Redis
// worker, `flowhost schedule run`) computes ticks with it, so that all
// agree on them, to the millisecond, whatever their own time zone.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Catch-up settings: what happens to ticks missed while no scheduler ran.
const (
	// CatchUpOne fires one run, for the latest missed tick.
	CatchUpOne = "one"
	// CatchUpNone skips them.
	CatchUpNone = "none"
)

// Bounds.
const (
	// MinEvery is the shortest interval.
	MinEvery = time.Second
	// MaxLookBack is how far back a scheduler looks for missed ticks.
	MaxLookBack = 48 * time.Hour
	// maxGrace is the most a tick may be late and still count as on time.
	maxGrace = time.Minute
)

// Spec is a schedule as a flow declares it ([schedule]): exactly one of
// Cron and Every.
type Spec struct {
	// Cron is a cron expression: five fields (minute hour day month
	// weekday), or six with seconds first, or a descriptor (@hourly,
	// @daily, @weekly, @monthly, @yearly).
	Cron string `json:"cron,omitempty"`
	// Every is a fixed interval; ticks are its multiples since the Unix
	// epoch (so every scheduler agrees on them).
	Every time.Duration `json:"every,omitempty"`
	// Timezone is the IANA zone Cron is read in; default UTC.
	Timezone string `json:"timezone,omitempty"`
	// CatchUp is CatchUpOne (default) or CatchUpNone.
	CatchUp string `json:"catch_up,omitempty"`
}

// Schedule is a checked Spec.
type Schedule struct {
	Spec
	cron cron.Schedule
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse checks a spec. Each error names the key at fault.
func Parse(s Spec) (*Schedule, error) {
	sc := &Schedule{Spec: s}
	switch {
	case s.Cron != "" && s.Every != 0:
		return nil, errors.New("give cron or every, not both")
	case s.Cron == "" && s.Every == 0:
		return nil, errors.New(`give cron = "…" (for instance "*/5 * * * *") or every = "…" (for instance "30s")`)
	case s.Every != 0 && s.Every < MinEvery:
		return nil, fmt.Errorf("every = %s: at least %s", s.Every, MinEvery)
	case s.Every%time.Second != 0 && s.Every > 0:
		return nil, fmt.Errorf("every = %s: a whole number of seconds", s.Every)
	}
	loc := time.UTC
	if s.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(s.Timezone); err != nil {
			return nil, fmt.Errorf("timezone %q: not an IANA time zone (for instance \"Europe/Paris\")", s.Timezone)
		}
	}
	switch s.CatchUp {
	case "", CatchUpOne, CatchUpNone:
	default:
		return nil, fmt.Errorf(`catch_up = %q: "one" (fire the latest missed tick once) or "none" (skip missed ticks)`, s.CatchUp)
	}
	if s.Cron != "" {
		if strings.HasPrefix(strings.TrimSpace(s.Cron), "@every") {
			return nil, errors.New(`cron = "@every …": write every = "…" instead`)
		}
		if strings.Contains(s.Cron, "TZ=") {
			return nil, errors.New(`cron: give the time zone as timezone = "…"`)
		}
		c, err := parser.Parse(s.Cron)
		if err != nil {
			return nil, fmt.Errorf("cron %q: %v", s.Cron, err)
		}
		spec, ok := c.(*cron.SpecSchedule)
		if !ok {
			return nil, fmt.Errorf("cron %q: not a cron expression", s.Cron)
		}
		spec.Location = loc // not the scheduler's own zone: every one must agree
		sc.cron = spec
		if sc.Next(time.Now()).IsZero() {
			return nil, fmt.Errorf("cron %q never fires", s.Cron)
		}
	}
	return sc, nil
}

// Next is the first tick after t (the zero time for none).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.Every > 0 {
		n := t.UnixMilli()/s.Every.Milliseconds() + 1
		return time.UnixMilli(n * s.Every.Milliseconds()).UTC()
	}
	return s.cron.Next(t).UTC()
}

// grace is how late a tick may be fired and still be on time: one
// interval, between 1 s and a minute.
func (s *Schedule) grace(t time.Time) time.Duration {
	n := s.Next(t)
	d := s.Next(n).Sub(n)
	return min(max(d, time.Second), maxGrace)
}

// Due are the ticks a scheduler that last fired (or skipped) last must
// handle at now, in order: fire are to run, and skipTo, when set, is a
// late tick to record as handled without a run (missed ticks that
// CatchUpNone skips). Ticks are late when more than the grace (one
// interval, 1 s to a minute) behind now; with CatchUpOne, the latest
// late tick is fired, once, for all of them. Whatever last says (a
// stored one may be anything), the work is bounded: at most
// MaxLookBack is looked at, and a few hundred ticks.
func (s *Schedule) Due(last, now time.Time) (fire []time.Time, skipTo time.Time) {
	floor := last
	if now.Sub(floor) > MaxLookBack {
		floor = now.Add(-MaxLookBack)
	}
	onTime := now.Add(-s.grace(now))
	if onTime.Before(floor) {
		onTime = floor
	}
	late := s.latest(floor, onTime)
	for t := s.Next(onTime); !t.IsZero() && !t.After(now) && len(fire) < 100; t = s.Next(t) {
		fire = append(fire, t)
	}
	switch {
	case late.IsZero():
		return fire, time.Time{}
	case s.CatchUp == CatchUpNone:
		return fire, late
	}
	return append([]time.Time{late}, fire...), time.Time{}
}

// latest is the latest tick after floor and at or before x, or zero: it
// looks back a minute, an hour, a day, then to floor, so that it walks
// about sixty ticks at most, however frequent the schedule.
func (s *Schedule) latest(floor, x time.Time) time.Time {
	if !x.After(floor) {
		return time.Time{}
	}
	for _, w := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, MaxLookBack} {
		from := x.Add(-w)
		if from.Before(floor) {
			from = floor
		}
		var found time.Time
		for t := s.Next(from); !t.IsZero() && !t.After(x); t = s.Next(t) {
			found = t
		}
		if !found.IsZero() || !from.After(floor) {
			return found
		}
	}
	return time.Time{}
}

// Describe is the schedule in words, for listings.
func (s *Schedule) Describe() string {
	var d string
	if s.Every > 0 {
		d = "every " + s.Every.String()
	} else {
		d = "cron " + s.Cron
		if s.Timezone != "" {
			d += " (" + s.Timezone + ")"
		}
	}
	if s.CatchUp == CatchUpNone {
		d += ", missed ticks skipped"
	}
	return d
}
