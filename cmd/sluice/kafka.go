package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams"
	"github.com/sluicehq/sluice/streams/formats"
	"github.com/sluicehq/sluice/streams/schedule"
	"github.com/sluicehq/sluice/streams/scheduler"
)

// kafkaParts are the Kafka pieces of a running gateway, in start order.
type kafkaParts struct {
	embedded  *streams.Embedded
	publisher *kafkaPublisher
	triggers  []*streams.Trigger
	scheduler *scheduler.Scheduler
	sets      []*metrics.Set
	// km are the Kafka clients' own series, shared by every client of the
	// parts; made on first use (clientMetrics).
	km     *streams.ClientMetrics
	kmOnce sync.Once

	// addr is the embedded broker's address, when kafka.embedded is set.
	addr string
	// deferred is set in a process started by a reload with
	// kafka.embedded: the broker's address, and its in-memory data, belong
	// to the process being replaced until it exits, so this process starts
	// its broker, producer and triggers only then (startDeferred), empty.
	deferred bool
	mu       sync.Mutex
	stopped  bool               // stopDeferred was called
	cancel   context.CancelFunc // stops a startDeferred in progress
	done     chan struct{}      // closed when that startDeferred returns
}

// usesKafka reports whether any part of the file needs a Kafka cluster.
func usesKafka(cfg *config.File) bool {
	if cfg.Kafka.Embedded {
		return true
	}
	for _, t := range cfg.Triggers {
		switch {
		case t.Kind == config.KindKafka, t.Kind == config.KindCDC:
			return true
		case t.HTTP != nil && t.HTTP.AsyncTopic != "", t.Storage != nil && t.Storage.AsyncTopic != "":
			return true
		}
	}
	for _, fn := range cfg.Functions {
		if fn.DeadLetter.Topic != "" {
			return true
		}
	}
	return false
}

// startEmbedded starts the in-process dev broker when the file asks for
// it, or, in a process started by a reload, defers it (see deferred).
func (k *kafkaParts) startEmbedded(cfg *config.File, s *server) error {
	if !cfg.Kafka.Embedded {
		return nil
	}
	k.addr = cfg.Kafka.Brokers[0]
	if ho := s.handoff; ho != nil {
		k.deferred = true
		if _, port, err := net.SplitHostPort(k.addr); err == nil && port == "0" && ho.EmbeddedAddr != "" {
			k.addr = ho.EmbeddedAddr // the port the previous process was given stays the broker's
		}
		s.log.Log().Str("addr", k.addr).Int("previous_pid", ho.ParentPID).
			Msg("embedded Kafka broker: starts empty once the previous process has exited; Kafka triggers join then")
		return nil
	}
	e, err := k.listenEmbedded(cfg, s)
	if err != nil {
		return fmt.Errorf("%s: cannot start the embedded broker: %w", cfg.Where("kafka.embedded"), err)
	}
	k.embedded = e
	k.addr = e.Addr()
	return nil
}

func (k *kafkaParts) listenEmbedded(cfg *config.File, s *server) (*streams.Embedded, error) {
	// StartEmbedded tags its lines with their component itself.
	e, err := streams.StartEmbedded(k.addr, cfg.Kafka.EmbeddedPartitions, s.log)
	if err != nil {
		return nil, err
	}
	s.log.Log().Str("addr", e.Addr()).Int("partitions", cfg.Kafka.EmbeddedPartitions).
		Msg("embedded Kafka broker (in memory, for development) listening")
	return e, nil
}

// embeddedAddr is the embedded broker's address, "" without one.
func (k *kafkaParts) embeddedAddr() string { return k.addr }

func (k *kafkaParts) brokers(cfg *config.File) []string {
	if cfg.Kafka.Embedded {
		return []string{k.addr}
	}
	return cfg.Kafka.Brokers
}

// newPublisher creates the producer of async topics and dead-letter topics.
func (k *kafkaParts) newPublisher(cfg *config.File, s *server) error {
	if !usesKafka(cfg) {
		return nil
	}
	k.publisher = &kafkaPublisher{ready: make(chan struct{})}
	if k.deferred {
		return nil
	}
	p, err := k.connectPublisher(cfg, s)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Where("kafka.brokers"), err)
	}
	k.publisher.set(p, nil)
	return nil
}

