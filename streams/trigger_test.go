package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"all set", func(c *Config) {
			c.Start, c.Ordering, c.DeadLetterTopic, c.Parallelism = StartLatest, OrderingKey, "dlq", 4
		}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "kafka.brokers"},
		{"no topics", func(c *Config) { c.Topics = nil }, "topics"},
		{"no group", func(c *Config) { c.Group = "" }, "group"},
		{"bad start", func(c *Config) { c.Start = "beginning" }, "start"},
		{"bad ordering", func(c *Config) { c.Ordering = "global" }, "ordering"},
		{"negative parallelism", func(c *Config) { c.Parallelism = -1 }, "parallelism"},
		{"dlq consumed", func(c *Config) { c.Topics = []string{"t", "g.dlq"} }, "dead_letter.topic"},
		{"negative buffer", func(c *Config) { c.MaxBufferedRecords = -5 }, "max_buffered_records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Group: "orders"}.withDefaults(fnLimits{concurrency: 64, queue: 1024, maxItems: 100, maxBytes: 1 << 20})
	if c.Name != "kafka" || c.Start != StartEarliest || c.Ordering != OrderingPartition || c.DeadLetterTopic != "orders.dlq" ||
		c.Parallelism != 64 || c.MaxBufferedRecords != 16384 || c.MaxBufferedBytes != 8<<20 {
		t.Fatalf("defaults = %+v", c)
	}
	if _, ok := c.Decoder.(formats.Raw); !ok {
		t.Fatalf("default decoder = %T", c.Decoder)
	}
}

// checkOrder asserts that, within each ordering unit (by unit), the last
// successful invocation of every record came after the last successful
// invocation of every earlier record: what a CDC consumer needs, as the
// last write of each row wins.
func checkOrder(t *testing.T, calls []call, unit func(c call) string) {
	t.Helper()
	type key struct {
		unit   string
		offset int64
	}
	last := map[key]int{}
	byUnit := map[string][]int64{}
	for _, c := range calls {
		if !c.ok {
			continue
		}
		k := key{unit(c), c.offset}
		if _, seen := last[k]; !seen {
			byUnit[k.unit] = append(byUnit[k.unit], c.offset)
		}
		last[k] = c.seq
	}
	for u, offs := range byUnit {
		slices.Sort(offs)
		for i := 1; i < len(offs); i++ {
			a, b := last[key{u, offs[i-1]}], last[key{u, offs[i]}]
			if a > b {
				t.Fatalf("%s: the last success of offset %d (call %d) came after that of later offset %d (call %d)", u, offs[i-1], a, offs[i], b)
			}
		}
	}
}

func TestOrderingPartition(t *testing.T) {
	e := newEnv(t)
	const parts, n = 4, 2000
	topic := e.topic(t, parts)
	e.produceN(t, topic, n, parts, func(i int) string { return "k" + strconv.Itoa(i%7) })
	rec := newRecorder()
	// Every 37th record fails its first attempt: the lane replays from it,
	// and order must still hold.
	rec.fail = func(ev *plugins.Event, attempt int) error {
		if v, _ := strconv.Atoi(string(ev.Data)); v%37 == 0 && attempt == 1 {
			return &plugins.FunctionError{Message: "transient"}
		}
		return nil
	}
	fn, _ := newFunction(t, "ordered", invoker.Config{Concurrency: 8, Batch: invoker.BatchConfig{MaxItems: 50},
		Retry: invoker.RetryConfig{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}}, builtinWorker("ordered", rec.handler("a")))
	cfg := Config{Topics: []string{topic}, Group: topic}
	startTrigger(t, e, cfg, fn)
	waitFor(t, 30*time.Second, "every record to succeed", func() bool { return rec.successes() == n })
	calls := rec.snapshot()
	checkOrder(t, calls, func(c call) string { return strconv.Itoa(int(c.part)) })
	if rec.maxPerP != 1 {
		t.Errorf("up to %d events of one partition ran at once, want 1", rec.maxPerP)
	}
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n / parts, 1: n / parts, 2: n / parts, 3: n / parts})
}

