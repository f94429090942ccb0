package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams"
	"github.com/sluicehq/sluice/streams/formats"
	"github.com/sluicehq/sluice/streams/schedule"
)

// Defaults of Config.
const (
	// DefaultTopic is the coordination topic: one partition,
	// compacted, keyed by schedule name.
	DefaultTopic = "sluice.schedules"
	// DefaultGroup is the consumer group whose owner of partition
	// 0 of the coordination topic fires the schedules. It is also the
	// transactional id that fences a previous owner.
	DefaultGroup = "sluice-schedules"
	// DefaultCatchUpWindow bounds how far back a catch-up looks.
	DefaultCatchUpWindow = 24 * time.Hour
)

// TriggerSchedule is the invoker.Item.Trigger of schedule ticks, the
// trigger label of their sluice_invocations_total.
const TriggerSchedule = "schedule"

// States of a tick in the coordination topic.
const (
	tickFiring = "firing" // recorded before the tick is submitted
	tickFired  = "fired"  // recorded once the invoker accepted it
)

// Timing of the coordination. Variables of the Scheduler so that tests can
// shorten them.
const (
	schedRevokeTimeout = 10 * time.Second // a revoked owner's in-flight tick; well under the group's 60s rebalance timeout
	schedTxnTimeout    = 20 * time.Second // one coordination write
	schedMaxSleep      = time.Minute      // re-read the wall clock at least this often while waiting for a tick
	schedBackoffMin    = 500 * time.Millisecond
	schedBackoffMax    = 15 * time.Second
	schedFencedBackoff = 5 * time.Second
)

// errFenced marks a coordination write refused because another instance
// initialized the transactional id since: this instance is no longer the
// owner, or another one believes it is.
var errFenced = errors.New("streams: fenced by another schedule owner")

// Spec is one schedule trigger.
type Spec struct {
	// Name identifies the schedule across the cluster and across restarts:
	// it keys the coordination topic, names the envelope's schedule and
	// subject, and labels metrics. Required, unique within a Scheduler.
	// Renaming a schedule makes it a new one (nothing to catch up).
	Name string
	// Spec is the cron expression or rate. Required.
	Spec schedule.Config
	// Payload is the JSON delivered as the envelope's data.payload. Empty
	// means null.
	Payload json.RawMessage
	// SkipMissed is catch_up: false. By default (false) the ticks that no
	// instance fired on time (no instance was up, or the owner changed
	// between two ticks) are caught up by firing the latest of them once,
	// late. With SkipMissed they are skipped and the schedule resumes at
	// its next tick.
	SkipMissed bool
	// Function receives the ticks. Required.
	Function *invoker.Function
	// Filter, when set, is called with every tick's envelope; a tick for
	// which it returns false is not submitted (it still counts as fired)
	// and is counted in sluice_filtered_total{trigger=Name}. It must be
	// safe for concurrent use and must not retain the event.
	Filter func(*plugins.Event) bool
}

// Config configures a Scheduler. Its zero value is usable: every
// zero field takes the default its comment names, and no Brokers means
// local mode.
type Config struct {
	// Brokers are the seed brokers of the Kafka cluster the instances
	// coordinate through. Empty means local mode: this instance fires every
	// tick itself, so N replicas fire each tick N times, and nothing is
	// remembered across restarts (no catch-up).
	Brokers []string
	// ClientOpts are passed to kgo.NewClient after Sluice's own options, so
	// they win: SASL, TLS, client id, session timeout...
	ClientOpts []kgo.Opt
	// Topic is the coordination topic. It is created (one partition,
	// cleanup.policy=compact) when missing. Defaults to "sluice.schedules".
	Topic string
	// Group is the coordination consumer group and the transactional id of
	// the owner's writes. Defaults to "sluice-schedules". Deployments that
	// share a Kafka cluster but not their schedules need their own Topic
	// and Group.
	Group string
	// Instance names this instance in the coordination records and logs.
	// Defaults to HOSTNAME-PID.
	Instance string
	// CatchUpWindow bounds how far back a catch-up looks: a tick older than
	// this when its schedule is caught up is not fired. Defaults to 24h.
	CatchUpWindow time.Duration
	// Schedules are fired. A Scheduler without schedules still takes part
	// in the coordination (and fires nothing).
	Schedules []Spec
}

