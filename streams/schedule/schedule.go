package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrInvalid is wrapped by every error New returns.
var ErrInvalid = errors.New("schedule: invalid schedule")

// MinRate is the shortest rate (and @every interval) New accepts.
const MinRate = time.Second

// Config describes a schedule: exactly one of Cron and Rate.
type Config struct {
	// Cron is a five-field cron expression (minute hour day-of-month month
	// day-of-week) or a descriptor: @yearly, @monthly, @weekly, @daily,
	// @hourly, or @every DURATION (which is a rate). The zone goes in
	// Timezone: a CRON_TZ= or TZ= prefix is an error.
	Cron string
	// Rate fires every Rate, at the multiples of Rate since the Unix epoch.
	// At least MinRate.
	Rate time.Duration
	// Timezone is the IANA zone Cron is read in. Defaults to UTC, so that
	// instances on hosts with different local zones agree. Not allowed with
	// Rate.
	Timezone string
}

// Schedule answers when a schedule ticks. It is immutable and safe for
// concurrent use.
type Schedule struct {
	spec     *cron.SpecSchedule // nil for a rate
	rate     time.Duration
	loc      *time.Location
	allHours bool
	text     string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// New checks c and returns its Schedule. Errors wrap ErrInvalid and name
// the offending key: both or neither of cron and rate, an expression the
// cron parser rejects, an unknown timezone, a rate under MinRate, a
// timezone with a rate, or an expression that never fires.
func New(c Config) (*Schedule, error) {
	expr := strings.TrimSpace(c.Cron)
	switch {
	case expr == "" && c.Rate == 0:
		return nil, invalid("set cron or rate")
	case expr != "" && c.Rate != 0:
		return nil, invalid("set cron or rate, not both")
	case c.Rate != 0:
		if c.Timezone != "" {
			return nil, invalid("timezone %q applies to cron, not to rate", c.Timezone)
		}
		return newRate(c.Rate, "rate "+c.Rate.String())
	}
	if strings.HasPrefix(expr, "CRON_TZ=") || strings.HasPrefix(expr, "TZ=") {
		// One place for the zone; robfig/cron also panics on "TZ=x"
		// without a space.
		return nil, invalid("cron %q: set the time zone with timezone, not in the expression", expr)
	}
	sched, err := parseCron(expr)
	if err != nil {
		return nil, invalid("cron %q: %v", expr, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		if c.Timezone != "" {
			return nil, invalid("timezone %q applies to calendar expressions, not to %q", c.Timezone, expr)
		}
		return newRate(every.Delay, expr)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, invalid("cron %q: unsupported schedule %T", expr, sched)
	}
	loc := time.UTC
	if c.Timezone != "" {
		if loc, err = time.LoadLocation(c.Timezone); err != nil {
			return nil, invalid("timezone %q: %v", c.Timezone, err)
		}
	}
	cp := *spec
	cp.Location = loc
	const hours = 1<<24 - 1
	s := &Schedule{spec: &cp, loc: loc, allHours: cp.Hour&hours == hours, text: expr}
	if c.Timezone != "" {
		s.text += " (" + c.Timezone + ")"
	}
	// robfig gives up after five years: an expression such as "0 0 30 2 *"
	// would otherwise be accepted and silently never fire.
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, invalid("cron %q never fires", expr)
	}
	return s, nil
}

// parseCron runs robfig/cron's standard parser, turning a panic on odd
// input into an error: the expression is user text and the parser is not
// ours.
func parseCron(expr string) (s cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("unparsable expression (%v)", p)
		}
	}()
	return cron.ParseStandard(expr)
}

func newRate(d time.Duration, text string) (*Schedule, error) {
	if d < MinRate {
		return nil, invalid("%s: below the minimum of %v", text, MinRate)
	}
	return &Schedule{rate: d, loc: time.UTC, text: text}, nil
}

// String returns the expression, for logs: "*/5 * * * * (Europe/Berlin)",
// "rate 30s", "@every 1m0s".
func (s *Schedule) String() string { return s.text }