func TestOrderingKey(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	const n, keys = 600, 12
	e.produceN(t, topic, n, 1, func(i int) string { return "key-" + strconv.Itoa(i%keys) })
	rec := newRecorder()
	rec.delay = func(*plugins.Event) time.Duration { return time.Millisecond }
	rec.fail = func(ev *plugins.Event, attempt int) error {
		if v, _ := strconv.Atoi(string(ev.Data)); v%41 == 0 && attempt == 1 {
			return &plugins.FunctionError{Message: "transient"}
		}
		return nil
	}
	fn, _ := newFunction(t, "keyed", invoker.Config{Concurrency: 8, Batch: invoker.BatchConfig{MaxItems: 10},
		Retry: invoker.RetryConfig{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}}, builtinWorker("keyed", rec.handler("a")))
	startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Ordering: OrderingKey, Parallelism: 8}, fn)
	waitFor(t, 30*time.Second, "every record to succeed", func() bool { return rec.successes() == n })
	checkOrder(t, rec.snapshot(), func(c call) string { return c.key })
	if rec.maxPerP < 2 {
		t.Errorf("keys of one partition never ran in parallel (max %d at once)", rec.maxPerP)
	}
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n})
}

func TestOrderingNoneCommitsContiguousWatermark(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	const n = 200
	e.produceN(t, topic, n, 1, nil)
	rec := newRecorder()
	release := make(chan struct{})
	// Offset 15 is held while later runs of offsets complete.
	rec.hold = func(ctx context.Context, ev *plugins.Event) {
		if ev.KafkaOffset == 15 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	fn, _ := newFunction(t, "unordered", invoker.Config{Timeout: time.Minute, Concurrency: 8, Batch: invoker.BatchConfig{MaxItems: 10}},
		builtinWorker("unordered", rec.handler("a")))
	startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Ordering: OrderingNone, Parallelism: 4}, fn)
	// The held record's run (at most 10 records) cannot finish; every
	// other run can, after it as well as before.
	waitFor(t, 30*time.Second, "the other runs to finish", func() bool { return rec.successes() >= n-10 })
	// The watermark reaches the start of the held run and stops there,
	// whatever finished after it.
	var w int64
	waitFor(t, 10*time.Second, "the watermark to reach the held run", func() bool {
		w = e.committed(t, topic, topic)[0]
		return w > 15-10
	})
	time.Sleep(200 * time.Millisecond) // several commit intervals pass, to prove nothing more is committed
	if got := e.committed(t, topic, topic)[0]; got != w || got > 15 {
		t.Fatalf("committed %d (earlier %d) past the unfinished offset 15", got, w)
	}
	close(release)
	waitFor(t, 30*time.Second, "every record to succeed", func() bool { return rec.successes() == n })
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n})
}

func TestRetriesThenDeadLetter(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	for i := range 10 {
		r := &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
		if i == 4 {
			r.Value = []byte(`{"bad":true}`)
			r.Headers = []kgo.RecordHeader{{Key: "tenant", Value: []byte("acme")}}
		}
		e.produce(t, r)
	}
	rec := newRecorder()
	rec.fail = func(ev *plugins.Event, _ int) error {
		if strings.Contains(string(ev.Data), "bad") {
			return &plugins.FunctionError{Message: "cannot process order", Type: "OrderError"}
		}
		return nil
	}
	fn, fset := newFunction(t, "orders", invoker.Config{Retry: invoker.RetryConfig{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}},
		builtinWorker("orders", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Name: "orders-trigger", Topics: []string{topic}, Group: topic}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 10})

	dl := e.readAll(t, topic+".dlq", 1)
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dl))
	}
	r := dl[0]
	if string(r.Key) != "k4" || string(r.Value) != `{"bad":true}` {
		t.Errorf("dead letter key/value = %q/%q", r.Key, r.Value)
	}
	want := map[string]string{
		"tenant":       "acme",
		HeaderError:    "OrderError: cannot process order",
		HeaderFunction: "orders",
		HeaderAttempts: "3",
		HeaderOrigin:   topic + "/0/4",
		HeaderTrigger:  "orders-trigger",
	}
	for k, v := range want {
		if got, ok := header(r, k); !ok || got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	rec.mu.Lock()
	tries := rec.tries[formats.RecordID(&formats.Record{Topic: topic, Partition: 0, Offset: 4})]
	rec.mu.Unlock()
	if tries != 3 {
		t.Errorf("the bad record was tried %d times, want 3", tries)
	}
	if rec.successes() != 9 {
		t.Errorf("successes = %d, want 9", rec.successes())
	}
	if got := metricValue(fset, `sluice_dead_letters_total{function="orders"}`); got != 1 {
		t.Errorf("sluice_dead_letters_total = %v, want 1", got)
	}
	if got := metricValue(tset, `sluice_kafka_retries_total{trigger="orders-trigger"}`); got != 2 {
		t.Errorf("sluice_kafka_retries_total = %v, want 2", got)
	}
}

