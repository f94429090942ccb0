package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the host's zoneinfo
)

func mustNew(t *testing.T, c Config) *Schedule {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    Config
		want string
	}{
		{Config{}, "set cron or rate"},
		{Config{Cron: "* * * * *", Rate: time.Minute}, "not both"},
		{Config{Cron: "* * * *"}, `cron "* * * *": expected exactly 5 fields`},
		{Config{Cron: "61 * * * *"}, `cron "61 * * * *"`},
		{Config{Cron: "@fortnightly"}, `cron "@fortnightly"`},
		{Config{Cron: "0 0 30 2 *"}, "never fires"},
		{Config{Cron: "0 * * * *", Timezone: "Mars/Olympus_Mons"}, `timezone "Mars/Olympus_Mons"`},
		{Config{Cron: "CRON_TZ=Europe/Paris 0 * * * *"}, "set the time zone with timezone"},
		{Config{Cron: "TZ=x"}, "set the time zone with timezone"},
		{Config{Rate: 500 * time.Millisecond}, "rate 500ms: below the minimum of 1s"},
		{Config{Rate: -time.Second}, "below the minimum"},
		{Config{Rate: time.Minute, Timezone: "UTC"}, "applies to cron, not to rate"},
		{Config{Cron: "@every 30s", Timezone: "UTC"}, "not to \"@every 30s\""},
	}
	for _, tt := range tests {
		_, err := New(tt.c)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want ErrInvalid containing %q", tt.c, err, tt.want)
		}
	}
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Config
		from time.Time
		want []time.Time
	}{
		{"every five minutes", Config{Cron: "*/5 * * * *"}, utc(2024, 5, 1, 10, 2, 30), []time.Time{utc(2024, 5, 1, 10, 5, 0), utc(2024, 5, 1, 10, 10, 0)}},
		{"on a tick is after", Config{Cron: "*/5 * * * *"}, utc(2024, 5, 1, 10, 5, 0), []time.Time{utc(2024, 5, 1, 10, 10, 0)}},
		{"UTC by default", Config{Cron: "0 9 * * *"}, utc(2024, 5, 1, 10, 0, 0), []time.Time{utc(2024, 5, 2, 9, 0, 0)}},
		{"hourly", Config{Cron: "@hourly"}, utc(2024, 5, 1, 10, 0, 0), []time.Time{utc(2024, 5, 1, 11, 0, 0), utc(2024, 5, 1, 12, 0, 0)}},
		{"daily", Config{Cron: "@daily"}, utc(2024, 5, 1, 10, 0, 0), []time.Time{utc(2024, 5, 2, 0, 0, 0)}},
		{"weekdays", Config{Cron: "30 8 * * 1-5"}, utc(2024, 5, 3, 9, 0, 0), []time.Time{utc(2024, 5, 6, 8, 30, 0)}}, // Friday -> Monday
		{"dom or dow", Config{Cron: "0 0 1 * 0"}, utc(2024, 5, 1, 1, 0, 0), []time.Time{utc(2024, 5, 5, 0, 0, 0), utc(2024, 5, 12, 0, 0, 0)}},
		{"leap day", Config{Cron: "0 0 29 2 *"}, utc(2024, 3, 1, 0, 0, 0), []time.Time{utc(2028, 2, 29, 0, 0, 0)}},
		{"timezone", Config{Cron: "0 9 * * *", Timezone: "Europe/Berlin"}, utc(2024, 5, 1, 6, 0, 0), []time.Time{utc(2024, 5, 1, 7, 0, 0), utc(2024, 5, 2, 7, 0, 0)}},
		{"tokyo", Config{Cron: "0 9 * * *", Timezone: "Asia/Tokyo"}, utc(2024, 5, 1, 1, 0, 0), []time.Time{utc(2024, 5, 2, 0, 0, 0)}},
		{"every aligned to the epoch", Config{Cron: "@every 30s"}, utc(2024, 5, 1, 10, 0, 7), []time.Time{utc(2024, 5, 1, 10, 0, 30), utc(2024, 5, 1, 10, 1, 0)}},
		{"rate aligned to the epoch", Config{Rate: 7 * time.Second}, time.Unix(15, 0), []time.Time{time.Unix(21, 0).UTC(), time.Unix(28, 0).UTC()}},
		{"rate sub-second start", Config{Rate: time.Second}, time.Unix(100, 999999999), []time.Time{time.Unix(101, 0).UTC()}},
		{"rate before the epoch", Config{Rate: 10 * time.Second}, time.Unix(-15, 0), []time.Time{time.Unix(-10, 0).UTC(), time.Unix(0, 0).UTC()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, tt.c)
			at := tt.from
			for i, want := range tt.want {
				got := s.Next(at)
				if !got.Equal(want) {
					t.Fatalf("tick %d after %v: %v, want %v", i, at, got, want)
				}
				at = got
			}
		})
	}
}

