package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, s Spec) *Schedule {
	t.Helper()
	sc, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	cases := []struct {
		spec Spec
		from string
		want string
	}{
		{Spec{Cron: "*/5 * * * *"}, "2026-12-01T10:03:10Z", "2026-12-01T10:05:00Z"},
		{Spec{Cron: "0 9 * * 1"}, "2026-12-01T10:00:00Z", "2026-12-07T09:00:00Z"}, // Mondays 09:00 UTC
		{Spec{Cron: "0 9 * * *", Timezone: "Europe/Paris"}, "2026-12-01T00:00:00Z", "2026-12-01T08:00:00Z"},
		{Spec{Cron: "*/2 * * * * *"}, "2026-12-01T10:00:01Z", "2026-12-01T10:00:02Z"}, // seconds first
		{Spec{Cron: "@hourly"}, "2026-12-01T10:20:00Z", "2026-12-01T11:00:00Z"},
		{Spec{Every: 30 * time.Second}, "2026-12-01T10:00:10Z", "2026-12-01T10:00:30Z"},
		{Spec{Every: 30 * time.Second}, "2026-12-01T10:00:30Z", "2026-12-01T10:01:00Z"},
	}
	for _, c := range cases {
		if got := mustParse(t, c.spec).Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%+v after %s: %s, want %s", c.spec, c.from, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{}, `give cron = "…"`},
		{Spec{Cron: "* * * * *", Every: time.Minute}, "not both"},
		{Spec{Cron: "61 * * * *"}, `cron "61 * * * *": end of range (61) above maximum (59)`},
		{Spec{Cron: "@every 5m"}, `write every = "…" instead`},
		{Spec{Cron: "CRON_TZ=UTC * * * * *"}, "timezone"},
		{Spec{Cron: "0 0 30 2 *"}, "never fires"},
		{Spec{Every: 100 * time.Millisecond}, "at least 1s"},
		{Spec{Every: 1500 * time.Millisecond}, "whole number of seconds"},
		{Spec{Cron: "* * * * *", Timezone: "Mars/Olympus"}, `timezone "Mars/Olympus": not an IANA time zone`},
		{Spec{Cron: "* * * * *", CatchUp: "all"}, `catch_up = "all"`},
	}
	for _, c := range cases {
		if _, err := Parse(c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.want)
		}
	}
}

func TestDue(t *testing.T) {
	min := mustParse(t, Spec{Cron: "* * * * *"})
	none := mustParse(t, Spec{Cron: "* * * * *", CatchUp: CatchUpNone})
	cases := []struct {
		name      string
		s         *Schedule
		last, now string
		fire      []string
		skipTo    string
	}{
		{"nothing due", min, "2026-12-01T10:00:00Z", "2026-12-01T10:00:59Z", nil, ""},
		{"on time", min, "2026-12-01T10:00:00Z", "2026-12-01T10:01:20Z", []string{"2026-12-01T10:01:00Z"}, ""},
		{"away: one run for the latest missed", min, "2026-12-01T10:00:00Z", "2026-12-01T10:10:30Z",
			[]string{"2026-12-01T10:09:00Z", "2026-12-01T10:10:00Z"}, ""},
		{"away: skipped", none, "2026-12-01T10:00:00Z", "2026-12-01T10:10:30Z", []string{"2026-12-01T10:10:00Z"}, "2026-12-01T10:09:00Z"},
		{"away for days: looks back 48 h at most", none, "2026-11-01T10:00:00Z", "2026-12-01T10:10:30Z", []string{"2026-12-01T10:10:00Z"}, "2026-12-01T10:09:00Z"},
	}
	for _, c := range cases {
		fire, skip := c.s.Due(at(c.last), at(c.now))
		var got []string
		for _, f := range fire {
			got = append(got, f.Format(time.RFC3339))
		}
		gotSkip := ""
		if !skip.IsZero() {
			gotSkip = skip.Format(time.RFC3339)
		}
		if strings.Join(got, ",") != strings.Join(c.fire, ",") || gotSkip != c.skipTo {
			t.Errorf("%s: fire %v skip %q; want %v %q", c.name, got, gotSkip, c.fire, c.skipTo)
		}
	}
}

// FuzzParse: a schedule comes from a flow file or a stored definition a
// tenant wrote: any cron text is refused or ticks, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 * * * *", "0 9 * * 1-5", "@daily", "1-60/0 * * * *", "0 0 30 2 *", "* * * * * *", "?"} {
		f.Add(s, "Europe/Paris", int64(0))
	}
	f.Fuzz(func(t *testing.T, cron, tz string, every int64) {
		sc, err := Parse(Spec{Cron: cron, Timezone: tz, Every: time.Duration(every)})
		if err != nil {
			return
		}
		now := time.Now()
		n := sc.Next(now)
		if !n.After(now) {
			t.Fatalf("%q: next tick %s is not after %s", cron, n, now)
		}
		sc.Due(now.Add(-time.Hour), now)
	})
}

// BenchmarkDueFromZero is the worst a stored "last tick" can make a
// scheduler do: a tick a second, last handled never.
func BenchmarkDueFromZero(b *testing.B) {
	s, _ := Parse(Spec{Cron: "* * * * * *"})
	now := time.Now()
	for b.Loop() {
		s.Due(time.Time{}, now)
	}
}