// Validate reports every problem of c: an empty broker address, a schedule
// without a name, function or valid expression, a payload that is not
// JSON, a duplicate name, a negative CatchUpWindow. Errors name the
// schedule and the key.
func (c *Config) Validate() error {
	var errs []error
	for _, b := range c.Brokers {
		if b == "" {
			errs = append(errs, errors.New("kafka.brokers: must not hold an empty address"))
			break
		}
	}
	if c.CatchUpWindow < 0 {
		errs = append(errs, fmt.Errorf("catch_up_window: must not be negative, got %s", c.CatchUpWindow))
	}
	seen := make(map[string]bool, len(c.Schedules))
	for i, s := range c.Schedules {
		where := fmt.Sprintf("schedule %q", s.Name)
		if s.Name == "" {
			where = fmt.Sprintf("schedule #%d", i)
			errs = append(errs, fmt.Errorf("%s: name: is required", where))
		} else if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%s: name: used by another schedule", where))
		}
		seen[s.Name] = true
		if s.Function == nil {
			errs = append(errs, fmt.Errorf("%s: function: is required", where))
		}
		if _, err := schedule.New(s.Spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if p := strings.TrimSpace(string(s.Payload)); p != "" && !json.Valid([]byte(p)) {
			errs = append(errs, fmt.Errorf("%s: payload: not valid JSON", where))
		}
	}
	return errors.Join(errs...)
}

// Scheduler fires schedule triggers: in Kafka mode once per tick across
// every instance that shares the coordination topic and group, in local
// mode on this instance alone. Create it with New, run it with
// Start, stop it with Close. Its methods are safe for concurrent use.
//
// In Kafka mode the instances form the consumer group Group on the
// single-partition topic Topic; the member that owns partition 0 is the
// owner and the only one that fires. When it gains the partition, the
// owner initializes the transactional id Group, which fences any previous
// owner's writes, writes an ownership record, and reads the topic up to
// that record to learn each schedule's last tick. Then, for each tick, it
// records "firing" (a transaction with acks=all), submits the tick to the
// function, and records "fired". A new owner fires again a tick left
// "firing", so a tick is never lost between the record and the submit; it
// is fired twice only when the owner died between the submit and the
// "fired" record, and both carry the same event id (NAME@TIME). A previous
// owner that has not noticed it lost the group cannot record, so it
// cannot fire.
type Scheduler struct {
	cfg     Config
	entries []*schedEntry
	log     zerolog.Logger
	set     *metrics.Set
	km      *streams.ClientMetrics // nil: no client metrics
	names   []string
	errs    *metrics.Counter
	terms   *metrics.Counter
	owner   atomic.Bool

	startMu sync.Mutex
	started bool
	closed  bool
	cl      *kgo.Client // the group member; nil in local mode

	mu      sync.Mutex
	closing bool
	sess    *schedSession

	// Timing, shortened by tests.
	revokeTimeout time.Duration
	backoffMin    time.Duration
	backoffMax    time.Duration
	fencedBackoff time.Duration
}

// schedEntry is one schedule and its series.
type schedEntry struct {
	spec     Spec
	sched    *schedule.Schedule
	payload  []byte
	fired    *metrics.Counter
	caughtUp *metrics.Counter
	skipped  *metrics.Counter
	filtered *metrics.Counter
	last     atomic.Int64 // unix nanoseconds of the last tick known fired; 0: none
}

// schedSession is one period of ownership (in local mode, Start to Close).
// soft ends it: no new tick starts. hard aborts a tick in flight.
type schedSession struct {
	soft, hard         context.Context
	stopSoft, stopHard context.CancelFunc
	done               chan struct{}
}