func TestPoisonRecordGoesStraightToDeadLetter(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	ce := `{"specversion":"1.0","id":"e1","source":"s","type":"t","data":{"n":1}}`
	e.produce(t,
		&kgo.Record{Topic: topic, Value: []byte(ce)},
		&kgo.Record{Topic: topic, Value: []byte("not a cloud event")},
		&kgo.Record{Topic: topic, Value: []byte(strings.Replace(ce, "e1", "e2", 1))},
	)
	rec := newRecorder()
	fn, _ := newFunction(t, "ce", invoker.Config{}, builtinWorker("ce", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Decoder: formats.CloudEvents{}, DeadLetterTopic: topic + "-poison"}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 3})
	dl := e.readAll(t, topic+"-poison", 1)
	if string(dl[0].Value) != "not a cloud event" {
		t.Fatalf("dead letter = %q", dl[0].Value)
	}
	if a, _ := header(dl[0], HeaderAttempts); a != "0" {
		t.Errorf("attempts header = %q, want 0", a)
	}
	if msg, _ := header(dl[0], HeaderError); !strings.Contains(msg, "not a CloudEvent") {
		t.Errorf("error header = %q", msg)
	}
	if rec.successes() != 2 || len(rec.snapshot()) != 2 {
		t.Errorf("invocations = %d, want the two good events only", len(rec.snapshot()))
	}
	if got := metricValue(tset, `sluice_kafka_poison_records_total{trigger="kafka"}`); got != 1 {
		t.Errorf("poison counter = %v", got)
	}
}

func TestFilterSkipsAndCommits(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	e.produceN(t, topic, 50, 1, nil)
	rec := newRecorder()
	fn, _ := newFunction(t, "even", invoker.Config{}, builtinWorker("even", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Filter: func(ev *plugins.Event) bool {
		v, _ := strconv.Atoi(string(ev.Data))
		return v%2 == 0
	}}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 50})
	waitFor(t, 10*time.Second, "the kept records", func() bool { return rec.successes() == 25 })
	for _, c := range rec.snapshot() {
		if v, _ := strconv.Atoi(c.value); v%2 != 0 {
			t.Fatalf("filtered record %d was invoked", v)
		}
	}
	if got := metricValue(tset, `sluice_filtered_total{trigger="kafka"}`); got != 25 {
		t.Errorf("sluice_filtered_total = %v, want 25", got)
	}
}

func TestBisectIsolatesPoison(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	const n, poison = 100, 61
	e.produceN(t, topic, n, 1, nil)
	rec := newRecorder()
	// The poison record hangs the function: its batch times out as a whole,
	// with no per-event error to point at it.
	rec.hold = func(ctx context.Context, ev *plugins.Event) {
		if ev.KafkaOffset == poison {
			<-ctx.Done()
		}
	}
	fn, _ := newFunction(t, "hangs", invoker.Config{
		Timeout: 300 * time.Millisecond,
		Batch:   invoker.BatchConfig{MaxItems: n, MaxWait: time.Second},
		Retry:   invoker.RetryConfig{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Bisect: true},
	}, builtinWorker("hangs", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n})
	dl := e.readAll(t, topic+".dlq", 1)
	if len(dl) != 1 || string(dl[0].Value) != strconv.Itoa(poison) {
		t.Fatalf("dead letters = %d (first %q), want only record %d", len(dl), dl[0].Value, poison)
	}
	if msg, _ := header(dl[0], HeaderError); !strings.Contains(msg, "timed out") {
		t.Errorf("error header = %q", msg)
	}
	if rec.successes() != n-1 {
		t.Errorf("successes = %d, want %d", rec.successes(), n-1)
	}
	checkOrder(t, rec.snapshot(), func(call) string { return "p0" })
	// The records before the poison keep the results the function gave
	// them before the batch timed out: only the 39 from the poison on are
	// bisected.
	if got := metricValue(tset, `sluice_kafka_bisects_total{trigger="kafka"}`); got < 5 {
		t.Errorf("bisects = %v, want at least log2(39)", got)
	}
}

// crashWorker fails a whole batch that holds a record with the given value,
// as a crashed subprocess does.
type crashWorker struct {
	poison string
	ok     *recorder
}

