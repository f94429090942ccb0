package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams"
	"github.com/sluicehq/sluice/streams/internal/kafkatest"
	"github.com/sluicehq/sluice/streams/schedule"
)

// tickLog collects the ticks that reach the functions of several
// instances.
type tickLog struct {
	mu    sync.Mutex
	ticks []firedTick
}

type firedTick struct {
	id, schedule, instance string
	tick                   time.Time
}

func (l *tickLog) handler(instance string) plugins.Handler {
	return func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		var data struct {
			Schedule      string          `json:"schedule"`
			ScheduledTime time.Time       `json:"scheduledTime"`
			Payload       json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ticks = append(l.ticks, firedTick{id: ev.ID, schedule: data.Schedule, instance: instance, tick: data.ScheduledTime})
		return nil, nil
	}
}

func (l *tickLog) snapshot() []firedTick {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]firedTick(nil), l.ticks...)
}

func (l *tickLog) count(keep func(firedTick) bool) int {
	n := 0
	for _, f := range l.snapshot() {
		if keep == nil || keep(f) {
			n++
		}
	}
	return n
}

// checkOnceEach fails unless every tick of the log was fired exactly once
// and they follow each other every step, with no gap. It returns them
// sorted.
func checkOnceEach(t *testing.T, fs []firedTick, step time.Duration) []firedTick {
	t.Helper()
	seen := map[string]int{}
	for _, f := range fs {
		seen[f.id]++
		if want := f.schedule + "@" + f.tick.UTC().Format(time.RFC3339Nano); f.id != want {
			t.Errorf("event id %q, want %q", f.id, want)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("tick %s fired %d times", id, n)
		}
	}
	sorted := append([]firedTick(nil), fs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].tick.Before(sorted[j].tick) })
	for i := 1; i < len(sorted); i++ {
		if d := sorted[i].tick.Sub(sorted[i-1].tick); d != step && d != 0 {
			t.Errorf("ticks %s and %s are %s apart: a tick was skipped", sorted[i-1].id, sorted[i].id, d)
		}
	}
	if t.Failed() {
		for _, f := range sorted {
			t.Logf("%s by %s", f.id, f.instance)
		}
	}
	return sorted
}

// schedInstance is one "instance" of Sluice: a function and a Scheduler.
type schedInstance struct {
	name string
	s    *Scheduler
	set  *metrics.Set
	fn   *invoker.Function
}

// newSchedInstance creates (without starting) a Scheduler of one rate
// schedule named sched firing into log. seeds nil means local mode.
func newSchedInstance(t *testing.T, seeds []string, topic, name, sched string, rate time.Duration, log *tickLog, mod func(*Spec)) *schedInstance {
	t.Helper()
	fn, _ := newFunction(t, "fn-"+name, invoker.Config{}, builtinWorker("fn-"+name, log.handler(name)))
	spec := Spec{Name: sched, Spec: schedule.Config{Rate: rate}, Payload: json.RawMessage(`{"job":"cleanup"}`), Function: fn}
	if mod != nil {
		mod(&spec)
	}
	cfg := Config{Brokers: seeds, Instance: name, Schedules: []Spec{spec}}
	if seeds != nil {
		cfg.Topic, cfg.Group = topic, topic
		// Quick group reactions keep takeover tests short.
		cfg.ClientOpts = []kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond)}
	}
	set := metrics.NewSet()
	lg := testLogger(t)
	s, err := New(cfg, streams.Deps{Logger: &lg, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	s.backoffMin, s.fencedBackoff = 50*time.Millisecond, 200*time.Millisecond
	si := &schedInstance{name: name, s: s, set: set, fn: fn}
	t.Cleanup(func() { si.close(t) })
	return si
}

func (si *schedInstance) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := si.s.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func (si *schedInstance) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := si.s.Close(ctx); err != nil {
		t.Errorf("close %s: %v", si.name, err)
	}
}

func (si *schedInstance) metric(series string) float64 { return metricValue(si.set, series) }

func uniqueName(t *testing.T) string {
	return fmt.Sprintf("sched-%s-%08x", strings.NewReplacer("/", "-", "#", "-").Replace(t.Name()), rand.Uint32())
}