// New validates cfg and returns a Scheduler. It connects to
// nothing until Start. Validation errors name the schedule and key.
func New(cfg Config, deps streams.Deps) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "sluice"
		}
		cfg.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.CatchUpWindow == 0 {
		cfg.CatchUpWindow = DefaultCatchUpWindow
	}
	cfg.Schedules = slices.Clone(cfg.Schedules)
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	mode := "kafka"
	if len(cfg.Brokers) == 0 {
		mode = "local"
	}
	log = log.With().Str("component", "scheduler").Str("mode", mode).Str("instance", cfg.Instance).Logger()
	set := deps.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	s := &Scheduler{
		cfg:           cfg,
		log:           log,
		set:           set,
		km:            deps.ClientMetrics,
		revokeTimeout: schedRevokeTimeout,
		backoffMin:    schedBackoffMin,
		backoffMax:    schedBackoffMax,
		fencedBackoff: schedFencedBackoff,
	}
	counter := func(name string) *metrics.Counter {
		s.names = append(s.names, name)
		return set.GetOrCreateCounter(name)
	}
	s.errs = counter("sluice_schedule_errors_total")
	s.terms = counter("sluice_schedule_takeovers_total")
	s.names = append(s.names, "sluice_schedule_owner")
	set.GetOrCreateGauge("sluice_schedule_owner", func() float64 {
		if s.owner.Load() {
			return 1
		}
		return 0
	})
	for _, sp := range cfg.Schedules {
		sched, _ := schedule.New(sp.Spec) // validated above
		e := &schedEntry{spec: sp, sched: sched, payload: []byte(strings.TrimSpace(string(sp.Payload)))}
		l := fmt.Sprintf(`{schedule=%q`, sp.Name)
		e.fired = counter("sluice_schedule_ticks_total" + l + `,outcome="fired"}`)
		e.caughtUp = counter("sluice_schedule_ticks_total" + l + `,outcome="caught_up"}`)
		e.skipped = counter("sluice_schedule_ticks_total" + l + `,outcome="skipped"}`)
		e.filtered = counter(fmt.Sprintf(`sluice_filtered_total{trigger=%q}`, sp.Name))
		gauge := "sluice_schedule_last_fired_seconds" + l + "}"
		s.names = append(s.names, gauge)
		set.GetOrCreateGauge(gauge, func() float64 {
			return float64(e.last.Load()) / float64(time.Second)
		})
		s.entries = append(s.entries, e)
	}
	return s, nil
}

// Config returns the Scheduler's configuration with defaults applied.
func (s *Scheduler) Config() Config { return s.cfg }

// Owner reports whether this instance is firing the schedules now: in
// Kafka mode, it owns the coordination partition and has read the
// schedules' state; in local mode, between Start and Close.
func (s *Scheduler) Owner() bool { return s.owner.Load() }

// Start begins firing. In local mode it starts the timers at once. In
// Kafka mode it creates the coordination topic when missing (one
// partition, compacted), joins the group and returns; firing starts when
// this instance owns the group's partition. It returns an error when no
// broker answers before ctx ends or the topic can neither be created nor
// found, streams.ErrStarted on a second call and streams.ErrClosed after Close.
func (s *Scheduler) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closed {
		return streams.ErrClosed
	}
	if s.started {
		return streams.ErrStarted
	}
	if len(s.cfg.Brokers) == 0 {
		s.started = true
		s.owner.Store(true)
		s.gain()
		s.log.Info().Int("schedules", len(s.entries)).
			Msg("scheduler started in local mode: without Kafka every instance fires every tick")
		return nil
	}
	if err := s.ensureTopic(ctx); err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		// A crashed owner is replaced after the session timeout, and a
		// closed one after the others' next heartbeat: shorter than kgo's
		// 45s and 3s, because a tick waits for them.
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		kgo.WithLogger(streams.ClientLogger(s.log)),
		s.km.Opt(),
	}
	cl, err := kgo.NewClient(append(opts, s.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("scheduler: cannot create Kafka client: %w", err)
	}
	// The member only needs the assignment: the owner reads the topic with
	// its own client, from the start, each time it gains it.
	cl.PauseFetchTopics(s.cfg.Topic)
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return fmt.Errorf("scheduler: no broker of %v answers: %w", s.cfg.Brokers, err)
	}
	s.cl = cl
	s.started = true
	s.log.Info().Str("topic", s.cfg.Topic).Str("group", s.cfg.Group).Int("schedules", len(s.entries)).
		Msg("scheduler started: the owner of the group's partition 0 fires")
	return nil
}

