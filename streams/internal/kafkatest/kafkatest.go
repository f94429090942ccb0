// Package kafkatest is the test harness of the Kafka packages (streams and
// streams/scheduler): a broker to run against, a producer, invoker
// functions to invoke, logs and metrics to read.
package kafkatest

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

// Env is the Kafka a test runs against: a fresh in-process kfake cluster,
// or the real cluster named by SLUICE_KAFKA_SEEDS (comma-separated), as
// franz-go's own tests use KGO_SEEDS.
type Env struct {
	Seeds   []string
	Cluster *kfake.Cluster // nil on a real cluster: fault injection is skipped
	Adm     *kadm.Client
	Client  *kgo.Client // a plain producer for the test's records
}

// NewEnv returns the test's Kafka, closed at cleanup.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	e := &Env{}
	if s := os.Getenv("SLUICE_KAFKA_SEEDS"); s != "" {
		e.Seeds = strings.Split(s, ",")
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		e.Cluster = c
		e.Seeds = c.ListenAddrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Seeds...), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.Client = cl
	e.Adm = kadm.NewClient(cl)
	return e
}

// Produce writes records synchronously, failing the test on any error.
func (e *Env) Produce(t testing.TB, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// NewFunction starts an invoker Function running w, closed at cleanup, and
// returns it with the metrics set it counts in.
func NewFunction(t testing.TB, name string, cfg invoker.Config, w plugins.Worker) (*invoker.Function, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	fn, err := invoker.New(name, cfg, w, invoker.Deps{Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fn.Close(context.Background()) })
	return fn, set
}

// BuiltinWorker runs h as a builtin Go function named name.
func BuiltinWorker(name string, h plugins.Handler) plugins.Worker {
	return builtin.NewWorker(name, h, nil)
}

// Logger writes warnings and errors to the test log.
func Logger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewConsoleWriter(zerolog.ConsoleTestWriter(t))).Level(zerolog.WarnLevel)
}

// MetricValue reads one series ("name{labels}") from a set's Prometheus
// text; 0 when it is missing.
func MetricValue(set *metrics.Set, series string) float64 {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