// TestSchedulerOncePerTickAcrossInstances runs two instances on one broker:
// every tick of a one-second rate fires once, none is skipped.
func TestSchedulerOncePerTickAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := uniqueName(t)
	log := &tickLog{}
	a := newSchedInstance(t, e.Seeds, topic, "a", "every-second", time.Second, log, nil)
	b := newSchedInstance(t, e.Seeds, topic, "b", "every-second", time.Second, log, nil)
	a.start(t)
	b.start(t)
	fired := func(si *schedInstance) float64 {
		return si.metric(`sluice_schedule_ticks_total{schedule="every-second",outcome="fired"}`) +
			si.metric(`sluice_schedule_ticks_total{schedule="every-second",outcome="caught_up"}`)
	}
	// Between two ticks the metrics and the functions agree.
	waitFor(t, 20*time.Second, "5 ticks counted in the metrics", func() bool {
		n := log.count(nil)
		return n >= 5 && fired(a)+fired(b) == float64(n)
	})
	if a.s.Owner() == b.s.Owner() {
		t.Errorf("owners: a %v, b %v; want exactly one", a.s.Owner(), b.s.Owner())
	}
	owner := a
	if b.s.Owner() {
		owner = b
	}
	if got := owner.metric(`sluice_schedule_last_fired_seconds{schedule="every-second"}`); got < float64(time.Now().Add(-3*time.Second).Unix()) {
		t.Errorf("last fired gauge = %v, want a recent tick", got)
	}
	a.close(t)
	b.close(t)
	fs := checkOnceEach(t, log.snapshot(), time.Second)
	for _, f := range fs {
		if f.schedule != "every-second" || f.tick.Nanosecond() != 0 {
			t.Errorf("tick %s: want a whole second of every-second", f.id)
		}
	}
}

// TestSchedulerTakeover closes the owner mid-run: the other instance goes
// on, firing no tick twice and skipping none.
func TestSchedulerTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := uniqueName(t)
	log := &tickLog{}
	a := newSchedInstance(t, e.Seeds, topic, "a", "takeover", time.Second, log, nil)
	b := newSchedInstance(t, e.Seeds, topic, "b", "takeover", time.Second, log, nil)
	a.start(t)
	waitFor(t, 10*time.Second, "a to own the schedules", a.s.Owner)
	b.start(t)
	waitFor(t, 20*time.Second, "2 ticks by a", func() bool { return log.count(nil) >= 2 })
	a.close(t)
	closed := log.count(nil)
	handover := time.Now()
	waitFor(t, 20*time.Second, "b to own the schedules", b.s.Owner)
	t.Logf("b took over %s after a closed", time.Since(handover).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "3 ticks by b", func() bool {
		return log.count(func(f firedTick) bool { return f.instance == "b" }) >= 3
	})
	b.close(t)
	fs := checkOnceEach(t, log.snapshot(), time.Second)
	var lastA time.Time
	for _, f := range fs {
		if f.instance == "a" {
			lastA = f.tick
		}
	}
	for _, f := range fs {
		if f.instance == "b" && !f.tick.After(lastA) {
			t.Errorf("b fired %s, not after a's last tick %s", f.id, lastA)
		}
	}
	if n := log.count(func(f firedTick) bool { return f.instance == "a" }); n > closed {
		t.Errorf("a fired %d ticks after Close returned", n-closed)
	}
	if got := b.metric(`sluice_schedule_ticks_total{schedule="takeover",outcome="caught_up"}`); got > 1 {
		t.Errorf("b caught up %v ticks on takeover, want at most 1", got)
	}
}

// seedTick writes a schedule's last tick to the coordination topic, as a
// previous owner would have, creating the topic.
func seedTick(t *testing.T, e *kafkatest.Env, topic, name string, tick time.Time, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	compact := "compact"
	if _, err := e.Adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic); err != nil {
		t.Fatal(err)
	}
	v, err := json.Marshal(tickRecord{Tick: tick.UTC(), State: state, FiredAt: tick.UTC(), Instance: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	e.Produce(t, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(name), Value: v})
}

