package streams

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientMetrics are the Kafka client's own series, what franz-go's
// kprom and kvictoria plugins export, named after Sluice's families:
// connections, bytes and errors, request latency and throttling by broker
// (label node: the broker's node id, or seed_N for a seed address), and
// records and bytes fetched and produced by topic. Those are the only
// labels, so the series are bounded by the cluster's brokers and the
// configured topics. Every client of one configuration (triggers, the
// publisher, the scheduler) shares one ClientMetrics, and its series add up
// what they all did.
//
// Pass it to a client with Opt. A nil *ClientMetrics counts nothing. It is
// safe for concurrent use.
type ClientMetrics struct {
	set    *metrics.Set
	nodes  sync.Map // int32 -> *nodeMetrics
	topics sync.Map // string -> *topicMetrics
}

type nodeMetrics struct {
	connects, connectErrors, disconnects *metrics.Counter
	writeBytes, writeErrors              *metrics.Counter
	readBytes, readErrors                *metrics.Counter
	requestDuration, throttle            *metrics.PrometheusHistogram
}

type topicMetrics struct {
	fetchRecords, fetchBytes     *metrics.Counter
	produceRecords, produceBytes *metrics.Counter
}

// NewClientMetrics returns client metrics whose series go to set.
func NewClientMetrics(set *metrics.Set) *ClientMetrics {
	return &ClientMetrics{set: set}
}

// Opt is the kgo option that hooks m into a client: kgo.WithHooks(m), or
// no hook at all for a nil m.
func (m *ClientMetrics) Opt() kgo.Opt {
	if m == nil {
		return kgo.WithHooks()
	}
	return kgo.WithHooks(m)
}

var (
	_ kgo.HookBrokerConnect       = (*ClientMetrics)(nil)
	_ kgo.HookBrokerDisconnect    = (*ClientMetrics)(nil)
	_ kgo.HookBrokerWrite         = (*ClientMetrics)(nil)
	_ kgo.HookBrokerRead          = (*ClientMetrics)(nil)
	_ kgo.HookBrokerE2E           = (*ClientMetrics)(nil)
	_ kgo.HookBrokerThrottle      = (*ClientMetrics)(nil)
	_ kgo.HookFetchBatchRead      = (*ClientMetrics)(nil)
	_ kgo.HookProduceBatchWritten = (*ClientMetrics)(nil)
)

// node returns the series of one broker, made on its first use: the hooks
// run per request, so names are not formatted each time.
func (m *ClientMetrics) node(meta kgo.BrokerMetadata) *nodeMetrics {
	if n, ok := m.nodes.Load(meta.NodeID); ok {
		return n.(*nodeMetrics)
	}
	l := `{node="` + kgo.NodeName(meta.NodeID) + `"}`
	n := &nodeMetrics{
		connects:        m.set.GetOrCreateCounter("sluice_kafka_connects_total" + l),
		connectErrors:   m.set.GetOrCreateCounter("sluice_kafka_connect_errors_total" + l),
		disconnects:     m.set.GetOrCreateCounter("sluice_kafka_disconnects_total" + l),
		writeBytes:      m.set.GetOrCreateCounter("sluice_kafka_write_bytes_total" + l),
		writeErrors:     m.set.GetOrCreateCounter("sluice_kafka_write_errors_total" + l),
		readBytes:       m.set.GetOrCreateCounter("sluice_kafka_read_bytes_total" + l),
		readErrors:      m.set.GetOrCreateCounter("sluice_kafka_read_errors_total" + l),
		requestDuration: m.set.GetOrCreatePrometheusHistogram("sluice_kafka_request_duration_seconds" + l),
		throttle:        m.set.GetOrCreatePrometheusHistogram("sluice_kafka_throttle_seconds" + l),
	}
	actual, _ := m.nodes.LoadOrStore(meta.NodeID, n)
	return actual.(*nodeMetrics)
}

func (m *ClientMetrics) topic(name string) *topicMetrics {
	if t, ok := m.topics.Load(name); ok {
		return t.(*topicMetrics)
	}
	l := fmt.Sprintf(`{topic=%q}`, name)
	t := &topicMetrics{
		fetchRecords:   m.set.GetOrCreateCounter("sluice_kafka_fetch_records_total" + l),
		fetchBytes:     m.set.GetOrCreateCounter("sluice_kafka_fetch_bytes_total" + l),
		produceRecords: m.set.GetOrCreateCounter("sluice_kafka_produce_records_total" + l),
		produceBytes:   m.set.GetOrCreateCounter("sluice_kafka_produce_bytes_total" + l),
	}
	actual, _ := m.topics.LoadOrStore(name, t)
	return actual.(*topicMetrics)
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (m *ClientMetrics) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	n := m.node(meta)
	if err != nil {
		n.connectErrors.Inc()
		return
	}
	n.connects.Inc()
}

// OnBrokerDisconnect implements kgo.HookBrokerDisconnect.
func (m *ClientMetrics) OnBrokerDisconnect(meta kgo.BrokerMetadata, _ net.Conn) {
	m.node(meta).disconnects.Inc()
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (m *ClientMetrics) OnBrokerWrite(meta kgo.BrokerMetadata, _ int16, bytesWritten int, _, _ time.Duration, err error) {
	n := m.node(meta)
	n.writeBytes.Add(bytesWritten)
	if err != nil {
		n.writeErrors.Inc()
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (m *ClientMetrics) OnBrokerRead(meta kgo.BrokerMetadata, _ int16, bytesRead int, _, _ time.Duration, err error) {
	n := m.node(meta)
	n.readBytes.Add(bytesRead)
	if err != nil {
		n.readErrors.Inc()
	}
}

// OnBrokerE2E implements kgo.HookBrokerE2E: the time from writing a
// request to having read its response, for requests that got one.
func (m *ClientMetrics) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	if e2e.Err() != nil {
		return // counted by the read or write hook; a failed request has no latency
	}
	m.node(meta).requestDuration.Update(e2e.DurationE2E().Seconds())
}

// OnBrokerThrottle implements kgo.HookBrokerThrottle.
func (m *ClientMetrics) OnBrokerThrottle(meta kgo.BrokerMetadata, interval time.Duration, _ bool) {
	m.node(meta).throttle.Update(interval.Seconds())
}

// OnFetchBatchRead implements kgo.HookFetchBatchRead.
func (m *ClientMetrics) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, bm kgo.FetchBatchMetrics) {
	t := m.topic(topic)
	t.fetchRecords.Add(bm.NumRecords)
	t.fetchBytes.Add(bm.UncompressedBytes)
}

// OnProduceBatchWritten implements kgo.HookProduceBatchWritten.
func (m *ClientMetrics) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, _ int32, bm kgo.ProduceBatchMetrics) {
	t := m.topic(topic)
	t.produceRecords.Add(bm.NumRecords)
	t.produceBytes.Add(bm.UncompressedBytes)
}