func (k *kafkaParts) connectPublisher(cfg *config.File, s *server) (*streams.Publisher, error) {
	log := *s.log
	return streams.NewPublisher(streams.PublisherConfig{Brokers: k.brokers(cfg)}, streams.Deps{Logger: &log, Metrics: k.newSet(), ClientMetrics: k.clientMetrics()})
}

// embeddedRetry bounds how long a deferred embedded broker retries its
// address after the previous process exited (the kernel may hold it for a
// moment).
const embeddedRetry = 10 * time.Second

// startDeferred starts the deferred embedded broker, the producer and the
// triggers, once the previous process has exited; nothing when not
// deferred. It never fails the process: a broker that cannot start leaves
// Kafka down, logged, and HTTP serving.
func (k *kafkaParts) startDeferred(s *server) {
	if !k.deferred {
		return
	}
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel, k.done = cancel, make(chan struct{})
	k.mu.Unlock()
	defer close(k.done)
	defer cancel()
	cfg := s.cfg
	var e *streams.Embedded
	var err error
	for wait, deadline := 50*time.Millisecond, time.Now().Add(embeddedRetry); ; wait = min(2*wait, time.Second) {
		if e, err = k.listenEmbedded(cfg, s); err == nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			k.publisher.set(nil, ctx.Err())
			return
		case <-time.After(wait):
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: cannot start the embedded broker after the reload: %w", cfg.Where("kafka.embedded"), err)
		s.log.Error().Err(err).Msg("Kafka triggers, async topics and dead-letter topics stay down; HTTP serves on")
		k.publisher.set(nil, err)
		return
	}
	k.embedded = e
	if k.publisher != nil {
		p, err := k.connectPublisher(cfg, s)
		if err != nil {
			s.log.Error().Err(err).Msg("cannot create the Kafka producer after the reload")
		}
		k.publisher.set(p, err)
	}
	if err := k.startTriggers(ctx); err != nil {
		s.log.Error().Err(err).Msg("cannot start the Kafka triggers after the reload")
		return
	}
	s.log.Log().Int("triggers", len(k.triggers)).Msg("reload: embedded broker and Kafka triggers started")
}

