package scheduler

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/internal/kafkatest"
)

// The harness of the Kafka packages, under the names the tests use.

func newEnv(t *testing.T) *kafkatest.Env { return kafkatest.NewEnv(t) }

func newFunction(t *testing.T, name string, cfg invoker.Config, w plugins.Worker) (*invoker.Function, *metrics.Set) {
	t.Helper()
	return kafkatest.NewFunction(t, name, cfg, w)
}

func builtinWorker(name string, h plugins.Handler) plugins.Worker {
	return kafkatest.BuiltinWorker(name, h)
}

func testLogger(t *testing.T) zerolog.Logger { return kafkatest.Logger(t) }

func metricValue(set *metrics.Set, series string) float64 { return kafkatest.MetricValue(set, series) }

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testtool.WaitFor(t, d, what, cond)
}
