package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// ClientOpts are passed to kgo.NewClient after Sluice's own options.
	ClientOpts []kgo.Opt
}

// Publisher writes events to Kafka topics durably, for asynchronous HTTP
// invocations with async_topic: a trigger with format cloudevents on the
// topic reads back the same envelope, on any instance. It is safe for
// concurrent use.
type Publisher struct {
	cl     *kgo.Client
	log    zerolog.Logger
	ok     *metrics.Counter
	failed *metrics.Counter
}

// NewPublisher returns a Publisher with an idempotent producer that waits
// for all in-sync replicas (acks=all). It connects lazily, on the first
// Publish. Topics are created on first use where the cluster allows it (the
// embedded broker does).
func NewPublisher(cfg PublisherConfig, deps Deps) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka.brokers: at least one broker is required")
	}
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	log = log.With().Str("component", "publisher").Logger()
	set := deps.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(kgoLogger{log: log}),
		deps.ClientMetrics.Opt(),
	}
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create Kafka producer: %w", err)
	}
	return &Publisher{
		cl:     cl,
		log:    log,
		ok:     set.GetOrCreateCounter(`sluice_kafka_published_total{outcome="ok"}`),
		failed: set.GetOrCreateCounter(`sluice_kafka_published_total{outcome="error"}`),
	}, nil
}

// Publish writes ev to topic as a structured-mode CloudEvent (header
// content-type: application/cloudevents+json), keyed by its partition key
// or else its id, and returns once the broker acknowledged it, or the
// produce error (ctx's error when ctx ended first: the event may or may not
// have been written).
func (p *Publisher) Publish(ctx context.Context, topic string, ev *plugins.Event) error {
	key := ev.PartitionKey
	if key == "" {
		key = ev.ID
	}
	r := &kgo.Record{
		Topic:   topic,
		Key:     []byte(key),
		Value:   ev.AppendJSON(make([]byte, 0, ev.Size())),
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(formats.CloudEventsContentType)}},
	}
	r.Headers = appendTraceparent(r.Headers, ev.TraceParent)
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		p.failed.Inc()
		return fmt.Errorf("cannot publish event %s to topic %q: %w", ev.ID, topic, err)
	}
	p.ok.Inc()
	return nil
}

// Close flushes nothing (Publish is synchronous) and closes the client.
func (p *Publisher) Close() { p.cl.Close() }

// DeadLetter implements invoker.DeadLetter on the publisher: events that
// finally failed outside a Kafka trigger (async HTTP, storage webhooks,
// schedules, the invoke API) are written to a function's dead_letter.topic
// as structured CloudEvents, with the same sluice-* headers a Kafka trigger's
// dead letters carry.
type DeadLetter struct {
	p     *Publisher
	topic string
}

var _ invoker.DeadLetter = (*DeadLetter)(nil)

// DeadLetterTo returns the dead letter writing to topic through p.
func (p *Publisher) DeadLetterTo(topic string) *DeadLetter { return &DeadLetter{p: p, topic: topic} }

// DeadLetter produces r's event (acks=all) and returns once the broker
// acknowledged it.
func (d *DeadLetter) DeadLetter(ctx context.Context, r *invoker.DeadLetterRecord) error {
	ev := r.Event
	key := ev.PartitionKey
	if key == "" {
		key = ev.ID
	}
	rec := &kgo.Record{
		Topic: d.topic,
		Key:   []byte(key),
		Value: ev.AppendJSON(make([]byte, 0, ev.Size())),
		Headers: []kgo.RecordHeader{
			{Key: "content-type", Value: []byte(formats.CloudEventsContentType)},
			{Key: HeaderError, Value: []byte(r.Err.Error())},
			{Key: HeaderFunction, Value: []byte(r.Function)},
			{Key: HeaderAttempts, Value: []byte(strconv.Itoa(r.Attempts))},
			{Key: HeaderTrigger, Value: []byte(r.Trigger)},
		},
	}
	rec.Headers = appendTraceparent(rec.Headers, ev.TraceParent)
	if err := d.p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		d.p.failed.Inc()
		return fmt.Errorf("cannot write dead letter of event %s to topic %q: %w", ev.ID, d.topic, err)
	}
	d.p.ok.Inc()
	return nil
}
