package streams

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
)

func TestRecordPoolClasses(t *testing.T) {
	var rp recordPool
	for _, tt := range []struct{ n, cap int }{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {100, 128}, {128, 128}, {129, 256}} {
		s := rp.GetRecords(tt.n)
		if len(s) != 0 || cap(s) != tt.cap {
			t.Errorf("GetRecords(%d): len %d cap %d, want 0 and %d", tt.n, len(s), cap(s), tt.cap)
		}
		rp.PutRecords(s[:cap(s)])
	}
	// A slice of another capacity is not pooled: it could not serve its
	// class's largest batch.
	rp.PutRecords(make([]kgo.Record, 100))
	for range 100 {
		if s := rp.GetRecords(65); cap(s) < 65 {
			t.Fatalf("GetRecords(65) has capacity %d", cap(s))
		}
	}
}

// TestRecordsRecycled checks that the client's record slices come back to
// the trigger's pool once their records are done, failures and dead
// letters included.
func TestRecordsRecycled(t *testing.T) {
	e := newEnv(t)
	if e.c == nil {
		t.Skip("counts the slices of the in-process client")
	}
	topic := e.topic(t, 4)
	const n = 2000
	e.produceN(t, topic, n, 4, nil)
	rec := newRecorder()
	rec.fail = func(ev *plugins.Event, _ int) error {
		if v, _ := strconv.Atoi(string(ev.Data)); v%101 == 0 {
			return &plugins.FunctionError{Message: "always"}
		}
		return nil
	}
	fn, _ := newFunction(t, "recycled", invoker.Config{Retry: invoker.RetryConfig{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}},
		builtinWorker("recycled", rec.handler("a")))
	tr, _ := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n / 4, 1: n / 4, 2: n / 4, 3: n / 4})
	waitFor(t, 10*time.Second, "the record slices back in the pool", func() bool {
		return tr.recPool.puts.Load() > 0
	})
	if gets, puts := tr.recPool.gets.Load(), tr.recPool.puts.Load(); puts > gets {
		t.Fatalf("%d slices put back, %d handed out", puts, gets)
	}
}

// TestSlabsRecycledSafely consumes with parallel keys, failures and
// retries, so that records finish out of order, and checks from inside the
// function that no event changes while it runs (under -race, a slab reused
// too early is also a data race), that every record arrives, and that
// slabs do come back to the pool.
func TestSlabsRecycledSafely(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 4)
	const n = 3000
	e.produceN(t, topic, n, 4, func(i int) string { return "k" + strconv.Itoa(i%13) })
	var mu sync.Mutex
	seen := map[string]bool{}
	changed, badIDs := 0, 0
	fn, _ := newFunction(t, "slabs", invoker.Config{Concurrency: 16, Batch: invoker.BatchConfig{MaxItems: 20},
		Retry: invoker.RetryConfig{Attempts: 5, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}},
		builtinWorker("slabs", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
			id, part, off, data := ev.ID, ev.KafkaPartition, ev.KafkaOffset, string(ev.Data)
			time.Sleep(20 * time.Microsecond)
			mu.Lock()
			defer mu.Unlock()
			if ev.ID != id || ev.KafkaPartition != part || ev.KafkaOffset != off || string(ev.Data) != data {
				changed++
			}
			if want := topic + "-" + strconv.Itoa(int(part)) + "-" + strconv.FormatInt(off, 10); id != want {
				badIDs++
			}
			if v, _ := strconv.Atoi(data); v%17 == 0 && !seen["failed "+data] {
				seen["failed "+data] = true
				return nil, &plugins.FunctionError{Message: "once"}
			}
			seen[data] = true
			return nil, nil
		}))
	tr, _ := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Ordering: OrderingKey}, fn)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: n / 4, 1: n / 4, 2: n / 4, 3: n / 4})
	mu.Lock()
	defer mu.Unlock()
	if changed > 0 || badIDs > 0 {
		t.Fatalf("%d events changed while their function ran, %d had another record's id", changed, badIDs)
	}
	for i := range n {
		if !seen[strconv.Itoa(i)] {
			t.Fatalf("record %d never succeeded", i)
		}
	}
	if tr.slabs.puts.Load() == 0 {
		t.Fatalf("no slab came back to the pool (%d handed out)", tr.slabs.gets.Load())
	}
}