func (w *crashWorker) Start(context.Context) error { return nil }
func (w *crashWorker) Close(context.Context) error { return nil }
func (w *crashWorker) Invoke(ctx context.Context, b *plugins.Batch) error {
	for _, ev := range b.Events {
		if string(ev.Data) == w.poison {
			return errors.New("process exited with status 2")
		}
	}
	h := w.ok.handler("a")
	for i, ev := range b.Events {
		_, err := h(ctx, ev)
		b.Results[i] = plugins.Result{Err: err}
	}
	return nil
}

func TestCrashWithoutBisectDeadLettersTheBatch(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	const n = 30
	e.produceN(t, topic, n, 1, nil)
	rec := newRecorder()
	fn, _ := newFunction(t, "crashy", invoker.Config{
		Batch: invoker.BatchConfig{MaxItems: 10, MaxWait: time.Second},
		Retry: invoker.RetryConfig{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
	}, &crashWorker{poison: "15", ok: rec})
	startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n})
	snap := rec.snapshot()
	okSet := map[string]bool{}
	for _, c := range snap {
		okSet[c.value] = true
	}
	dlCount := n - len(okSet)
	dl := e.readAll(t, topic+".dlq", dlCount)
	var sawPoison bool
	for _, r := range dl {
		sawPoison = sawPoison || string(r.Value) == "15"
		if okSet[string(r.Value)] {
			t.Errorf("record %s was both processed and dead-lettered", r.Value)
		}
		if msg, _ := header(r, HeaderError); !strings.Contains(msg, "worker failed") {
			t.Errorf("error header = %q", msg)
		}
	}
	if !sawPoison || len(dl) > 10 {
		t.Fatalf("dead letters: %d records (poison among them: %v), want the poison's batch of at most 10", len(dl), sawPoison)
	}
}

func TestPauseResumeBoundsBuffer(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 4)
	const n = 3000
	e.produceN(t, topic, n, 4, nil)
	rec := newRecorder()
	rec.delay = func(*plugins.Event) time.Duration { return 100 * time.Microsecond }
	fn, _ := newFunction(t, "slow", invoker.Config{Concurrency: 2, Queue: 40, Batch: invoker.BatchConfig{MaxItems: 10}},
		builtinWorker("slow", rec.handler("a")))
	tr, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, MaxBufferedRecords: 100}, fn)
	bound := tr.maxRecords + tr.maxItems // a poll takes at most the room left, or one batch
	sawPause, maxBuf := false, 0
	waitFor(t, 60*time.Second, "every record", func() bool {
		s := tr.Stats()
		maxBuf = max(maxBuf, s.Buffered)
		sawPause = sawPause || s.Paused
		if s.Buffered > bound {
			t.Fatalf("buffered %d records, bound %d", s.Buffered, bound)
		}
		return rec.successes() == n
	})
	if !sawPause || metricValue(tset, `sluice_kafka_pauses_total{trigger="kafka"}`) == 0 {
		t.Errorf("fetching never paused (max buffered %d)", maxBuf)
	}
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n / 4, 1: n / 4, 2: n / 4, 3: n / 4})
	if s := tr.Stats(); s.Paused || s.Buffered != 0 {
		t.Errorf("after the backlog: %+v, want resumed and empty", s)
	}
	t.Logf("max buffered %d of bound %d", maxBuf, bound)
}