// TestSchedulerCatchUp starts an instance after its schedule last fired ten
// ticks ago: with catch_up it fires the latest missed tick once, without it
// none, and a tick recorded as firing but not fired is fired again.
func TestSchedulerCatchUp(t *testing.T) {
	t.Parallel()
	t.Run("latest missed tick once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		topic := uniqueName(t)
		lastFired := time.Now().Truncate(time.Second).Add(-10 * time.Second)
		seedTick(t, e, topic, "catch", lastFired, "")
		log := &tickLog{}
		si := newSchedInstance(t, e.Seeds, topic, "a", "catch", time.Second, log, nil)
		si.start(t)
		started := time.Now()
		waitFor(t, 20*time.Second, "2 ticks", func() bool { return log.count(nil) >= 2 })
		caughtUp := si.metric(`sluice_schedule_ticks_total{schedule="catch",outcome="caught_up"}`)
		skipped := si.metric(`sluice_schedule_ticks_total{schedule="catch",outcome="skipped"}`)
		si.close(t)
		fs := checkOnceEach(t, log.snapshot(), time.Second)
		first := fs[0].tick
		if !first.After(lastFired.Add(9*time.Second)) || first.After(started) {
			t.Errorf("first tick %s: want the latest missed one, after %s and not after the start %s", first, lastFired.Add(9*time.Second), started)
		}
		if caughtUp != 1 {
			t.Errorf("caught_up = %v, want 1", caughtUp)
		}
		if want := float64(first.Sub(lastFired)/time.Second - 1); skipped != want {
			t.Errorf("skipped = %v, want %v (the missed ticks before %s)", skipped, want, first)
		}
	})
	t.Run("catch_up false", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		topic := uniqueName(t)
		lastFired := time.Now().Truncate(time.Second).Add(-10 * time.Second)
		seedTick(t, e, topic, "skip", lastFired, tickFired)
		log := &tickLog{}
		si := newSchedInstance(t, e.Seeds, topic, "a", "skip", time.Second, log, func(s *Spec) { s.SkipMissed = true })
		started := time.Now()
		si.start(t)
		waitFor(t, 20*time.Second, "2 ticks", func() bool { return log.count(nil) >= 2 })
		caughtUp := si.metric(`sluice_schedule_ticks_total{schedule="skip",outcome="caught_up"}`)
		skipped := si.metric(`sluice_schedule_ticks_total{schedule="skip",outcome="skipped"}`)
		si.close(t)
		fs := checkOnceEach(t, log.snapshot(), time.Second)
		if !fs[0].tick.After(started) {
			t.Errorf("first tick %s is not after the start %s: a missed tick fired", fs[0].id, started)
		}
		if caughtUp != 0 {
			t.Errorf("caught_up = %v, want 0", caughtUp)
		}
		if skipped < 10 {
			t.Errorf("skipped = %v, want at least the 10 missed ticks", skipped)
		}
	})
	t.Run("firing but not fired", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		topic := uniqueName(t)
		sched, err := schedule.New(schedule.Config{Rate: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pending := sched.Next(time.Now().Add(-time.Hour)) // the latest hourly tick
		if until := time.Until(pending.Add(time.Hour)); until < 10*time.Second {
			<-time.After(until) // the next tick would race the test: wait for it
			pending = pending.Add(time.Hour)
		}
		seedTick(t, e, topic, "hourly", pending, tickFiring)
		log := &tickLog{}
		si := newSchedInstance(t, e.Seeds, topic, "a", "hourly", time.Hour, log, nil)
		si.start(t)
		waitFor(t, 20*time.Second, "the pending tick", func() bool { return log.count(nil) >= 1 })
		si.close(t)
		fs := log.snapshot()
		if len(fs) != 1 || !fs[0].tick.Equal(pending) {
			t.Fatalf("fired %v, want the pending tick %s once", fs, pending)
		}
	})
}