// stopDeferred stops a deferred start in progress and waits for it, or
// keeps it from starting; it must be called before the parts are closed.
func (k *kafkaParts) stopDeferred() {
	if !k.deferred {
		return
	}
	k.mu.Lock()
	k.stopped = true
	cancel, done := k.cancel, k.done
	k.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (k *kafkaParts) clientMetrics() *streams.ClientMetrics {
	k.kmOnce.Do(func() { k.km = streams.NewClientMetrics(k.newSet()) })
	return k.km
}

func (k *kafkaParts) newSet() *metrics.Set {
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	k.sets = append(k.sets, set)
	return set
}

// decoderFor returns the decoder of a Kafka trigger's format.
func decoderFor(format string) formats.Decoder {
	switch format {
	case config.FormatS3:
		return formats.S3{}
	case config.FormatCDC:
		return formats.Debezium{}
	case config.FormatCloudEvents:
		return formats.CloudEvents{}
	}
	return formats.Raw{}
}

// kafkaDecoder is the decoder of fn's first Kafka trigger, so that `sluice
// invoke --as kafka` builds the envelope that trigger would; raw without one.
func kafkaDecoder(cfg *config.File, fn *config.Function) formats.Decoder {
	for _, t := range cfg.Triggers {
		if t.Function == fn.Name && t.Kind == config.KindKafka {
			return decoderFor(t.Kafka.Format)
		}
	}
	return formats.Raw{}
}

// buildTriggers creates a stream trigger per kafka and cdc trigger of the
// file, and one per async topic (format cloudevents, reading back what the
// gateway published).
func (k *kafkaParts) buildTriggers(cfg *config.File, s *server) error {
	var errs []error
	add := func(t *config.Trigger, sc streams.Config) {
		fn := s.byFn[t.Function]
		sc.Brokers = k.brokers(cfg)
		if dl := cfg.Function(t.Function).DeadLetter.Topic; dl != "" {
			sc.DeadLetterTopic = dl
		}
		match, err := compileFilter(cfg, t)
		if err != nil {
			errs = append(errs, err)
			return
		}
		sc.Filter = match
		sc.PoisonEvents = poisonEvents()
		log := *s.log
		tr, err := streams.NewTrigger(sc, fn, streams.Deps{Logger: &log, Metrics: k.newSet(), Tracer: s.tracer, ClientMetrics: k.clientMetrics()})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cfg.At(t.Pos), err))
			return
		}
		k.triggers = append(k.triggers, tr)
		kind, _, _ := strings.Cut(sc.Name, ":")
		s.status.AddTrigger(gateway.StatusTrigger{Name: sc.Name, Kind: kind, Function: t.Function, Group: sc.Group})
	}
	asyncTopics := map[[2]string]*config.Trigger{}
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		switch t.Kind {
		case config.KindKafka:
			add(t, streams.Config{
				Name: "kafka:" + t.Kafka.Group, Topics: t.Kafka.Topics, Group: t.Kafka.Group,
				Start: streams.Start(t.Kafka.Start), Ordering: streams.Ordering(t.Kafka.Ordering),
				Decoder: decoderFor(t.Kafka.Format),
			})
		case config.KindCDC:
			add(t, streams.Config{
				Name: "cdc:" + t.CDC.Group, Topics: t.CDC.Topics, Group: t.CDC.Group,
				Start: streams.Start(t.CDC.Start), Ordering: streams.Ordering(t.CDC.Ordering),
				Decoder: formats.Debezium{},
			})
		case config.KindHTTP:
			if t.HTTP.AsyncTopic != "" {
				asyncTopics[[2]string{t.HTTP.AsyncTopic, t.Function}] = t
			}
		case config.KindStorage:
			if t.Storage.AsyncTopic != "" {
				asyncTopics[[2]string{t.Storage.AsyncTopic, t.Function}] = t
			}
		}
	}
	if err := k.buildScheduler(cfg, s); err != nil {
		errs = append(errs, err)
	}
	keys := make([][2]string, 0, len(asyncTopics))
	for key := range asyncTopics {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, key := range keys {
		topic, fn := key[0], key[1]
		group := "sluice-async-" + topic + "-" + fn
		add(asyncTopics[key], streams.Config{
			Name: "async:" + topic, Topics: []string{topic}, Group: group,
			Start: streams.StartEarliest, Ordering: streams.OrderingNone, Decoder: formats.CloudEvents{},
		})
	}
	return errors.Join(errs...)
}

// startTriggers joins every consumer group; a cluster that does not answer
// within a minute, or ctx ending, fails the start. With a deferred
// embedded broker it starts nothing: startDeferred does, later.
func (k *kafkaParts) startTriggers(ctx context.Context) error {
	if k.deferred && k.embedded == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, t := range k.triggers {
		if err := t.Start(ctx); err != nil {
			return fmt.Errorf("cannot start Kafka trigger %s: %w", t.Name(), err)
		}
	}
	if k.scheduler != nil {
		if err := k.scheduler.Start(ctx); err != nil {
			return fmt.Errorf("cannot start the scheduler: %w", err)
		}
	}
	return nil
}