// Close stops firing: it lets a tick in flight finish (its records and
// submit) until ctx ends, then abandons it (the next owner fires it
// again), and leaves the group so that another instance takes over at
// once. It returns ctx's error when it had to abandon a tick. Close is
// idempotent; events already submitted are the functions' to finish, so
// close the Scheduler before the functions.
func (s *Scheduler) Close(ctx context.Context) error {
	s.startMu.Lock()
	if s.closed {
		s.startMu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.startMu.Unlock()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	var err error
	if started {
		err = s.release(ctx)
		if s.cl != nil {
			// Bounded by ctx: an unreachable coordinator must not hold up
			// shutdown; the others then take over after the session timeout.
			_ = s.cl.LeaveGroupContext(ctx)
			s.cl.Close()
		}
	}
	for _, n := range s.names {
		s.set.UnregisterMetric(n)
	}
	if started {
		s.log.Info().Msg("scheduler closed")
	}
	if err != nil {
		return fmt.Errorf("scheduler: close: %w", err)
	}
	return nil
}

// ensureTopic creates the coordination topic, or checks the one that
// exists.
func (s *Scheduler) ensureTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), kgo.WithLogger(streams.ClientLogger(s.log)), s.km.Opt()}, s.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("scheduler: cannot create Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact, roll := "compact", "3600000"
	// One hour segments: the log cleaner compacts only closed segments, and
	// each new owner reads the topic whole.
	_, err = adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact, "segment.ms": &roll}, s.cfg.Topic)
	if err == nil {
		s.log.Info().Str("topic", s.cfg.Topic).Msg("created the schedule coordination topic")
		return nil
	}
	createErr := err
	tds, err := adm.ListTopics(ctx, s.cfg.Topic)
	if err != nil {
		return fmt.Errorf("scheduler: cannot create topic %q (%v) nor list it: %w", s.cfg.Topic, createErr, err)
	}
	td, ok := tds[s.cfg.Topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("scheduler: cannot create topic %q: %w", s.cfg.Topic, createErr)
	}
	if !errors.Is(createErr, kerr.TopicAlreadyExists) {
		s.log.Warn().Err(createErr).Str("topic", s.cfg.Topic).Msg("cannot create the schedule coordination topic; using the existing one")
	}
	if n := len(td.Partitions); n != 1 {
		s.log.Warn().Str("topic", s.cfg.Topic).Int("partitions", n).Msg("the schedule coordination topic should have one partition; only partition 0 is used")
	}
	if rcs, err := adm.DescribeTopicConfigs(ctx, s.cfg.Topic); err == nil {
		if rc, err := rcs.On(s.cfg.Topic, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && !strings.Contains(c.MaybeValue(), "compact") {
					s.log.Warn().Str("topic", s.cfg.Topic).Str("cleanup.policy", c.MaybeValue()).
						Msg("the schedule coordination topic is not compacted: it grows by two records per tick and every new owner reads it whole")
				}
			}
		}
	}
	return nil
}

func (s *Scheduler) ownsPartition0(m map[string][]int32) bool {
	return slices.Contains(m[s.cfg.Topic], 0)
}

// onAssigned starts firing when the coordination partition is assigned. It
// does not wait for the takeover: the group loop must go on.
func (s *Scheduler) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	if s.ownsPartition0(assigned) {
		s.log.Info().Msg("assigned the schedule coordination partition: taking over")
		s.gain()
	}
}

