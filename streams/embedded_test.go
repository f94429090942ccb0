package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

func startEmbedded(t *testing.T, partitions int) *Embedded {
	t.Helper()
	log := testLogger(t)
	e, err := StartEmbedded("127.0.0.1:0", partitions, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestEmbeddedCreatesTopicsOnFirstUse(t *testing.T) {
	emb := startEmbedded(t, 3)
	if !strings.HasPrefix(emb.Addr(), "127.0.0.1:") || strings.HasSuffix(emb.Addr(), ":0") {
		t.Fatalf("Addr = %q, want the bound loopback port", emb.Addr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fresh", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ti := emb.Cluster().PartitionInfos("fresh")
	if len(ti) != 3 {
		t.Fatalf("auto-created topic has %d partitions, want 3", len(ti))
	}
}

func TestEmbeddedAddressInUse(t *testing.T) {
	emb := startEmbedded(t, 1)
	if _, err := StartEmbedded(emb.Addr(), 1, nil); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second broker on %s: %v, want address already in use", emb.Addr(), err)
	}
}

// TestKcatProducesToEmbedded has librdkafka (kcat) produce to the embedded
// broker, creating the topic, and a trigger consume every record.
func TestKcatProducesToEmbedded(t *testing.T) {
	kcat := testtool.Need(t, "kcat", "Debian package kcat")
	emb := startEmbedded(t, 4)
	const n = 500
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "key-%d\t{\"n\":%d}\n", i%10, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", emb.Addr(), "-t", "kcat-events", "-K", "\t", "-H", "source=kcat")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if got := len(emb.Cluster().PartitionInfos("kcat-events")); got != 4 {
		t.Fatalf("kcat's topic has %d partitions, want 4", got)
	}

	rec := newRecorder()
	fn, _ := newFunction(t, "sink", invoker.Config{}, builtinWorker("sink", rec.handler("a")))
	env := &kenv{seeds: []string{emb.Addr()}, c: emb.Cluster()}
	startTrigger(t, env, Config{Topics: []string{"kcat-events"}, Group: "kcat"}, fn)
	waitFor(t, 20*time.Second, "every kcat record", func() bool { return rec.successes() == n })
	seen := map[string]bool{}
	for _, c := range rec.snapshot() {
		if !strings.HasPrefix(c.key, "key-") || !strings.HasPrefix(c.value, `{"n":`) {
			t.Fatalf("record key %q value %q", c.key, c.value)
		}
		seen[c.value] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records, want %d", len(seen), n)
	}

	// And kcat reads back what the broker holds.
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", emb.Addr(), "-t", "kcat-events", "-e", "-q", "-f", "%k %h\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	if lines := strings.Count(string(out), "source=kcat"); lines != n {
		t.Fatalf("kcat read %d records with their header, want %d", lines, n)
	}
}

func TestPublisherRoundTripsThroughCloudEventsTrigger(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 2)
	pub, err := NewPublisher(PublisherConfig{Brokers: e.seeds}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sent := map[string]*plugins.Event{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		ev := &plugins.Event{
			ID: plugins.NewID(), Source: "/jobs", Type: plugins.TypeHTTPRequest, Time: time.Now().UTC().Truncate(time.Millisecond),
			DataContentType: "application/json", Data: []byte(fmt.Sprintf(`{"body":"job %d"}`, i)),
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}
		if i%2 == 0 {
			ev.PartitionKey = "tenant-a"
		}
		if err := pub.Publish(ctx, topic, ev); err != nil {
			t.Fatal(err)
		}
		sent[ev.ID] = ev
	}
	got := make(chan *plugins.Event, 20)
	fn, _ := newFunction(t, "jobs", invoker.Config{}, builtinWorker("jobs", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		got <- ev
		return nil, nil
	}))
	startTrigger(t, e, Config{Topics: []string{topic}, Group: topic, Decoder: formats.CloudEvents{}}, fn)
	for range 20 {
		var ev *plugins.Event
		select {
		case ev = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("published events did not arrive")
		}
		want := sent[ev.ID]
		if want == nil {
			t.Fatalf("unknown event %s", ev.ID)
		}
		if ev.KafkaTopic != topic {
			t.Errorf("kafkatopic = %q", ev.KafkaTopic)
		}
		wantKey := want.PartitionKey
		if wantKey == "" {
			wantKey = want.ID // the record key, as the envelope had none
		}
		if ev.PartitionKey != wantKey {
			t.Errorf("partitionkey = %q, want %q", ev.PartitionKey, wantKey)
		}
		// Apart from where it was stored, the envelope is the one published.
		cp := *ev
		cp.KafkaTopic, cp.KafkaPartition, cp.KafkaOffset, cp.PartitionKey = "", 0, 0, want.PartitionKey
		if a, b := string(cp.AppendJSON(nil)), string(want.AppendJSON(nil)); a != b {
			t.Errorf("envelope changed:\n got %s\nwant %s", a, b)
		}
	}
}

// TestPublisherDeadLetter: an event that finally failed outside a Kafka
// trigger (here: an async invocation) lands on the function's dead-letter
// topic with its headers, through the invoker's DeadLetter interface.
func TestPublisherDeadLetter(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	pub, err := NewPublisher(PublisherConfig{Brokers: e.seeds}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	fn, err := invoker.New("failing", invoker.Config{Retry: invoker.RetryConfig{Attempts: 2, Backoff: time.Millisecond}},
		builtinWorker("failing", func(context.Context, *plugins.Event) ([]byte, error) { return nil, errors.New("always") }),
		invoker.Deps{DeadLetter: pub.DeadLetterTo(topic)})
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer fn.Close(context.Background())
	done := make(chan invoker.Outcome, 1)
	ev := &plugins.Event{ID: "ev-1", Source: "/t", Type: plugins.TypeHTTPRequest, DataContentType: "application/json", Data: []byte(`{"a":1}`)}
	if err := fn.Submit(&invoker.Item{Event: ev, Trigger: "http", DeadLetter: true, Done: func(_ *invoker.Item, o invoker.Outcome) { done <- o }}); err != nil {
		t.Fatal(err)
	}
	if o := <-done; !o.DeadLettered || o.Attempts != 2 {
		t.Fatalf("outcome %+v", o)
	}
	rs := e.readAll(t, topic, 1)
	for k, want := range map[string]string{HeaderError: "always", HeaderFunction: "failing", HeaderAttempts: "2", HeaderTrigger: "http", "content-type": formats.CloudEventsContentType} {
		if got, _ := header(rs[0], k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var back plugins.Event
	if err := json.Unmarshal(rs[0].Value, &back); err != nil || back.ID != "ev-1" {
		t.Errorf("value %s: %v", rs[0].Value, err)
	}
}