// TestSchedulerFencesPreviousOwner has another client take the owner's
// transactional id and record the next two ticks as fired, as a new owner
// would: the fenced owner must fire neither (the first because its record
// is refused, the second because it reads it on taking the schedules
// back), then fire the following ones.
func TestSchedulerFencesPreviousOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := uniqueName(t)
	log := &tickLog{}
	si := newSchedInstance(t, e.Seeds, topic, "a", "fenced", time.Second, log, nil)
	si.start(t)
	waitFor(t, 20*time.Second, "a first tick recorded as fired", func() bool {
		return si.metric(`sluice_schedule_last_fired_seconds{schedule="fenced"}`) > 0
	})
	last := time.Unix(int64(si.metric(`sluice_schedule_last_fired_seconds{schedule="fenced"}`)), 0)
	stolen := last.Add(2 * time.Second)

	other, err := kgo.NewClient(kgo.SeedBrokers(e.Seeds...), kgo.TransactionalID(topic), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _ := json.Marshal(tickRecord{Tick: stolen.UTC(), State: tickFired, FiredAt: time.Now().UTC(), Instance: "thief"})
	if err := commitTxn(ctx, other, []*kgo.Record{{Key: []byte("fenced"), Value: v}}); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(last.Add(time.Second)) {
		t.Skipf("the machine is too slow: tick %s passed before it was stolen", last.Add(time.Second))
	}
	waitFor(t, 20*time.Second, "2 ticks after the stolen ones", func() bool {
		return log.count(func(f firedTick) bool { return f.tick.After(stolen) }) >= 2
	})
	errs := si.metric("sluice_schedule_errors_total")
	si.close(t)
	for _, f := range log.snapshot() {
		if f.tick.After(last) && !f.tick.After(stolen) {
			t.Errorf("the fenced owner fired %s; the new owner recorded %s", f.id, stolen)
		}
	}
	if errs < 1 {
		t.Errorf("errors = %v, want the fenced write counted", errs)
	}
}

// TestSchedulerLocal runs two instances without Kafka: each fires every
// tick (N replicas fire N times), and Close stops firing.
func TestSchedulerLocal(t *testing.T) {
	t.Parallel()
	log := &tickLog{}
	a := newSchedInstance(t, nil, "", "a", "local", time.Second, log, nil)
	b := newSchedInstance(t, nil, "", "b", "local", time.Second, log, nil)
	a.start(t)
	b.start(t)
	if !a.s.Owner() || !b.s.Owner() {
		t.Fatal("local instances must both fire")
	}
	byInst := func(name string) func(firedTick) bool {
		return func(f firedTick) bool { return f.instance == name }
	}
	waitFor(t, 20*time.Second, "2 ticks on each instance", func() bool {
		return log.count(byInst("a")) >= 2 && log.count(byInst("b")) >= 2
	})
	a.close(t)
	b.close(t)
	if a.s.Owner() {
		t.Error("a still fires after Close")
	}
	fs := log.snapshot()
	var onA, onB []firedTick
	for _, f := range fs {
		if f.instance == "a" {
			onA = append(onA, f)
		} else {
			onB = append(onB, f)
		}
	}
	checkOnceEach(t, onA, time.Second)
	checkOnceEach(t, onB, time.Second)
	ticksA := map[time.Time]bool{}
	for _, f := range onA {
		ticksA[f.tick] = true
	}
	both := 0
	for _, f := range onB {
		if ticksA[f.tick] {
			both++
		}
	}
	if both == 0 {
		t.Errorf("no tick fired on both instances: a %v, b %v", onA, onB)
	}
	// Closed: two more tick times pass without a fire.
	<-time.After(time.Until(time.Now().Truncate(time.Second).Add(2*time.Second + 100*time.Millisecond)))
	if n := len(log.snapshot()); n != len(fs) {
		t.Errorf("%d ticks fired after Close", n-len(fs))
	}
}