func TestRebalanceHandsOverWithoutLossOrDuplicates(t *testing.T) {
	e := newEnv(t)
	const parts = 8
	topic := e.topic(t, parts)
	rec := newRecorder()
	rec.delay = func(*plugins.Event) time.Duration { return 50 * time.Microsecond }
	cfgA := invoker.Config{Concurrency: 4, Batch: invoker.BatchConfig{MaxItems: 20}}
	fnA, _ := newFunction(t, "scale", cfgA, builtinWorker("scale", rec.handler("A")))
	fnB, _ := newFunction(t, "scale", cfgA, builtinWorker("scale", rec.handler("B")))
	cfg := Config{Topics: []string{topic}, Group: topic}

	a, _ := startTrigger(t, e, cfg, fnA)
	e.produceN(t, topic, 2000, parts, nil)
	waitFor(t, 20*time.Second, "A to make progress", func() bool { return rec.successes() > 300 })

	// B joins mid-stream: cooperative-sticky moves some partitions to it.
	b, _ := startTrigger(t, e, cfg, fnB)
	waitFor(t, 20*time.Second, "B to get partitions", func() bool { return b.Stats().Partitions > 0 })
	e.produceN(t, topic, 2000, parts, nil)
	waitFor(t, 20*time.Second, "A to shrink", func() bool { return a.Stats().Partitions < parts })

	// A leaves mid-stream: B takes everything.
	e.produceN(t, topic, 2000, parts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "B to own every partition", func() bool { return b.Stats().Partitions == parts })
	e.produceN(t, topic, 2000, parts, nil)

	const total = 8000
	waitFor(t, 30*time.Second, "every record", func() bool { return rec.successes() == total })
	want := map[int32]int64{}
	for p := range int32(parts) {
		want[p] = total / parts
	}
	e.waitCommitted(t, topic, topic, want)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var dups int
	for id, c := range rec.okCount {
		if c > 1 {
			dups++
			t.Errorf("record %s processed %d times", id, c)
		}
	}
	byInstance := map[string]int{}
	for _, c := range rec.calls {
		byInstance[c.instance]++
	}
	if byInstance["A"] == 0 || byInstance["B"] == 0 {
		t.Errorf("work was not shared: %v", byInstance)
	}
	t.Logf("invocations by instance %v, duplicates %d", byInstance, dups)
}

func TestCloseCommitsAndNextOwnerResumes(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 2)
	e.produceN(t, topic, 400, 2, nil)
	rec := newRecorder()
	fn, _ := newFunction(t, "f", invoker.Config{Batch: invoker.BatchConfig{MaxItems: 10}}, builtinWorker("f", rec.handler("first")))
	cfg := Config{Topics: []string{topic}, Group: topic, CommitInterval: time.Hour} // only Close commits
	cfg.Brokers = e.seeds
	tr, err := NewTrigger(cfg, fn, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "some records", func() bool { return rec.successes() >= 100 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	done := rec.successes()
	committed := e.committed(t, topic, topic)
	if got := committed[0] + committed[1]; got != int64(done) {
		t.Fatalf("Close committed %d records, but %d were processed", got, done)
	}
	rec2 := newRecorder()
	fn2, _ := newFunction(t, "f", invoker.Config{}, builtinWorker("f", rec2.handler("second")))
	startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn2)
	waitFor(t, 20*time.Second, "the rest", func() bool { return rec2.successes() == 400-done })
	for _, c := range rec2.snapshot() {
		if rec.okCount[fmt.Sprintf("%s-%d-%d", topic, c.part, c.offset)] > 0 {
			t.Fatalf("offset %d/%d delivered again after a clean Close", c.part, c.offset)
		}
	}
}

// TestPoisonEventsAfterDone checks the PoisonEvents debug option: a
// function that keeps its *plugins.Event finds it poisoned once its record
// is done, and every record is still invoked once and committed.
func TestPoisonEventsAfterDone(t *testing.T) {
	for _, poison := range []bool{false, true} {
		t.Run(fmt.Sprintf("poison=%v", poison), func(t *testing.T) {
			e := newEnv(t)
			topic := e.topic(t, 2)
			const n = 60
			e.produceN(t, topic, n, 2, nil)
			var mu sync.Mutex
			var kept []*plugins.Event
			fn, _ := newFunction(t, "keeper", invoker.Config{Batch: invoker.BatchConfig{MaxItems: 7}}, builtinWorker("keeper", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
				if plugins.IsPoisoned(ev) {
					return nil, errors.New("invoked with a poisoned event")
				}
				mu.Lock()
				kept = append(kept, ev)
				mu.Unlock()
				return nil, nil
			}))
			tr, _ := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, PoisonEvents: poison}, fn)
			e.waitCommitted(t, topic, topic, map[int32]int64{0: n / 2, 1: n / 2})
			// Buffered is stored by the loop after it finished with the
			// records: reading it orders the reads below after the poison.
			waitFor(t, 10*time.Second, "the buffer to empty", func() bool { return tr.Stats().Buffered == 0 })
			mu.Lock()
			defer mu.Unlock()
			if len(kept) != n {
				t.Fatalf("%d invocations, want %d", len(kept), n)
			}
			poisoned := 0
			for _, ev := range kept {
				if plugins.IsPoisoned(ev) {
					poisoned++
				}
			}
			if want := map[bool]int{false: 0, true: n}[poison]; poisoned != want {
				t.Errorf("%d of %d kept events poisoned, want %d", poisoned, n, want)
			}
		})
	}
}