// Rate returns the interval of a rate or @every schedule, 0 for a calendar
// expression.
func (s *Schedule) Rate() time.Duration { return s.rate }

// Next returns the first tick strictly after t, in the schedule's zone (UTC
// for rates). It returns the zero time when there is none within five
// years, which New rules out for valid expressions.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		r := int64(s.rate)
		n := t.UnixNano()
		k := n / r
		if n < 0 && n%r != 0 {
			k-- // floor, not truncation, before the epoch
		}
		return time.Unix(0, (k+1)*r).In(s.loc)
	}
	t = t.In(s.loc)
	for {
		n := s.spec.Next(t)
		if n.IsZero() {
			return n
		}
		if g := s.gapTick(t, n); !g.IsZero() {
			return g
		}
		if !s.repeated(n) {
			return n
		}
		t = n
	}
}

// Between returns the ticks in (a, b], oldest first: the last limit of
// them when there are more, so a catch-up can fire the most recent ones.
// total counts them all. A calendar expression steps through every tick
// of the interval, so callers bound how far back a catch-up looks.
func (s *Schedule) Between(a, b time.Time, limit int) (ticks []time.Time, total int) {
	if !b.After(a) {
		return nil, 0
	}
	if s.spec == nil {
		first := s.Next(a)
		if first.After(b) {
			return nil, 0
		}
		total = int(b.Sub(first)/s.rate) + 1
		n := min(total, max(limit, 0))
		for i := total - n; i < total; i++ {
			ticks = append(ticks, first.Add(time.Duration(i)*s.rate))
		}
		return ticks, total
	}
	ring := make([]time.Time, 0, max(min(limit, 1024), 0))
	start := 0
	for t := s.Next(a); !t.IsZero() && !t.After(b); t = s.Next(t) {
		total++
		switch {
		case limit <= 0:
		case len(ring) < limit:
			ring = append(ring, t)
		default:
			ring[start] = t
			start = (start + 1) % limit
		}
	}
	if len(ring) == 0 {
		return nil, total
	}
	return append(ring[start:], ring[:start]...), total
}

// gapTick returns the first instant after a spring-forward gap in (t, n)
// when the expression names an hour whose local time the gap skipped, or
// the zero time. Expressions naming every hour need no repair: their next
// tick after the gap keeps real-time spacing.
func (s *Schedule) gapTick(t, n time.Time) time.Time {
	if s.allHours {
		return time.Time{}
	}
	for cur := t; ; {
		_, end := cur.ZoneBounds()
		if end.IsZero() || !end.Before(n) {
			return time.Time{}
		}
		_, before := end.Add(-time.Nanosecond).Zone()
		_, after := end.Zone()
		if gap := after - before; gap > 0 {
			wall := end.In(time.FixedZone("", before)) // the first local time skipped
			for m := 0; m < gap/60; m++ {
				if s.matchesWall(wall.Add(time.Duration(m) * time.Minute)) {
					return end
				}
			}
		}
		cur = end
	}
}

// repeated reports whether n's local time already passed an offset change
// ago, in the first pass of a fall-back hour.
func (s *Schedule) repeated(n time.Time) bool {
	if s.allHours {
		return false
	}
	start, _ := n.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, before := start.Add(-time.Nanosecond).Zone()
	_, after := start.Zone()
	back := before - after
	return back > 0 && n.Before(start.Add(time.Duration(back)*time.Second))
}

// matchesWall reports whether the expression matches the wall-clock minute
// of w, with cron's rule that a restricted day-of-month and a restricted
// day-of-week match when either does.
func (s *Schedule) matchesWall(w time.Time) bool {
	const star = 1 << 63
	sp := s.spec
	if sp.Minute&(1<<uint(w.Minute())) == 0 || sp.Hour&(1<<uint(w.Hour())) == 0 || sp.Month&(1<<uint(w.Month())) == 0 {
		return false
	}
	dom := sp.Dom&(1<<uint(w.Day())) != 0
	dow := sp.Dow&(1<<uint(w.Weekday())) != 0
	if sp.Dom&star != 0 || sp.Dow&star != 0 {
		return dom && dow
	}
	return dom || dow
}