// closeTriggers finishes in-flight batches, commits and leaves the groups.
func (k *kafkaParts) closeTriggers(ctx context.Context) error {
	var errs []error
	if k.scheduler != nil {
		// Before the functions close: a tick submitted to a closed function
		// would be left to the next owner.
		if err := k.scheduler.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range k.triggers {
		if err := t.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeRest closes the producer and the embedded broker, after the
// functions have drained (their dead letters may still be produced).
func (k *kafkaParts) closeRest() {
	if k.publisher != nil {
		k.publisher.Close()
	}
	if k.embedded != nil {
		k.embedded.Close()
	}
	for _, set := range k.sets {
		metrics.UnregisterSet(set, true)
	}
}

// buildScheduler gathers every schedule trigger into one scheduler. With
// Kafka configured, ticks are coordinated through it (once per tick across
// every instance on the cluster); without, each instance fires every tick.
func (k *kafkaParts) buildScheduler(cfg *config.File, s *server) error {
	var specs []scheduler.Spec
	var where []string
	count := map[string]int{}
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		if t.Kind != config.KindSchedule {
			continue
		}
		count[t.Function]++
		name := t.Schedule.Name
		if name == "" {
			name = fmt.Sprintf("%s-%d", t.Function, count[t.Function])
		}
		match, err := compileFilter(cfg, t)
		if err != nil {
			return err
		}
		spec := schedule.Config{Cron: t.Schedule.Cron, Rate: t.Schedule.Rate}
		if spec.Cron != "" {
			// The loader defaults the zone to UTC for every schedule, and
			// refuses one written beside a rate.
			spec.Timezone = t.Schedule.Timezone
		}
		specs = append(specs, scheduler.Spec{
			Name:       name,
			Spec:       spec,
			Payload:    t.Schedule.Payload,
			SkipMissed: !t.Schedule.CatchUp,
			Function:   s.byFn[t.Function],
			Filter:     match,
		})
		where = append(where, cfg.At(t.Pos))
	}
	if len(specs) == 0 {
		return nil
	}
	sc := scheduler.Config{Schedules: specs}
	if len(cfg.Kafka.Brokers) > 0 {
		sc.Brokers = k.brokers(cfg)
	} else {
		s.log.Warn().Int("schedules", len(specs)).Msg("no Kafka configured: every instance fires every schedule tick on its own")
	}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(where, ", "), err)
	}
	log := *s.log
	sched, err := scheduler.New(sc, streams.Deps{Logger: &log, Metrics: k.newSet(), ClientMetrics: k.clientMetrics()})
	if err != nil {
		return err
	}
	k.scheduler = sched
	return nil
}

// kafkaPublisher is what async routes and dead-letter topics publish
// through: the Kafka producer once it exists. In a process started by a
// reload with the embedded broker it exists only once that broker is back;
// until then a publish waits, up to its context.
type kafkaPublisher struct {
	ready chan struct{} // closed by set
	once  sync.Once
	p     *streams.Publisher
	err   error
}

// set makes p (or err, when there will be no producer) the publisher's.
func (k *kafkaPublisher) set(p *streams.Publisher, err error) {
	k.once.Do(func() {
		k.p, k.err = p, err
		if p == nil && err == nil {
			k.err = errors.New("kafka: no producer")
		}
		close(k.ready)
	})
}

func (k *kafkaPublisher) get(ctx context.Context) (*streams.Publisher, error) {
	select {
	case <-k.ready:
		return k.p, k.err
	case <-ctx.Done():
		return nil, fmt.Errorf("kafka: the embedded broker is not back yet after the reload: %w", ctx.Err())
	}
}

// Publish implements gateway.Publisher.
func (k *kafkaPublisher) Publish(ctx context.Context, topic string, ev *plugins.Event) error {
	p, err := k.get(ctx)
	if err != nil {
		return err
	}
	return p.Publish(ctx, topic, ev)
}

// DeadLetterTo returns the dead letter writing to topic.
func (k *kafkaPublisher) DeadLetterTo(topic string) invoker.DeadLetter {
	return deadLetterTopic{k: k, topic: topic}
}

// Close closes the producer, if there is one.
func (k *kafkaPublisher) Close() {
	select {
	case <-k.ready:
		if k.p != nil {
			k.p.Close()
		}
	default:
		k.set(nil, errors.New("kafka: producer closed"))
	}
}

type deadLetterTopic struct {
	k     *kafkaPublisher
	topic string
}

func (d deadLetterTopic) DeadLetter(ctx context.Context, r *invoker.DeadLetterRecord) error {
	p, err := d.k.get(ctx)
	if err != nil {
		return err
	}
	return p.DeadLetterTo(d.topic).DeadLetter(ctx, r)
}

// poisonEventsEnv turns on the Kafka triggers' PoisonEvents debug option:
// a Go function that keeps its *plugins.Event after returning then reads
// plugins.Poisoned instead of another record.
const poisonEventsEnv = "SLUICE_DEBUG_POISON_EVENTS"

func poisonEvents() bool { return os.Getenv(poisonEventsEnv) == "1" }