func TestSchedulerLifecycle(t *testing.T) {
	t.Parallel()
	s, err := New(Config{}, streams.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, streams.ErrStarted) {
		t.Errorf("second Start: %v, want streams.ErrStarted", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, streams.ErrClosed) {
		t.Errorf("Start after Close: %v, want streams.ErrClosed", err)
	}
	c := s.Config()
	if c.Topic != DefaultTopic || c.Group != DefaultGroup || c.CatchUpWindow != DefaultCatchUpWindow || c.Instance == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
	// Kafka mode against a closed port: Start fails and can be closed.
	s, err = New(Config{Brokers: []string{"127.0.0.1:1"}}, streams.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := s.Start(sctx); err == nil {
		t.Error("Start against no broker succeeded")
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close after a failed Start: %v", err)
	}
}

func TestSchedulerConfigValidate(t *testing.T) {
	t.Parallel()
	fn, _ := newFunction(t, "v", invoker.Config{}, builtinWorker("v", func(context.Context, *plugins.Event) ([]byte, error) { return nil, nil }))
	ok := Spec{Name: "ok", Spec: schedule.Config{Cron: "*/5 * * * *"}, Function: fn}
	with := func(mod func(*Spec)) Spec {
		s := ok
		mod(&s)
		return s
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"valid", Config{Schedules: []Spec{ok, with(func(s *Spec) { s.Name = "b"; s.Payload = json.RawMessage(` {"a":1} `) })}}, nil},
		{"empty broker", Config{Brokers: []string{"x:9092", ""}}, []string{"kafka.brokers: must not hold an empty address"}},
		{"negative window", Config{CatchUpWindow: -time.Second}, []string{"catch_up_window: must not be negative"}},
		{"no name", Config{Schedules: []Spec{with(func(s *Spec) { s.Name = "" })}}, []string{"schedule #0: name: is required"}},
		{"duplicate", Config{Schedules: []Spec{ok, ok}}, []string{`schedule "ok": name: used by another schedule`}},
		{"no function", Config{Schedules: []Spec{with(func(s *Spec) { s.Function = nil })}}, []string{`schedule "ok": function: is required`}},
		{"bad cron", Config{Schedules: []Spec{with(func(s *Spec) { s.Spec.Cron = "61 * * * *" })}}, []string{`schedule "ok": schedule: invalid schedule: cron "61 * * * *"`}},
		{"no spec", Config{Schedules: []Spec{with(func(s *Spec) { s.Spec = schedule.Config{} })}}, []string{"set cron or rate"}},
		{"bad payload", Config{Schedules: []Spec{with(func(s *Spec) { s.Payload = json.RawMessage(`{job:`) })}}, []string{`schedule "ok": payload: not valid JSON`}},
		{"several", Config{CatchUpWindow: -1, Schedules: []Spec{with(func(s *Spec) { s.Function = nil; s.Spec.Rate = time.Second })}},
			[]string{"catch_up_window", "function: is required", "not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, streams.Deps{})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeTickRecord(t *testing.T) {
	t.Parallel()
	tick := time.Date(2024, 5, 1, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    tickRecord
		wantErr string
	}{
		{`{"tick":"2024-05-01T10:05:00Z","fired_at":"2024-05-01T10:05:00.2Z","instance":"a"}`,
			tickRecord{Tick: tick, State: tickFired, FiredAt: tick.Add(200 * time.Millisecond), Instance: "a"}, ""},
		{`{"tick":"2024-05-01T12:05:00+02:00","state":"firing"}`, tickRecord{Tick: tick, State: tickFiring}, ""},
		{`{"tick":"2024-05-01T10:05:00Z","state":"done"}`, tickRecord{}, `unknown state "done"`},
		{`{"fired_at":"2024-05-01T10:05:00Z"}`, tickRecord{}, "tick is missing"},
		{`{"tick":"yesterday"}`, tickRecord{}, "not a schedule record"},
		{`[]`, tickRecord{}, "not a schedule record"},
		{``, tickRecord{}, "not a schedule record"},
	}
	for _, tt := range tests {
		got, err := decodeTickRecord([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decode(%s) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !got.Tick.Equal(tt.want.Tick) || got.State != tt.want.State || !got.FiredAt.Equal(tt.want.FiredAt) || got.Instance != tt.want.Instance {
			t.Errorf("decode(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzDecodeTickRecord(f *testing.F) {
	f.Add([]byte(`{"tick":"2024-05-01T10:05:00Z","state":"fired","fired_at":"2024-05-01T10:05:00.2Z","instance":"a"}`))
	f.Add([]byte(`{"tick":"2024-05-01T10:05:00.123456789+02:00","state":"firing"}`))
	f.Add([]byte(`{"tick":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeTickRecord(b)
		if err != nil {
			return
		}
		if r.Tick.IsZero() || (r.State != tickFiring && r.State != tickFired) {
			t.Fatalf("decoded %+v from %q", r, b)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			return // a year outside [0, 9999] decodes but does not encode
		}
		back, err := decodeTickRecord(enc)
		if err != nil || !back.Tick.Equal(r.Tick) || back.State != r.State || back.Instance != r.Instance {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", enc, back, err, r)
		}
	})
}

// TestSchedulerQueueFull holds the function's only slot and fills its
// queue: the next tick waits for room instead of being dropped.
func TestSchedulerQueueFull(t *testing.T) {
	t.Parallel()
	log := &tickLog{}
	release := make(chan struct{})
	var once sync.Once
	record := log.handler("a")
	h := func(ctx context.Context, ev *plugins.Event) ([]byte, error) {
		once.Do(func() { <-release })
		return record(ctx, ev)
	}
	fn, fnSet := newFunction(t, "held", invoker.Config{Queue: 1, Concurrency: 1, Batch: invoker.BatchConfig{MaxItems: 1}}, builtinWorker("held", h))
	lg := testLogger(t)
	s, err := New(Config{Schedules: []Spec{{Name: "held", Spec: schedule.Config{Rate: time.Second}, Function: fn}}},
		streams.Deps{Logger: &lg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	waitFor(t, 20*time.Second, "a tick refused by the full queue", func() bool {
		return metricValue(fnSet, `sluice_throttles_total{function="held"}`) >= 1
	})
	close(release)
	waitFor(t, 20*time.Second, "4 ticks", func() bool { return log.count(nil) >= 4 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkOnceEach(t, log.snapshot(), time.Second)
}

// TestSchedulerFilter drops the ticks of odd seconds: they count as
// filtered and never reach the function.
func TestSchedulerFilter(t *testing.T) {
	t.Parallel()
	log := &tickLog{}
	si := newSchedInstance(t, nil, "", "a", "even", time.Second, log, func(s *Spec) {
		s.Filter = func(ev *plugins.Event) bool { return ev.Time.Unix()%2 == 0 }
	})
	si.start(t)
	waitFor(t, 20*time.Second, "an even tick and a filtered one", func() bool {
		return log.count(nil) >= 1 && si.metric(`sluice_filtered_total{trigger="even"}`) >= 1
	})
	si.close(t)
	for _, f := range log.snapshot() {
		if f.tick.Unix()%2 != 0 {
			t.Errorf("filtered tick %s reached the function", f.id)
		}
	}
}

// TestSchedulerTakesOverFromCrashedOwner leaves a transaction open, as an
// owner that crashed between producing "firing" and committing would: the
// next owner aborts it by taking the transactional id, so the state it
// reads (up to its own record, past the stuck stable offset) is the last
// committed one.
func TestSchedulerTakesOverFromCrashedOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := uniqueName(t)
	sched, err := schedule.New(schedule.Config{Rate: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fired := sched.Next(time.Now().Add(-time.Hour)) // the latest hourly tick
	if until := time.Until(fired.Add(time.Hour)); until < 10*time.Second {
		<-time.After(until)
		fired = fired.Add(time.Hour)
	}
	seedTick(t, e, topic, "hourly", fired, tickFired)

	crashed, err := kgo.NewClient(kgo.SeedBrokers(e.Seeds...), kgo.TransactionalID(topic), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	if err := crashed.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(tickRecord{Tick: fired.UTC(), State: tickFiring, Instance: "crashed"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := crashed.ProduceSync(ctx, &kgo.Record{Key: []byte("hourly"), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	log := &tickLog{}
	si := newSchedInstance(t, e.Seeds, topic, "b", "hourly", time.Hour, log, nil)
	si.start(t)
	waitFor(t, 20*time.Second, "the takeover to read the committed tick", func() bool {
		return si.metric(`sluice_schedule_last_fired_seconds{schedule="hourly"}`) == float64(fired.Unix())
	})
	// A fire would have counted itself before moving the gauge.
	n := si.metric(`sluice_schedule_ticks_total{schedule="hourly",outcome="fired"}`) +
		si.metric(`sluice_schedule_ticks_total{schedule="hourly",outcome="caught_up"}`)
	if n != 0 {
		t.Errorf("fired %v ticks; the open transaction's record was aborted and %s was fired", n, fired)
	}
	if !si.s.Owner() {
		t.Error("the new owner does not fire")
	}
}
