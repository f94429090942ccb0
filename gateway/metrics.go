package gateway

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// routeMetrics are the series of one route: requests by status code and
// their duration. Counters are created on first use and cached by code, so
// counting a request formats nothing.
type routeMetrics struct {
	set      *metrics.Set
	label    string // route="..."
	codes    [600]atomic.Pointer[metrics.Counter]
	duration *metrics.PrometheusHistogram
}

// unmatchedRoute labels requests no route took: 404, 405, and requests
// refused before routing (400, 413, 431).
const unmatchedRoute = "none"

func newRouteMetrics(set *metrics.Set, route string) *routeMetrics {
	m := &routeMetrics{set: set, label: fmt.Sprintf("route=%q", route)}
	m.duration = set.GetOrCreatePrometheusHistogram("sluice_http_request_duration_seconds{" + m.label + "}")
	return m
}

func (m *routeMetrics) observe(code int, start time.Time) {
	m.counter(code).Inc()
	if !start.IsZero() {
		m.duration.UpdateDuration(start)
	}
}

func (m *routeMetrics) counter(code int) *metrics.Counter {
	if code < 0 || code >= len(m.codes) {
		code = 0
	}
	if c := m.codes[code].Load(); c != nil {
		return c
	}
	c := m.set.GetOrCreateCounter(fmt.Sprintf(`sluice_http_requests_total{%s,code="%d"}`, m.label, code))
	m.codes[code].Store(c)
	return c
}