// onRevoked stops firing before the partition goes to another member, and
// waits for the tick in flight so that the next owner reads its records.
func (s *Scheduler) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if !s.ownsPartition0(revoked) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.revokeTimeout)
	defer cancel()
	if err := s.release(ctx); err != nil {
		s.log.Warn().Err(err).Msg("abandoned a tick in flight on losing the schedule coordination partition; the next owner fires it again")
	}
	s.log.Info().Msg("schedule coordination partition revoked: stopped firing")
}

// gain starts an ownership session unless one runs or the Scheduler is
// closing.
func (s *Scheduler) gain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.sess != nil {
		return
	}
	ss := &schedSession{done: make(chan struct{})}
	ss.hard, ss.stopHard = context.WithCancel(context.Background())
	ss.soft, ss.stopSoft = context.WithCancel(ss.hard)
	s.sess = ss
	go s.own(ss)
}

// release ends the ownership session: no new tick starts, the tick in
// flight finishes until ctx ends and is then aborted. It returns ctx's
// error when it aborted.
func (s *Scheduler) release(ctx context.Context) error {
	s.mu.Lock()
	ss := s.sess
	s.sess = nil
	s.mu.Unlock()
	if ss == nil {
		return nil
	}
	ss.stopSoft()
	var err error
	select {
	case <-ss.done:
	case <-ctx.Done():
		err = ctx.Err()
		ss.stopHard()
		<-ss.done
	}
	ss.stopHard()
	return err
}

