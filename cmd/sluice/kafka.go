package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/streams"
	"github.com/sluicehq/sluice/streams/formats"
	"github.com/sluicehq/sluice/streams/schedule"
)

// kafkaParts are the Kafka pieces of a running gateway, in start order.
type kafkaParts struct {
	embedded  *streams.Embedded
	publisher *streams.Publisher
	triggers  []*streams.Trigger
	scheduler *streams.Scheduler
	sets      []*metrics.Set
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

// startEmbedded starts the in-process dev broker when the file asks for it.
func (k *kafkaParts) startEmbedded(cfg *config.File, s *server) error {
	if !cfg.Kafka.Embedded {
		return nil
	}
	log := s.log.With().Str("component", "embedded-broker").Logger()
	e, err := streams.StartEmbedded(cfg.Kafka.Brokers[0], cfg.Kafka.EmbeddedPartitions, &log)
	if err != nil {
		return fmt.Errorf("%s: cannot start the embedded broker: %w", cfg.Where("kafka.embedded"), err)
	}
	k.embedded = e
	s.log.Log().Str("addr", e.Addr()).Int("partitions", cfg.Kafka.EmbeddedPartitions).
		Msg("embedded Kafka broker (in memory, for development) listening")
	return nil
}

func (k *kafkaParts) brokers(cfg *config.File) []string {
	if k.embedded != nil {
		return []string{k.embedded.Addr()}
	}
	return cfg.Kafka.Brokers
}

// newPublisher creates the producer of async topics and dead-letter topics.
func (k *kafkaParts) newPublisher(cfg *config.File, s *server) error {
	if !usesKafka(cfg) {
		return nil
	}
	log := *s.log
	set := k.newSet()
	p, err := streams.NewPublisher(streams.PublisherConfig{Brokers: k.brokers(cfg)}, streams.Deps{Logger: &log, Metrics: set})
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Where("kafka.brokers"), err)
	}
	k.publisher = p
	return nil
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
		log := *s.log
		tr, err := streams.NewTrigger(sc, fn, streams.Deps{Logger: &log, Metrics: k.newSet()})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cfg.At(t.Pos), err))
			return
		}
		k.triggers = append(k.triggers, tr)
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
// within a minute fails the start.
func (k *kafkaParts) startTriggers() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	var specs []streams.ScheduleSpec
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
			spec.Timezone = t.Schedule.Timezone // a rate is the same in every zone
		}
		specs = append(specs, streams.ScheduleSpec{
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
	sc := streams.SchedulerConfig{Schedules: specs}
	if len(cfg.Kafka.Brokers) > 0 {
		sc.Brokers = k.brokers(cfg)
	} else {
		s.log.Warn().Int("schedules", len(specs)).Msg("no Kafka configured: every instance fires every schedule tick on its own")
	}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(where, ", "), err)
	}
	log := *s.log
	sched, err := streams.NewScheduler(sc, streams.Deps{Logger: &log, Metrics: k.newSet()})
	if err != nil {
		return err
	}
	k.scheduler = sched
	return nil
}