// TestDaylightSaving checks the Vixie cron rules of the package doc on the
// 2024 transitions of New York (02:00 -> 03:00 on 10 March, 02:00 -> 01:00
// on 3 November) and Berlin (02:00 -> 03:00 on 31 March, 03:00 -> 02:00 on
// 27 October), and Lord Howe Island's half-hour shift.
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cron, zone string
		from             string // local time in zone
		want             []string
	}{
		{"spring gap fires after the gap", "30 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00",
			[]string{"2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"}},
		{"spring gap at its start", "0 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00",
			[]string{"2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"}},
		{"spring tick at the gap's end fires once", "0 2,3 * * *", "America/New_York", "2024-03-10T00:00:00-05:00",
			[]string{"2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"}},
		{"spring every hour keeps real time", "0 * * * *", "America/New_York", "2024-03-10T00:30:00-05:00",
			[]string{"2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"}},
		{"spring every 30 minutes", "*/30 * * * *", "America/New_York", "2024-03-10T01:00:00-05:00",
			[]string{"2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00"}},
		{"fall repeated hour fires once", "30 1 * * *", "America/New_York", "2024-11-02T12:00:00-04:00",
			[]string{"2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"}},
		{"fall from inside the second pass", "30 1 * * *", "America/New_York", "2024-11-03T01:10:00-05:00",
			[]string{"2024-11-04T01:30:00-05:00"}},
		{"fall every hour fires in both passes", "0 * * * *", "America/New_York", "2024-11-03T00:30:00-04:00",
			[]string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"}},
		{"fall other hours unaffected", "0 0-3 * * *", "America/New_York", "2024-11-02T23:30:00-04:00",
			[]string{"2024-11-03T00:00:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00", "2024-11-03T03:00:00-05:00"}},
		{"berlin spring", "15 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00",
			[]string{"2024-03-31T03:00:00+02:00", "2024-04-01T02:15:00+02:00"}},
		{"berlin fall", "30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00+02:00",
			[]string{"2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"}},
		{"berlin weekly on the gap day", "30 2 * * 0", "Europe/Berlin", "2024-03-25T00:00:00+01:00",
			[]string{"2024-03-31T03:00:00+02:00", "2024-04-07T02:30:00+02:00"}},
		{"lord howe half hour gap", "15 2 * * *", "Australia/Lord_Howe", "2024-10-05T12:00:00+10:30",
			[]string{"2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, Config{Cron: tt.cron, Timezone: tt.zone})
			at, err := time.Parse(time.RFC3339, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				want, err := time.Parse(time.RFC3339, w)
				if err != nil {
					t.Fatal(err)
				}
				got := s.Next(at)
				if !got.Equal(want) {
					t.Fatalf("tick %d after %s: %s, want %s", i, at.In(s.loc).Format(time.RFC3339), got.Format(time.RFC3339), w)
				}
				at = got
			}
		})
	}
}