// own runs one ownership session: in Kafka mode, terms of coordination
// until the session ends, each restarted after a backoff when a write or
// the takeover fails.
func (s *Scheduler) own(ss *schedSession) {
	defer close(ss.done)
	if len(s.cfg.Brokers) == 0 {
		// Local mode has no writes to fail: runners end with the session,
		// or a schedule stops when its function closed.
		_ = s.runSchedules(ss.soft, ss.hard, nil, nil, time.Now())
		s.owner.Store(false)
		return
	}
	backoff := s.backoffMin
	for {
		began := time.Now()
		err := s.term(ss)
		if ss.soft.Err() != nil {
			return
		}
		s.errs.Inc()
		if time.Since(began) > s.backoffMax {
			backoff = s.backoffMin // it ran fine for a while: a new failure
		}
		wait := backoff
		if errors.Is(err, errFenced) {
			// Another instance believes it owns the schedules. If it is
			// right, the group tells this one soon; if not, fence it back.
			wait = max(wait, s.fencedBackoff)
		}
		s.log.Warn().Err(err).Dur("retry_in", wait).Msg("schedule coordination failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-ss.soft.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.backoffMax)
	}
}

// term is one term of ownership in Kafka mode: fence the previous owner,
// learn the schedules' state, fire until the session ends (nil) or a
// coordination write fails (its error).
func (s *Scheduler) term(ss *schedSession) error {
	began := time.Now()
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.TransactionalID(s.cfg.Group),
		kgo.DefaultProduceTopic(s.cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), // partition 0 even if someone made more
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(schedTxnTimeout),
		kgo.WithLogger(s.quietLog()),
		s.km.Opt(),
	}
	p, err := kgo.NewClient(append(opts, s.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("cannot create the schedule producer: %w", err)
	}
	defer p.Close()
	// The first transaction initializes the transactional id, which aborts
	// the previous owner's open transaction and fences its later writes.
	// Its record is the barrier the state is read up to: everything the
	// previous owner committed lies below it.
	mark, err := json.Marshal(ownerRecord{Owner: s.cfg.Instance, Since: began.UTC()})
	if err != nil {
		panic("BUG: " + err.Error())
	}
	barrier := &kgo.Record{Key: []byte{}, Value: mark}
	if err := commitTxn(ss.soft, p, []*kgo.Record{barrier}); err != nil {
		return fmt.Errorf("cannot take over the schedules: %w", err)
	}
	state, prev, err := s.readState(ss.soft, barrier.Offset)
	if err != nil {
		return fmt.Errorf("cannot read the schedules' state from %q: %w", s.cfg.Topic, err)
	}
	s.log.Info().Str("previous_owner", prev).Int("known", len(state)).Dur("took", time.Since(began)).
		Msg("took over the schedules")
	w := newTxnWriter(ss.hard, p)
	defer w.stop()
	s.terms.Inc()
	s.owner.Store(true)
	defer s.owner.Store(false)
	return s.runSchedules(ss.soft, ss.hard, state, w, began)
}

// quietLog adapts the logger for the clients of a term, whose info lines
// (two transactions begun and ended per tick) would drown the Scheduler's
// own: they pass at warning level, or everything at trace level.
func (s *Scheduler) quietLog() kgo.Logger {
	l := s.log
	if lvl := l.GetLevel(); lvl > zerolog.TraceLevel && lvl < zerolog.WarnLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	return streams.ClientLogger(l)
}

// runSchedules runs one runner per schedule until soft ends (nil) or, in
// Kafka mode, one of them fails (its error).
func (s *Scheduler) runSchedules(soft, hard context.Context, state map[string]tickRecord, w *txnWriter, began time.Time) error {
	soft, cancel := context.WithCancelCause(soft)
	defer cancel(nil)
	// A failed term also aborts the others' ticks in flight: they could not
	// be recorded as fired, and the next term fires them again.
	hard, abort := context.WithCancel(hard)
	defer abort()
	var wg sync.WaitGroup
	now := time.Now()
	for _, e := range s.entries {
		var rec *tickRecord
		if r, ok := state[e.spec.Name]; ok {
			rec = &r
		}
		last := s.resume(e, rec, now)
		wg.Go(func() {
			err := s.run(soft, hard, e, last, began, w)
			switch {
			case err == nil:
			case w == nil:
				// Local mode has no coordination to restart: only a closed
				// function ends a runner, and only its own.
				s.log.Error().Err(err).Str("schedule", e.spec.Name).Msg("schedule stopped")
			default:
				cancel(err)
				abort()
			}
		})
	}
	wg.Wait()
	<-soft.Done() // runners end early only on errors
	if err := context.Cause(soft); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// resume returns the tick a schedule continues after, given its last
// record (nil: never fired) and the time of the takeover.
func (s *Scheduler) resume(e *schedEntry, rec *tickRecord, now time.Time) time.Time {
	if rec == nil {
		return now // a new schedule: nothing was missed
	}
	done := rec.Tick
	if rec.State == tickFiring {
		// Possibly never submitted: it counts as missed.
		done = done.Add(-time.Nanosecond)
	} else if done.UnixNano() > e.last.Load() {
		e.last.Store(done.UnixNano())
	}
	from := later(done, now.Add(-s.cfg.CatchUpWindow))
	if e.spec.SkipMissed {
		if _, n := e.sched.Between(from, now, 0); n > 0 {
			e.skipped.Add(n)
			s.log.Info().Str("schedule", e.spec.Name).Int("skipped", n).Msg("skipping missed ticks (catch_up: false)")
		}
		// A previous owner whose clock ran ahead may have fired ticks that are
		// still in the future here.
		return later(now, done)
	}
	return from
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// run fires one schedule's ticks after last until soft ends (nil), or a
// coordination write or the submit fails (the error).
func (s *Scheduler) run(soft, hard context.Context, e *schedEntry, last, began time.Time, w *txnWriter) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := e.sched.Next(last)
		if next.IsZero() {
			return nil
		}
		if !sleepUntil(soft, timer, next) {
			return nil
		}
		ticks, total := e.sched.Between(last, time.Now(), 1)
		if total == 0 {
			continue // the wall clock stepped back while we slept
		}
		tick := ticks[0]
		caughtUp := total > 1 || !tick.After(began)
		if total > 1 {
			e.skipped.Add(total - 1)
		}
		if err := s.fire(hard, e, tick, caughtUp, total-1, w); err != nil {
			return err
		}
		last = tick
	}
}

// sleepUntil waits for the wall clock to reach t, or for ctx to end
// (false). The timer is re-armed at least every schedMaxSleep, so that a
// step of the wall clock delays a tick by at most that.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	for {
		d := time.Until(t) // t carries no monotonic reading: wall clock
		if d <= 0 {
			return ctx.Err() == nil
		}
		timer.Reset(min(d, schedMaxSleep))
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
}

