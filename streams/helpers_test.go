package streams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/internal/kafkatest"
)

// kenv is the Kafka a test runs against: a fresh in-process kfake cluster,
// or the real cluster named by SLUICE_KAFKA_SEEDS (comma-separated), as
// franz-go's own tests use KGO_SEEDS.
type kenv struct {
	seeds []string
	c     *kfake.Cluster // nil on a real cluster: fault injection is skipped
	adm   *kadm.Client
	cl    *kgo.Client // a plain producer for the test's records
}

func newEnv(t *testing.T) *kenv {
	t.Helper()
	k := kafkatest.NewEnv(t)
	return &kenv{seeds: k.Seeds, c: k.Cluster, adm: k.Adm, cl: k.Client}
}

func (e *kenv) needFake(t *testing.T) {
	t.Helper()
	if e.c == nil {
		t.Skip("fault injection needs the in-process broker (SLUICE_KAFKA_SEEDS is set)")
	}
}

// topic creates a topic with a name unique to the test.
func (e *kenv) topic(t *testing.T, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("%s-%08x", strings.NewReplacer("/", "-", "#", "-").Replace(t.Name()), rand.Uint32())
	e.createTopic(t, name, partitions)
	return name
}

func (e *kenv) createTopic(t *testing.T, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.adm.CreateTopic(ctx, partitions, 1, nil, name); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// produce writes records synchronously, failing the test on any error.
func (e *kenv) produce(t *testing.T, rs ...*kgo.Record) {
	t.Helper()
	(&kafkatest.Env{Client: e.cl}).Produce(t, rs...)
}

// produceN writes n records with values "0".."n-1" to explicit partitions
// round-robin (or by key when key is set), returning them.
func (e *kenv) produceN(t *testing.T, topic string, n, partitions int, key func(i int) string) []*kgo.Record {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		r := &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i)), Partition: int32(i % partitions)}
		if key != nil {
			r.Key = []byte(key(i))
		}
		rs[i] = r
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return rs
}

// readAll reads every record of topic from the start, waiting until at
// least want arrived.
func (e *kenv) readAll(t *testing.T, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), want, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// committed returns the group's committed offsets of topic by partition.
func (e *kenv) committed(t *testing.T, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := e.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{} // nothing committed yet
	}
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	for p, o := range os[topic] {
		out[p] = o.At
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testtool.WaitFor(t, d, what, cond)
}

// waitCommitted waits until the group committed want for every partition.
func (e *kenv) waitCommitted(t *testing.T, group, topic string, want map[int32]int64) {
	t.Helper()
	var got map[int32]int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = e.committed(t, group, topic)
		ok := true
		for p, o := range want {
			if got[p] != o {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets = %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call is one invocation of an event seen by a recorder.
type call struct {
	seq       int
	part      int32
	offset    int64
	key       string
	value     string
	ok        bool
	instance  string
	startedAt time.Time
}

// recorder is a test function: it records every invocation, fails the
// events its fail hook names, and may be slowed or held.
type recorder struct {
	mu        sync.Mutex
	calls     []call
	okCount   map[string]int // by record id
	inHandler map[int32]int  // per partition, events currently running
	maxPerP   int
	running   int
	maxRun    int

	fail  func(ev *plugins.Event, attempt int) error
	delay func(ev *plugins.Event) time.Duration
	hold  func(ctx context.Context, ev *plugins.Event)
	tries map[string]int
}

func newRecorder() *recorder {
	return &recorder{okCount: map[string]int{}, inHandler: map[int32]int{}, tries: map[string]int{}}
}

func (r *recorder) handler(instance string) plugins.Handler {
	return func(ctx context.Context, ev *plugins.Event) ([]byte, error) {
		r.mu.Lock()
		r.inHandler[ev.KafkaPartition]++
		r.maxPerP = max(r.maxPerP, r.inHandler[ev.KafkaPartition])
		r.running++
		r.maxRun = max(r.maxRun, r.running)
		r.tries[ev.ID]++
		attempt := r.tries[ev.ID]
		r.mu.Unlock()
		started := time.Now()
		if r.hold != nil {
			r.hold(ctx, ev)
		}
		if r.delay != nil {
			if d := r.delay(ev); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		var err error
		if r.fail != nil {
			err = r.fail(ev, attempt)
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.inHandler[ev.KafkaPartition]--
		r.running--
		c := call{seq: len(r.calls), part: ev.KafkaPartition, offset: ev.KafkaOffset, key: ev.PartitionKey,
			value: string(plugins.Payload(ev)), ok: err == nil, instance: instance, startedAt: started}
		r.calls = append(r.calls, c)
		if err == nil {
			r.okCount[ev.ID]++
		}
		return nil, err
	}
}

func (r *recorder) successes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.okCount)
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// newFunction starts an invoker Function running w.
func newFunction(t *testing.T, name string, cfg invoker.Config, w plugins.Worker) (*invoker.Function, *metrics.Set) {
	t.Helper()
	return kafkatest.NewFunction(t, name, cfg, w)
}

// startTrigger creates and starts a trigger, closing it at cleanup.
func startTrigger(t *testing.T, e *kenv, cfg Config, fn *invoker.Function) (*Trigger, *metrics.Set) {
	t.Helper()
	cfg.Brokers = e.seeds
	// Quick group reactions keep rebalance tests short.
	cfg.ClientOpts = append([]kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond), kgo.FetchMaxWait(100 * time.Millisecond)}, cfg.ClientOpts...)
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 50 * time.Millisecond
	}
	set := metrics.NewSet()
	log := testLogger(t)
	tr, err := NewTrigger(cfg, fn, Deps{Logger: &log, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return tr, set
}

// testLogger writes warnings and errors to the test log.
func testLogger(t *testing.T) zerolog.Logger { return kafkatest.Logger(t) }

// metricValue reads one series from a set's Prometheus text.
func metricValue(set *metrics.Set, series string) float64 { return kafkatest.MetricValue(set, series) }

func builtinWorker(name string, h plugins.Handler) plugins.Worker {
	return kafkatest.BuiltinWorker(name, h)
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
