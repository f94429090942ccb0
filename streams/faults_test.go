package streams

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
)

func TestFetchFaultsLoseNothing(t *testing.T) {
	e := newEnv(t)
	e.needFake(t)
	const parts, n = 4, 2000
	topic := e.topic(t, parts)
	e.produceN(t, topic, n/2, parts, nil)
	rec := newRecorder()
	fn, _ := newFunction(t, "f", invoker.Config{Batch: invoker.BatchConfig{MaxItems: 20}}, builtinWorker("f", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn)
	waitFor(t, 20*time.Second, "consumption to start", func() bool { return rec.successes() > 0 })

	// Mid-stream: the broker drops the connection of three fetches...
	var dropped atomic.Int32
	e.c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if dropped.Add(1) <= 3 {
			e.c.KeepControl()
			return nil, errors.New("injected: connection reset"), true
		}
		e.c.DropControl()
		return nil, nil, false
	})
	// ...and answers three more with an error for the topic's partitions.
	faults := e.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: kerr.UnknownServerError, Count: 3})
	e.produceN(t, topic, n/2, parts, nil)

	waitFor(t, 30*time.Second, "every record", func() bool { return rec.successes() == n })
	want := map[int32]int64{}
	for p := range int32(parts) {
		want[p] = n / parts
	}
	e.waitCommitted(t, topic, topic, want)
	if dropped.Load() < 3 || faults.Hits() < 3 {
		t.Errorf("faults did not fire: %d dropped fetches, %d fetch errors", dropped.Load(), faults.Hits())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, c := range rec.okCount {
		if c != 1 {
			t.Errorf("record %s processed %d times", id, c)
		}
	}
	t.Logf("fetch errors surfaced to the trigger: %v", metricValue(tset, `sluice_kafka_fetch_errors_total{trigger="kafka"}`))
}

func TestDeadLetterProduceFailureHoldsTheWatermark(t *testing.T) {
	e := newEnv(t)
	e.needFake(t)
	topic := e.topic(t, 1)
	dlq := topic + ".dlq"
	e.createTopic(t, dlq, 1)
	dlqID := e.c.TopicInfo(dlq).TopicID

	// The dead-letter topic refuses writes until released.
	var refused atomic.Int32
	var release atomic.Bool
	e.c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		e.c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if release.Load() {
			return nil, nil, false
		}
		toDLQ := false
		for _, rt := range req.Topics {
			toDLQ = toDLQ || rt.Topic == dlq || rt.TopicID == dlqID
		}
		if !toDLQ {
			return nil, nil, false
		}
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	for i := range 20 {
		e.produce(t, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	rec := newRecorder()
	rec.fail = func(ev *plugins.Event, _ int) error {
		if string(ev.Data) == "5" {
			return &plugins.FunctionError{Message: "bad five"}
		}
		return nil
	}
	fn, _ := newFunction(t, "f", invoker.Config{Retry: invoker.RetryConfig{Attempts: 1, Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}},
		builtinWorker("f", rec.handler("a")))
	_, tset := startTrigger(t, e, Config{Topics: []string{topic}, Group: topic}, fn)

	waitFor(t, 20*time.Second, "the good records and refused dead letters", func() bool {
		return rec.successes() == 19 && refused.Load() >= 3
	})
	// Everything after the failed record is done, but its dead letter is not
	// safe yet: the commit stops right before it.
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 5})
	if got := metricValue(tset, `sluice_kafka_dead_letter_errors_total{trigger="kafka"}`); got < 3 {
		t.Errorf("dead letter errors = %v, want at least 3", got)
	}
	release.Store(true)
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 20})
	dl := e.readAll(t, dlq, 1)
	if len(dl) != 1 || string(dl[0].Value) != "5" {
		t.Fatalf("dead letters = %v", dl)
	}
}