func TestBetween(t *testing.T) {
	t.Parallel()
	rate := mustNew(t, Config{Rate: 10 * time.Second})
	cron := mustNew(t, Config{Cron: "*/15 * * * *"})
	tests := []struct {
		name      string
		s         *Schedule
		a, b      time.Time
		limit     int
		want      []time.Time
		wantTotal int
	}{
		{"rate all", rate, time.Unix(100, 0), time.Unix(130, 0), 10,
			[]time.Time{time.Unix(110, 0), time.Unix(120, 0), time.Unix(130, 0)}, 3},
		{"rate excludes a, includes b", rate, time.Unix(110, 0), time.Unix(129, 0), 10,
			[]time.Time{time.Unix(120, 0)}, 1},
		{"rate latest only", rate, time.Unix(0, 0), time.Unix(86400, 0), 2,
			[]time.Time{time.Unix(86390, 0), time.Unix(86400, 0)}, 8640},
		{"rate count only", rate, time.Unix(0, 0), time.Unix(100, 0), 0, nil, 10},
		{"rate none", rate, time.Unix(101, 0), time.Unix(109, 0), 5, nil, 0},
		{"empty interval", rate, time.Unix(200, 0), time.Unix(100, 0), 5, nil, 0},
		{"cron latest", cron, utc(2024, 5, 1, 0, 0, 0), utc(2024, 5, 1, 2, 0, 0), 3,
			[]time.Time{utc(2024, 5, 1, 1, 30, 0), utc(2024, 5, 1, 1, 45, 0), utc(2024, 5, 1, 2, 0, 0)}, 8},
		{"cron all", cron, utc(2024, 5, 1, 0, 0, 0), utc(2024, 5, 1, 0, 40, 0), 10,
			[]time.Time{utc(2024, 5, 1, 0, 15, 0), utc(2024, 5, 1, 0, 30, 0)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := tt.s.Between(tt.a, tt.b, tt.limit)
			if total != tt.wantTotal || len(got) != len(tt.want) {
				t.Fatalf("Between = %v (total %d), want %v (total %d)", got, total, tt.want, tt.wantTotal)
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Fatalf("tick %d: %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestBetweenAgreesWithNext walks a DST-laden year of several schedules and
// checks that Between and stepping with Next agree, and that ticks strictly
// increase.
func TestBetweenAgreesWithNext(t *testing.T) {
	t.Parallel()
	a, b := utc(2024, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)
	for _, c := range []Config{
		{Cron: "30 1,2 * * *", Timezone: "America/New_York"},
		{Cron: "0 */3 * * *", Timezone: "Europe/Berlin"},
		{Cron: "15 2 * * 0", Timezone: "Australia/Lord_Howe"},
		{Rate: 97 * time.Minute},
	} {
		s := mustNew(t, c)
		var walked []time.Time
		for at := s.Next(a); !at.After(b); at = s.Next(at) {
			if n := len(walked); n > 0 && !at.After(walked[n-1]) {
				t.Fatalf("%s: tick %v not after %v", s, at, walked[n-1])
			}
			walked = append(walked, at)
		}
		got, total := s.Between(a, b, 5)
		if total != len(walked) {
			t.Fatalf("%s: Between total %d, Next walked %d", s, total, len(walked))
		}
		for i, tick := range got {
			if !tick.Equal(walked[len(walked)-5+i]) {
				t.Fatalf("%s: Between tick %d = %v, want %v", s, i, tick, walked[len(walked)-5+i])
			}
		}
	}
}

func FuzzNew(f *testing.F) {
	for _, c := range []string{"*/5 * * * *", "@every 1m30s", "0 9 * * 1-5", "@hourly", "5,10-20/3 1 1 1 1", "0 0 30 2 *"} {
		f.Add(c, "", int64(0))
	}
	f.Add("30 2 * * *", "America/New_York", int64(1710054000))
	f.Add("", "", int64(1500000000))
	f.Fuzz(func(t *testing.T, expr, zone string, rate int64) {
		c := Config{Cron: expr, Rate: time.Duration(rate), Timezone: zone}
		s, err := New(c)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New(%+v): %v is not ErrInvalid", c, err)
			}
			return
		}
		at := time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 5; i++ {
			n := s.Next(at)
			if !n.After(at) {
				t.Fatalf("%s: Next(%v) = %v", s, at, n)
			}
			at = n
		}
	})
}
