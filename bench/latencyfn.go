package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

// LatencyFunction is the builtin name LatencyHandler is registered under.
const LatencyFunction = "latency"

// The builtin registry is the binary's: the sluice binary links package
// bench for `sluice bench`, so `runtime: go, handler: latency` is available
// to every config, and the suite measures the real serving path with it.
func init() { builtin.Register(LatencyFunction, LatencyHandler) }

// LatencyHandler is the builtin function "latency": it does nothing with an event
// but observe its age, the time from the event's time to this invocation,
// in the histogram sluice_event_age_seconds{function="NAME"} of the admin
// /metrics (NAME is the configured function's name). For a Kafka record the
// event's time is the record's timestamp, which the producer sets (to the
// millisecond), so the histogram shows the latency from production to
// invocation; for a schedule tick, how late the tick ran. Events without a
// time are not observed. It returns null and never fails; it is safe for
// concurrent use.
//
// Like Lambda's IteratorAge, it tells how far behind its source a function
// runs; the benchmark suite measures the Kafka trigger's end-to-end latency
// with it.
func LatencyHandler(ctx context.Context, ev *plugins.Event) ([]byte, error) {
	if ev.Time.IsZero() {
		return nil, nil
	}
	age := max(time.Since(ev.Time), 0)
	ageHistogram(plugins.FunctionName(ctx)).Update(age.Seconds())
	return nil, nil
}

// ageHistograms caches each function's histogram: building its name per
// event would allocate.
var ageHistograms sync.Map // function name -> *metrics.Histogram

func ageHistogram(function string) *metrics.Histogram {
	if h, ok := ageHistograms.Load(function); ok {
		return h.(*metrics.Histogram)
	}
	h := metrics.GetOrCreateHistogram(ageMetric(function))
	ageHistograms.Store(function, h)
	return h
}

// ageMetric is the series name of function's event ages.
func ageMetric(function string) string {
	return fmt.Sprintf(`sluice_event_age_seconds{function=%q}`, function)
}
