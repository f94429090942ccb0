package invoker

import (
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// fnMetrics are one function's series, all in one metrics.Set so that a
// Function that goes away takes its series with it.
type fnMetrics struct {
	set        *metrics.Set
	registered bool
	name       string

	mu          sync.RWMutex
	invocations map[string]map[string]*metrics.Counter // trigger -> outcome -> counter
	duration    *metrics.PrometheusHistogram
	batchSize   *metrics.PrometheusHistogram
	billed      *metrics.FloatCounter
	gbSeconds   *metrics.FloatCounter
	memoryGB    float64
	throttles   *metrics.Counter
	deadLetters *metrics.Counter
	retries     *metrics.Counter
	bisects     *metrics.Counter
}

var batchBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

func newFnMetrics(set *metrics.Set, name string, f *Function) *fnMetrics {
	m := &fnMetrics{set: set, name: name}
	if set == nil {
		m.set = metrics.NewSet()
		metrics.RegisterSet(m.set)
		m.registered = true
	}
	l := fmt.Sprintf(`{function=%q}`, name)
	m.duration = m.set.GetOrCreatePrometheusHistogram("sluice_invocation_duration_seconds" + l)
	m.batchSize = m.set.GetOrCreatePrometheusHistogramExt("sluice_batch_size"+l, batchBuckets)
	m.billed = m.set.GetOrCreateFloatCounter("sluice_billed_seconds_total" + l)
	m.gbSeconds = m.set.GetOrCreateFloatCounter("sluice_gb_seconds_total" + l)
	m.memoryGB = float64(f.cfg.Memory) / (1 << 30)
	m.throttles = m.set.GetOrCreateCounter("sluice_throttles_total" + l)
	m.deadLetters = m.set.GetOrCreateCounter("sluice_dead_letters_total" + l)
	m.retries = m.set.GetOrCreateCounter("sluice_retries_total" + l)
	m.bisects = m.set.GetOrCreateCounter("sluice_bisects_total" + l)
	m.set.GetOrCreateGauge("sluice_queue_depth"+l, func() float64 { return float64(f.depth.Load()) })
	m.set.GetOrCreateGauge("sluice_concurrent_executions"+l, func() float64 { return float64(f.running.Load()) })
	return m
}

// invocation returns the counter of (trigger, outcome). Nested maps keyed
// by the strings themselves look up without allocating, unlike a composite
// key boxed into a sync.Map.
func (m *fnMetrics) invocation(trigger, outcome string) *metrics.Counter {
	m.mu.RLock()
	c := m.invocations[trigger][outcome]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	c = m.set.GetOrCreateCounter(fmt.Sprintf(`sluice_invocations_total{function=%q,trigger=%q,outcome=%q}`, m.name, trigger, outcome))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.invocations == nil {
		m.invocations = map[string]map[string]*metrics.Counter{}
	}
	if m.invocations[trigger] == nil {
		m.invocations[trigger] = map[string]*metrics.Counter{}
	}
	m.invocations[trigger][outcome] = c
	return c
}

// observeBatch records a batch that took d and billed billedMS over its
// events (billItems), times the function's memory for GB-seconds.
func (m *fnMetrics) observeBatch(size int, d time.Duration, billedMS int64) {
	m.duration.Update(d.Seconds())
	m.batchSize.Update(float64(size))
	billed := float64(billedMS) / 1000
	m.billed.Add(billed)
	m.gbSeconds.Add(billed * m.memoryGB)
}

func (m *fnMetrics) unregister() {
	if m.registered {
		metrics.UnregisterSet(m.set, true)
	}
}