// fire records tick as firing, submits it, and records it as fired.
func (s *Scheduler) fire(ctx context.Context, e *schedEntry, tick time.Time, caughtUp bool, skipped int, w *txnWriter) error {
	ev, err := formats.ScheduleTick(e.spec.Name, tick, e.payload)
	if err != nil {
		panic("BUG: schedule tick of a validated schedule: " + err.Error())
	}
	if w != nil {
		if err := w.write(s.tickRec(e, tick, tickFiring)); err != nil {
			return fmt.Errorf("cannot record tick %s of schedule %q: %w", ev.ID, e.spec.Name, err)
		}
	}
	if e.spec.Filter != nil && !e.spec.Filter(ev) {
		e.filtered.Inc()
	} else if err := s.submit(ctx, e, ev); err != nil {
		// Recorded as firing: the next owner fires it again.
		return fmt.Errorf("cannot submit tick %s of schedule %q: %w", ev.ID, e.spec.Name, err)
	}
	if w != nil {
		if err := w.write(s.tickRec(e, tick, tickFired)); err != nil {
			return fmt.Errorf("cannot record tick %s of schedule %q as fired (the next owner fires it again): %w", ev.ID, e.spec.Name, err)
		}
	}
	outcome := "fired"
	if caughtUp {
		e.caughtUp.Inc()
		outcome = "caught_up"
	} else {
		e.fired.Inc()
	}
	e.last.Store(tick.UnixNano())
	ll := s.log.Info().Str("schedule", e.spec.Name).Str("function", e.spec.Function.Name()).
		Str("scheduled_time", tick.UTC().Format(time.RFC3339Nano)).Int64("lag_ms", time.Since(tick).Milliseconds()).
		Str("outcome", outcome)
	if skipped > 0 {
		ll = ll.Int("skipped", skipped)
	}
	ll.Msg("schedule fired")
	return nil
}

func discardOutcome(*invoker.Item, invoker.Outcome) {}

// submit hands ev to the function, waiting while its queue is full, until
// ctx ends.
func (s *Scheduler) submit(ctx context.Context, e *schedEntry, ev *plugins.Event) error {
	fn := e.spec.Function
	it := &invoker.Item{Event: ev, Trigger: TriggerSchedule, DeadLetter: true, Done: discardOutcome}
	for warned := false; ; warned = true {
		err := fn.Submit(it)
		if !errors.Is(err, invoker.ErrQueueFull) {
			return err
		}
		if !warned {
			s.log.Warn().Str("schedule", e.spec.Name).Str("function", fn.Name()).Msg("function queue full; the tick waits")
		}
		_, capacity := fn.Load()
		select {
		case <-fn.Drained(capacity - 1):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tickRecord is the value of a schedule's key in the coordination topic.
type tickRecord struct {
	// Tick is the scheduled time.
	Tick time.Time `json:"tick"`
	// State is "firing" (recorded, maybe not submitted) or "fired"
	// (submitted). Missing means fired.
	State string `json:"state,omitempty"`
	// FiredAt is when the owner recorded it.
	FiredAt time.Time `json:"fired_at"`
	// Instance is the owner that recorded it.
	Instance string `json:"instance"`
}

// ownerRecord is the value of the empty key: the last takeover.
type ownerRecord struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
}

func (s *Scheduler) tickRec(e *schedEntry, tick time.Time, state string) *kgo.Record {
	v, err := json.Marshal(tickRecord{Tick: tick.UTC(), State: state, FiredAt: time.Now().UTC(), Instance: s.cfg.Instance})
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return &kgo.Record{Key: []byte(e.spec.Name), Value: v}
}

// decodeTickRecord parses a coordination record's value.
func decodeTickRecord(b []byte) (tickRecord, error) {
	var r tickRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("not a schedule record: %w", err)
	}
	if r.Tick.IsZero() {
		return r, errors.New("not a schedule record: tick is missing")
	}
	switch r.State {
	case "":
		r.State = tickFired
	case tickFiring, tickFired:
	default:
		return r, fmt.Errorf("not a schedule record: unknown state %q", r.State)
	}
	return r, nil
}

// readState reads partition 0 of the coordination topic from its start up
// to the record at offset barrier, and returns the last valid record of
// each schedule and the previous owner.
func (s *Scheduler) readState(ctx context.Context, barrier int64) (map[string]tickRecord, string, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: {0: kgo.NewOffset().AtStart()}}),
		// An aborted transaction is a tick that was never recorded.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.WithLogger(s.quietLog()),
		s.km.Opt(),
	}
	cl, err := kgo.NewClient(append(opts, s.cfg.ClientOpts...)...)
	if err != nil {
		return nil, "", err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	state := make(map[string]tickRecord)
	prev := ""
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, "", errs[0].Err
		}
		reached := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition != 0 || r.Offset > barrier || reached {
				return
			}
			if r.Offset == barrier {
				reached = true
				return
			}
			key := string(r.Key)
			switch {
			case key == "":
				var o ownerRecord
				if json.Unmarshal(r.Value, &o) == nil {
					prev = o.Owner
				}
			case r.Value == nil:
				delete(state, key) // a tombstone: forget the schedule
			default:
				tr, err := decodeTickRecord(r.Value)
				if err != nil {
					s.log.Warn().Err(err).Str("schedule", key).Int64("offset", r.Offset).Msg("ignoring a malformed record of the schedule coordination topic")
					return
				}
				state[key] = tr
			}
		})
		if reached {
			return state, prev, nil
		}
	}
}

