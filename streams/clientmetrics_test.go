package streams

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
)

// TestClientMetrics produces through a Publisher and consumes through a
// Trigger sharing one ClientMetrics, and checks that the client series
// moved and that /metrics, as the gateway writes it, parses with
// Prometheus' own parser with every client family typed and documented.
func TestClientMetrics(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 2)
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	t.Cleanup(func() { metrics.UnregisterSet(set, true) })
	km := NewClientMetrics(set)
	log := testLogger(t)

	pub, err := NewPublisher(PublisherConfig{Brokers: e.seeds}, Deps{Logger: &log, ClientMetrics: km})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		ev := &plugins.Event{ID: "ev-" + strconv.Itoa(i), Source: "test", Type: "t", DataContentType: "application/json", Data: []byte(`{"i":` + strconv.Itoa(i) + `}`)}
		if err := pub.Publish(ctx, topic, ev); err != nil {
			t.Fatal(err)
		}
	}

	rec := newRecorder()
	fn, _ := newFunction(t, "metered", invoker.Config{}, builtinWorker("metered", rec.handler("a")))
	cfg := Config{Name: "metered", Topics: []string{topic}, Group: topic, Brokers: e.seeds, CommitInterval: 50 * time.Millisecond,
		ClientOpts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}}
	tr, err := NewTrigger(cfg, fn, Deps{Logger: &log, Metrics: metrics.NewSet(), ClientMetrics: km})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	})
	waitFor(t, 30*time.Second, "every record to be consumed", func() bool { return rec.successes() == n })

	fams := exposition(t)
	sum := func(name string) float64 {
		var v float64
		for _, m := range fams[name].GetMetric() {
			switch {
			case m.Counter != nil:
				v += m.Counter.GetValue()
			case m.Histogram != nil:
				v += float64(m.Histogram.GetSampleCount())
			}
		}
		return v
	}
	for _, tt := range []struct {
		family string
		typ    dto.MetricType
		min    float64
	}{
		{"sluice_kafka_connects_total", dto.MetricType_COUNTER, 2},
		{"sluice_kafka_write_bytes_total", dto.MetricType_COUNTER, 1},
		{"sluice_kafka_read_bytes_total", dto.MetricType_COUNTER, 1},
		{"sluice_kafka_request_duration_seconds", dto.MetricType_HISTOGRAM, 1},
		{"sluice_kafka_produce_records_total", dto.MetricType_COUNTER, n},
		{"sluice_kafka_produce_bytes_total", dto.MetricType_COUNTER, 1},
		{"sluice_kafka_fetch_records_total", dto.MetricType_COUNTER, n},
		{"sluice_kafka_fetch_bytes_total", dto.MetricType_COUNTER, 1},
	} {
		f := fams[tt.family]
		if f == nil {
			t.Errorf("no family %s", tt.family)
			continue
		}
		if f.GetType() != tt.typ {
			t.Errorf("%s is a %v, want %v", tt.family, f.GetType(), tt.typ)
		}
		if got := sum(tt.family); got < tt.min {
			t.Errorf("%s = %v, want at least %v", tt.family, got, tt.min)
		}
	}
	// The only labels are the broker's node and the topic.
	for _, m := range fams["sluice_kafka_fetch_records_total"].GetMetric() {
		if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "topic" || m.GetLabel()[0].GetValue() != topic {
			t.Errorf("fetch series labelled %v, want topic=%s alone", m.GetLabel(), topic)
		}
	}
	for _, m := range fams["sluice_kafka_connects_total"].GetMetric() {
		if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "node" {
			t.Errorf("connect series labelled %v, want node alone", m.GetLabel())
		}
	}
}

// exposition parses the process's /metrics text, failing on any family
// left untyped or without help.
func exposition(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	var b bytes.Buffer
	gateway.WriteMetrics(&b)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("Prometheus' parser rejects the exposition: %v", err)
	}
	for name, f := range fams {
		if f.GetType() == dto.MetricType_UNTYPED || f.GetHelp() == "" {
			t.Errorf("family %s: type %v, help %q", name, f.GetType(), f.GetHelp())
		}
	}
	return fams
}

// TestClientMetricsNil checks that a nil ClientMetrics hooks nothing.
func TestClientMetricsNil(t *testing.T) {
	var km *ClientMetrics
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), km.Opt())
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}
