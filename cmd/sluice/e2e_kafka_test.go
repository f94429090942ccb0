package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams"
)

func needKcat(t *testing.T) string {
	t.Helper()
	return testtool.Need(t, "kcat", "Debian package kcat, librdkafka; .ci/run installs it")
}

// kcatProduce sends n JSON records {"n":i} to topic with librdkafka's kcat.
func kcatProduce(t *testing.T, broker, topic string, from, n int) {
	t.Helper()
	var in bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&in, "{\"n\":%d}\n", i)
	}
	cmd := exec.Command(needKcat(t), "-b", broker, "-t", topic, "-P", "-X", "acks=all")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
}

// sinkRecords reads the sink file: every (partition, offset) of topic seen,
// with how many times, and the payload numbers.
func sinkRecords(t *testing.T, path, topic string) (offsets map[[2]int64]int, ns map[int]bool) {
	t.Helper()
	offsets, ns = map[[2]int64]int{}, map[int]bool{}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev plugins.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// A line cut by kill -9 mid-write: the record was not
			// acknowledged, so it is delivered again.
			continue
		}
		if ev.KafkaTopic != topic {
			continue
		}
		offsets[[2]int64{int64(ev.KafkaPartition), ev.KafkaOffset}]++
		var p struct{ N int }
		if json.Unmarshal(ev.Data, &p) == nil {
			ns[p.N] = true
		}
	}
	return
}

func kafkaConfig(dir, brokers string, embedded bool, delay string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 20s
kafka:
  embedded: %t
  embedded_partitions: 8
  brokers: ["%s"]
log: {level: warn}
functions:
  sink:
    runtime: go
    handler: sink
    env: {SINK_FILE: %s/sink.jsonl, SINK_DELAY: "%s"}
    batch: {max_items: 200, max_wait: 5ms}
triggers:
  - kafka: {topics: [events], group: e2e-sink, function: sink, start: earliest, format: raw}
`, embedded, brokers, dir, delay)
}

// TestE2EKafkaKcat produces 10,000 records with kcat (librdkafka, an
// outside client) to the gateway's embedded broker: every offset reaches
// the sink.
func TestE2EKafkaKcat(t *testing.T) {
	t.Parallel()
	needKcat(t)
	dir := t.TempDir()
	broker := freeAddr(t)
	p := startSluice(t, writeConfig(t, dir, kafkaConfig(dir, broker, true, "0s")))
	const n = 10000
	kcatProduce(t, broker, "events", 0, n)
	sink := filepath.Join(dir, "sink.jsonl")
	waitFor(t, 60*time.Second, "10,000 records in the sink", func() bool {
		_, ns := sinkRecords(t, sink, "events")
		return len(ns) == n
	})
	offsets, _ := sinkRecords(t, sink, "events")
	if len(offsets) != n {
		t.Errorf("%d distinct offsets for %d records", len(offsets), n)
	}
	waitFor(t, 10*time.Second, "lag 0", func() bool {
		return p.metric(`sluice_kafka_lag_records{group="e2e-sink",topic="events",partition="0"}`) == 0
	})
}

// TestE2EKafkaKill9 kills the gateway with SIGKILL mid-stream and starts it
// again: at-least-once means every record reaches the sink, duplicates only
// of what was not committed. The broker lives in the test process, as an
// external cluster would, so that it survives the kill.
func TestE2EKafkaKill9(t *testing.T) {
	t.Parallel()
	needKcat(t)
	broker, err := streams.StartEmbedded("127.0.0.1:0", 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, kafkaConfig(dir, broker.Addr(), false, "2ms"))
	sink := filepath.Join(dir, "sink.jsonl")
	const n = 5000
	kcatProduce(t, broker.Addr(), "events", 0, n)

	p := startSluice(t, cfg)
	waitFor(t, 60*time.Second, "the gateway to be mid-stream", func() bool {
		_, ns := sinkRecords(t, sink, "events")
		return len(ns) > 200
	})
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	_, before := sinkRecords(t, sink, "events")
	if len(before) == n {
		t.Log("every record was already through before the kill; the restart checks nothing")
	}

	startSluice(t, cfg)
	waitFor(t, 90*time.Second, "every record in the sink after the restart", func() bool {
		_, ns := sinkRecords(t, sink, "events")
		return len(ns) == n
	})
	offsets, _ := sinkRecords(t, sink, "events")
	dups := 0
	for _, c := range offsets {
		dups += c - 1
	}
	t.Logf("%d records, %d delivered before the kill, %d duplicates after the restart", n, len(before), dups)
	if len(offsets) != n {
		t.Errorf("%d distinct offsets, want %d", len(offsets), n)
	}
}

// freeAddr returns a loopback address with a port free right now, for a
// listener that cannot take port 0 and report back (the embedded broker's
// address is also what kcat must dial).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestE2EKafkaScaleOut runs two gateways with the same config on one
// (external) cluster: they share the partitions of the group, and when one
// is stopped the other takes its partitions over without losing a record.
func TestE2EKafkaScaleOut(t *testing.T) {
	t.Parallel()
	needKcat(t)
	broker, err := streams.StartEmbedded("127.0.0.1:0", 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, kafkaConfig(dir, broker.Addr(), false, "1ms"))
	sink := filepath.Join(dir, "sink.jsonl")
	a := startSluice(t, cfg)
	b := startSluice(t, cfg)
	const n = 4000
	kcatProduce(t, broker.Addr(), "events", 0, n/2)
	waitFor(t, 60*time.Second, "both instances to own partitions and consume", func() bool {
		owned := func(p *proc) bool {
			r := do(t, "GET", p.admin+"/metrics", "", nil)
			return strings.Contains(string(r.body), `sluice_kafka_lag_records{group="e2e-sink"`)
		}
		_, ns := sinkRecords(t, sink, "events")
		return owned(a) && owned(b) && len(ns) > 100
	})
	a.stop(syscall.SIGTERM, 30*time.Second)
	kcatProduce(t, broker.Addr(), "events", n/2, n/2)
	waitFor(t, 90*time.Second, "every record after one instance stopped", func() bool {
		_, ns := sinkRecords(t, sink, "events")
		return len(ns) == n
	})
	offsets, _ := sinkRecords(t, sink, "events")
	dups := 0
	for _, c := range offsets {
		dups += c - 1
	}
	t.Logf("%d records through two instances, one stopped mid-stream: %d duplicates", n, dups)
	if len(offsets) != n {
		t.Errorf("%d distinct offsets, want %d", len(offsets), n)
	}
}
