package streams

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// trigMetrics are one trigger's series. The function's own series
// (sluice_invocations_total, sluice_dead_letters_total...) stay in the
// invoker's set; dead letters a trigger writes are added to it.
type trigMetrics struct {
	set *metrics.Set

	records          *metrics.Counter
	filtered         *metrics.Counter
	tombstones       *metrics.Counter
	poison           *metrics.Counter
	dropped          *metrics.Counter
	retries          *metrics.Counter
	bisects          *metrics.Counter
	deadLetters      *metrics.Counter
	deadLetterErrors *metrics.Counter
	fetchErrors      *metrics.Counter
	commitErrors     *metrics.Counter
	pauses           *metrics.Counter
	names            []string
}

func newTrigMetrics(set *metrics.Set, t *Trigger) *trigMetrics {
	m := &trigMetrics{set: set}
	l := fmt.Sprintf(`{trigger=%q}`, t.cfg.Name)
	counter := func(name string) *metrics.Counter {
		m.names = append(m.names, name+l)
		return set.GetOrCreateCounter(name + l)
	}
	m.records = counter("sluice_kafka_records_total")
	m.filtered = counter("sluice_filtered_total")
	m.tombstones = counter("sluice_cdc_tombstones_total")
	m.poison = counter("sluice_kafka_poison_records_total")
	m.dropped = counter("sluice_kafka_dropped_records_total")
	m.retries = counter("sluice_kafka_retries_total")
	m.bisects = counter("sluice_kafka_bisects_total")
	m.deadLetters = counter("sluice_kafka_dead_letters_total")
	m.deadLetterErrors = counter("sluice_kafka_dead_letter_errors_total")
	m.fetchErrors = counter("sluice_kafka_fetch_errors_total")
	m.commitErrors = counter("sluice_kafka_commit_errors_total")
	m.pauses = counter("sluice_kafka_pauses_total")
	m.names = append(m.names, "sluice_kafka_buffered_records"+l, "sluice_kafka_paused"+l)
	set.GetOrCreateGauge("sluice_kafka_buffered_records"+l, func() float64 { return float64(t.stats.buffered.Load()) })
	set.GetOrCreateGauge("sluice_kafka_paused"+l, func() float64 {
		if t.stats.paused.Load() {
			return 1
		}
		return 0
	})
	return m
}

// lagGauge registers sluice_kafka_lag_records for one partition: the high
// watermark of its last fetch minus its commit watermark.
func (m *trigMetrics) lagGauge(group, topic string, part int32, p *partition) string {
	name := fmt.Sprintf(`sluice_kafka_lag_records{group=%q,topic=%q,partition="%d"}`, group, topic, part)
	m.set.GetOrCreateGauge(name, func() float64 {
		hw, wm := p.hw.Load(), p.wm.Load()
		if hw < 0 || wm < 0 || hw < wm {
			return 0
		}
		return float64(hw - wm)
	})
	return name
}

// unregister removes the trigger's series from the set, so that a trigger
// replaced by a reload does not leave stale ones behind.
func (m *trigMetrics) unregister() {
	for _, n := range m.names {
		m.set.UnregisterMetric(n)
	}
}