// commitTxn writes recs in one transaction. On any error the client must
// be discarded: the transaction's outcome may be unknown, and the next
// initialization of the transactional id (by this instance or another)
// aborts it if it is still open.
func commitTxn(ctx context.Context, p *kgo.Client, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, schedTxnTimeout)
	defer cancel()
	if err := p.BeginTransaction(); err != nil {
		return fencedErr(err)
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fencedErr(err)
	}
	return fencedErr(p.EndTransaction(ctx, kgo.TryCommit))
}

// fencedErr wraps errFenced around the errors of a producer whose
// transactional id another client initialized since.
func fencedErr(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	return err
}

// txnWriter batches the coordination writes of concurrent runners into
// transactions: the ticks of many schedules due at the same second cost
// one transaction, not one each. After a failure every write fails.
type txnWriter struct {
	p    *kgo.Client
	ctx  context.Context
	reqs chan *writeReq
	quit chan struct{}
	done chan struct{}
	err  error // owned by loop
}

type writeReq struct {
	rec *kgo.Record
	err chan error
}

var errWriterStopped = errors.New("streams: schedule writer stopped")

func newTxnWriter(ctx context.Context, p *kgo.Client) *txnWriter {
	w := &txnWriter{p: p, ctx: ctx, reqs: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// write records rec in a transaction and returns once it committed, or
// the error.
func (w *txnWriter) write(rec *kgo.Record) error {
	req := &writeReq{rec: rec, err: make(chan error, 1)}
	select {
	case w.reqs <- req:
		return <-req.err
	case <-w.done:
		return errWriterStopped
	}
}

func (w *txnWriter) stop() {
	close(w.quit)
	<-w.done
}

func (w *txnWriter) loop() {
	defer close(w.done)
	for {
		var batch []*writeReq
		select {
		case req := <-w.reqs:
			batch = append(batch, req)
		case <-w.quit:
			return
		}
	more:
		for len(batch) < 256 {
			select {
			case req := <-w.reqs:
				batch = append(batch, req)
			default:
				break more
			}
		}
		if w.err == nil {
			recs := make([]*kgo.Record, len(batch))
			for i, r := range batch {
				recs[i] = r.rec
			}
			w.err = commitTxn(w.ctx, w.p, recs)
		}
		for _, r := range batch {
			r.err <- w.err
		}
	}
}
