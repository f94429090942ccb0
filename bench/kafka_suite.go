package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka scenarios share one broker: the embedded broker (franz-go's
// kfake) of a `sluice serve` of its own that runs nothing else, so that the
// bare consumer (in the suite's process) and the gateway each read it from
// another process over loopback, and neither has the broker's heap beside
// its own: a consumer sharing a process with a broker that holds a million
// records collects its garbage far less often than one alone, which made
// the ceiling twice as cheap per record. The backlog scenario's records are
// not in the gateway whose memory it measures either.
const (
	kafkaPartitions   = 8
	kafkaRecordSize   = 100
	kafkaThroughput   = "bench"
	kafkaLatencyTopic = "bench-latency"
	kafkaBacklogTopic = "bench-backlog"

	// Scenario names; --only kafka selects them all.
	kafkaCeilingName    = "kafka ceiling: bare franz-go consumer"
	kafkaNoopName       = "kafka → noop (raw, 8 partitions)"
	kafkaSustainedName  = "kafka pipeline sustained: producer → broker → trigger → latency function"
	kafkaLatencyName    = "kafka → latency function at half the sustained rate, produce to invocation"
	kafkaBacklogNameFmt = "kafka backlog: %s records, slow function, gateway RSS"
)

// scrapeEvery is how often the admin /metrics is read while a run is timed
// (see timeRun); tests of small runs read more often.
var scrapeEvery = 100 * time.Millisecond

// kafkaBrokerYAML is a `sluice serve` that only serves the embedded
// broker, with the given partitions per topic.
const kafkaBrokerYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
kafka:
  embedded: true
  embedded_partitions: %d
  brokers: ["127.0.0.1:0"]
log: {level: info, format: json}
`

// brokerLogLine is the message the gateway logs with the embedded broker's
// bound address.
const brokerLogLine = "embedded Kafka broker (in memory, for development) listening"

// kafkaGatewayYAML is a gateway with one Kafka trigger and no broker of its
// own: function, its extra YAML (one line of flow mapping entries), topic,
// group.
const kafkaGatewayYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
kafka:
  brokers: ["%s"]
log: {level: warn, format: json}
functions:
  fn: {runtime: go, handler: %s%s}
triggers:
  - kafka: {topics: [%s], group: %s, function: fn, start: earliest, format: raw}
`

func runKafkaScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	backlogName := fmt.Sprintf(kafkaBacklogNameFmt, count(cfg.KafkaBacklog))
	wantCeil := cfg.wants(kafkaCeilingName) || cfg.wants(kafkaNoopName)
	wantLat := cfg.wants(kafkaLatencyName) || cfg.wants(kafkaSustainedName)
	wantBacklog := cfg.wants(backlogName)
	if !wantCeil && !wantLat && !wantBacklog {
		return nil
	}
	broker, err := startGateway(ctx, cfg, fmt.Sprintf(kafkaBrokerYAML, kafkaPartitions))
	if err != nil {
		return fmt.Errorf("kafka broker: %w", err)
	}
	defer broker.Stop()
	addr := broker.LoggedAddr(brokerLogLine)
	if addr == "" {
		return fmt.Errorf("kafka broker: no %q line with its address:\n%s", brokerLogLine, broker.Tail())
	}
	brokers := []string{addr}
	fmt.Fprintf(cfg.Out, "Kafka: the embedded broker (kfake) of a `sluice serve` of its own on %s, %d partitions, %d-byte random values\n\n",
		addr, kafkaPartitions, kafkaRecordSize)

	// The sustained run is sized by the rate the trigger reached, so the
	// latency scenario needs the throughput run.
	var rate float64
	if wantCeil || wantLat {
		if rate, err = kafkaThroughputScenarios(ctx, cfg, res, brokers, wantCeil); err != nil {
			return err
		}
	}
	if wantLat {
		if err := kafkaLatencyScenario(ctx, cfg, res, brokers, rate); err != nil {
			return err
		}
	}
	if wantBacklog {
		if err := kafkaBacklogScenario(ctx, cfg, res, brokers, backlogName); err != nil {
			return err
		}
	}
	return nil
}

// kafkaThroughputScenarios produces cfg.KafkaRecords records, reads them
// with a bare franz-go consumer, then with `sluice serve` into the noop
// function, then with the bare consumer again; the ratio is to the better
// of the two bare runs. It returns the trigger's rate.
func kafkaThroughputScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult, brokers []string, report bool) (float64, error) {
	n := cfg.KafkaRecords
	if _, err := produceBacklog(ctx, cfg, brokers, kafkaThroughput, n); err != nil {
		return 0, err
	}
	first, err := bareConsume(ctx, brokers, kafkaThroughput, n, "bench-bare-1")
	if err != nil {
		return 0, err
	}

	group := "bench-noop"
	gw, err := startGateway(ctx, cfg, fmt.Sprintf(kafkaGatewayYAML, brokers[0], "noop", "", kafkaThroughput, group))
	if err != nil {
		return 0, fmt.Errorf("gateway: %w", err)
	}
	admin := "http://" + gw.Addr("admin") + "/metrics"
	done := fmt.Sprintf(`sluice_invocations_total{function="fn",trigger="kafka:%s",outcome="success"}`, group)
	run, err := timeRun(ctx, gw.PID(), admin, done, n, 3*time.Minute)
	if err != nil {
		gw.Stop()
		return 0, fmt.Errorf("%s: %w\n%s", kafkaNoopName, err, gw.Tail())
	}
	commitWait, commitErr := waitCommitted(ctx, brokers, group, 15*time.Second)
	_, peak := RSS(gw.PID())
	failed := run.last.sum(`sluice_invocations_total{function="fn"`) - run.last[done]
	gw.Stop()

	last, err := bareConsume(ctx, brokers, kafkaThroughput, n, "bench-bare-2")
	if err != nil {
		return 0, err
	}
	rate := run.rate()
	if !report {
		return rate, nil
	}
	best := first
	if last.Throughput > best.Throughput {
		best = last
	}
	gwCPU := run.cpuPer()
	bareCPU := min(first.cpu, last.cpu)
	ceil := &Scenario{Name: kafkaCeilingName, Result: best.Result, Notes: []string{
		fmt.Sprintf("first %.0f/s, last %.0f/s; ratios use the better", first.Throughput, last.Throughput),
		"kgo consumer group with default fetch sizes, doing nothing with the records; timed from its first fetched records to the last",
		fmt.Sprintf("CPU per record: %dns", bareCPU.Nanoseconds()),
	}}
	noop := &Scenario{Name: kafkaNoopName, Ceiling: ceil.Name, Target: "≥ 0.80× ceiling",
		Result: &Result{
			Name: kafkaNoopName, Target: kafkaThroughput + "@" + brokers[0], Duration: run.elapsed(),
			Mode:     fmt.Sprintf("%d records of %d bytes, backlog", n, kafkaRecordSize),
			Requests: n, OK: n - int64(failed), Throughput: rate,
		},
	}
	noop.Ratio = rate / best.Throughput
	met := noop.Ratio >= 0.80 && failed == 0 && commitErr == nil
	noop.Met = &met
	noop.Notes = append(noop.Notes,
		fmt.Sprintf("`sluice serve`, format raw, ordering partition, function defaults; timed between the first and the last reading of its admin /metrics (every %s) taken while records were being invoked", scrapeEvery),
		fmt.Sprintf("gateway peak RSS %.1f MiB", float64(peak)/(1<<20)),
		fmt.Sprintf("CPU per record: gateway %dns, bare consumer %dns (%.2f× the gateway's): the ratio the throughputs would have with a core to spare for each",
			gwCPU.Nanoseconds(), bareCPU.Nanoseconds(), float64(bareCPU)/float64(max(gwCPU, 1))))
	if commitErr != nil {
		noop.Notes = append(noop.Notes, "committed offsets: "+commitErr.Error())
	} else {
		noop.Notes = append(noop.Notes, fmt.Sprintf("the group's committed lag (kadm) reached 0 %s after the last invocation", commitWait.Round(time.Millisecond)))
	}
	if failed > 0 {
		noop.Notes = append(noop.Notes, fmt.Sprintf("%.0f invocations did not succeed", failed))
	}
	res.Scenarios = append(res.Scenarios, ceil, noop)
	return rate, nil
}

// kafkaReferenceRate is the rate of the latency run that shows what the
// trigger adds when the machine is not busy producing and brokering too.
const kafkaReferenceRate = 50_000

// kafkaSustainedFor is about how long the sustained run produces for, at
// the trigger's backlog rate (the producer is slower, so it runs longer).
const kafkaSustainedFor = 2 * time.Second

// kafkaLatencyScenario measures the latency from produce to invocation
// through a gateway whose trigger invokes the latency function. First it
// finds the rate the whole pipeline sustains on this machine: records
// produced as fast as the broker acknowledges them (closed loop), timed
// from the first produce to the last invocation, with the producer, the
// broker and the gateway all running at once. The trigger alone drains a
// backlog faster (triggerRate) than a producer can fill the topic beside
// it, so half the trigger's rate is not a rate the pipeline can run at.
// Then it produces open-loop (each record stamped with its due time) at
// kafkaReferenceRate and at half the sustained rate, and reads each run's
// latency from the latency function's histogram.
func kafkaLatencyScenario(ctx context.Context, cfg *SuiteConfig, res *SuiteResult, brokers []string, triggerRate float64) error {
	if triggerRate < 1 {
		return errors.New("kafka latency: no trigger rate to size the sustained run by")
	}
	group := "bench-latency"
	gw, err := startGateway(ctx, cfg, fmt.Sprintf(kafkaGatewayYAML, brokers[0], LatencyFunction, "", kafkaLatencyTopic, group))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer gw.Stop()
	admin := "http://" + gw.Addr("admin") + "/metrics"
	// Records produced before the group owns every partition would wait
	// for the join and count it as latency.
	lag := fmt.Sprintf(`sluice_kafka_lag_records{group=%q`, group)
	if err := waitMetrics(ctx, admin, 30*time.Second, func(m metricSet) bool { return m.count(lag) == kafkaPartitions }); err != nil {
		return fmt.Errorf("kafka latency: the group did not take its partitions: %w\n%s", err, gw.Tail())
	}
	hist := ageMetric("fn")
	var produced int64
	var snap metricSet
	// run produces n records at r records a second (0: as fast as
	// acknowledged) and returns the latency histogram of its records once
	// all were invoked, and when the last of them was seen invoked.
	run := func(name string, r float64, n int64) (*Result, []bucket, metricSet, time.Time, error) {
		out, err := RunKafka(ctx, KafkaConfig{
			Brokers: brokers, Topic: kafkaLatencyTopic, Records: n, Size: kafkaRecordSize,
			Rate: int(r), DueTimestamps: true, Name: name, Progress: cfg.Progress,
			Opts: []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())},
		})
		if err != nil {
			return nil, nil, nil, time.Time{}, err
		}
		produced += out.OK
		before := snap
		var seen time.Time
		if err := waitMetrics(ctx, admin, time.Minute, func(m metricSet) bool {
			snap, seen = m, time.Now()
			return int64(m[suffixed(hist, "_count")]) >= produced
		}); err != nil {
			return nil, nil, nil, time.Time{}, fmt.Errorf("%s: the records were not all invoked: %w", name, err)
		}
		return out, diffBuckets(snap.buckets(hist), before.buckets(hist)), before, seen, nil
	}
	if _, _, _, _, err := run("warm-up", kafkaReferenceRate, int64(kafkaReferenceRate*cfg.Warmup.Seconds())); err != nil {
		return err
	}

	// The sustained rate of the whole pipeline.
	n := max(int64(triggerRate*kafkaSustainedFor.Seconds()), 10_000)
	start := time.Now()
	out, _, _, last, err := run(kafkaSustainedName, 0, n)
	if err != nil {
		return err
	}
	sustained := float64(out.OK) / last.Sub(start).Seconds()
	res.Scenarios = append(res.Scenarios, &Scenario{Name: kafkaSustainedName,
		Result: &Result{
			Name: kafkaSustainedName, Target: kafkaLatencyTopic + "@" + brokers[0], Duration: last.Sub(start),
			Mode:     fmt.Sprintf("%d records of %d bytes, produced as fast as acknowledged", n, kafkaRecordSize),
			Requests: out.Requests, OK: out.OK, Errors: out.Errors, Throughput: sustained,
		},
		Notes: []string{
			fmt.Sprintf("records over the time from the first produce to the scrape (every 50ms) that saw the last one invoked; the producer alone was acknowledged at %.0f/s, the trigger alone drained the backlog at %.0f/s", out.Throughput, triggerRate),
			"producer, broker and gateway share the machine: this is the rate the pipeline sustains here, and the latency scenario runs at half of it",
		},
	})

	for _, r := range []struct {
		name string
		rate float64
	}{
		{fmt.Sprintf("kafka → latency function at %s/s, produce to invocation (reference)", count(kafkaReferenceRate)), kafkaReferenceRate},
		{kafkaLatencyName, sustained / 2},
	} {
		out, h, before, _, err := run(r.name, r.rate, int64(r.rate*cfg.Duration.Seconds()))
		if err != nil {
			return err
		}
		_, peak := RSS(gw.PID())
		var total int64
		for _, b := range h {
			total += b.n
		}
		lat := &Result{
			Name: r.name, Target: kafkaLatencyTopic + "@" + brokers[0], Duration: out.Duration,
			Mode:     fmt.Sprintf("open-loop %.0f/s, %d-byte records, %s", r.rate, kafkaRecordSize, cfg.Duration),
			Requests: out.Requests, OK: total, Errors: out.Errors, Throughput: out.Throughput,
			Latency: Latency{
				Mean: histMean(snap, before, hist) * 1000,
				P50:  bucketQuantile(h, 0.50) * 1000, P90: bucketQuantile(h, 0.90) * 1000,
				P99: bucketQuantile(h, 0.99) * 1000, P999: bucketQuantile(h, 0.999) * 1000, Max: bucketQuantile(h, 1) * 1000,
			},
		}
		s := &Scenario{Name: r.name, Result: lat, Notes: []string{
			fmt.Sprintf("%d records produced, %d invocations observed; the producer (lingering 5ms) saw p99 %.2fms to the broker's acknowledgement; gateway peak RSS %.1f MiB",
				out.OK, total, out.Latency.P99, float64(peak)/(1<<20)),
		}}
		kept := out.Throughput >= 0.95*r.rate
		if !kept {
			s.Notes = append(s.Notes, fmt.Sprintf("the producer sent %.0f/s of the %.0f/s asked and waited up to %.0fms for the broker: producer, broker and gateway share the machine, and what this latency measures is mostly their queue, not the trigger",
				out.Throughput, r.rate, out.Latency.Max))
		}
		if r.name == kafkaLatencyName {
			met := lat.Latency.P99 < 50 && out.ErrorCount() == 0 && total == out.OK && kept
			s.Target, s.Met = "p99 < 50ms", &met
			s.Notes = append(s.Notes,
				fmt.Sprintf("rate: half the %.0f/s the whole pipeline sustained in this run (%q)", sustained, kafkaSustainedName),
				"latency: from each record's due time (its timestamp, to the millisecond) to its invocation, observed by the builtin `latency` function in sluice_event_age_seconds; quantiles are the upper bounds of its histogram buckets (within 12%)")
		}
		res.Scenarios = append(res.Scenarios, s)
	}
	return nil
}

// kafkaBacklogScenario produces cfg.KafkaBacklog records, then lets a
// gateway consume them with a slow function, sampling its memory.
func kafkaBacklogScenario(ctx context.Context, cfg *SuiteConfig, res *SuiteResult, brokers []string, name string) error {
	n := cfg.KafkaBacklog
	if _, err := produceBacklog(ctx, cfg, brokers, kafkaBacklogTopic, n); err != nil {
		return err
	}
	group := "bench-backlog"
	// A 1ms sink into /dev/null: eight partitions, one batch in flight
	// each, about 8,000 records a second, so the backlog stays huge for the
	// whole run and fetching is paused and resumed over and over.
	slow := `, env: {SINK_FILE: /dev/null, SINK_DELAY: 1ms}`
	gw, err := startGateway(ctx, cfg, fmt.Sprintf(kafkaGatewayYAML, brokers[0], "sink", slow, kafkaBacklogTopic, group))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer gw.Stop()
	admin := "http://" + gw.Addr("admin") + "/metrics"
	buffered := `sluice_kafka_buffered_records{trigger="kafka:` + group + `"}`
	done := `sluice_invocations_total{function="fn",trigger="kafka:` + group + `",outcome="success"}`
	lag := fmt.Sprintf(`sluice_kafka_lag_records{group=%q`, group)
	d := 2 * cfg.Duration
	start := time.Now()
	var maxBuf, maxLag float64
	var last metricSet
	for time.Since(start) < d {
		m, err := scrape(ctx, admin)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		last = m
		maxBuf = max(maxBuf, m[buffered])
		maxLag = max(maxLag, m.sum(lag))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // sampling interval
		}
	}
	elapsed := time.Since(start)
	_, peak := RSS(gw.PID())
	invoked := last[done]
	met := peak < 256<<20 && invoked > 0
	res.Scenarios = append(res.Scenarios, &Scenario{
		Name: name, Target: "peak RSS < 256 MiB", Met: &met,
		Result: &Result{
			Name: name, Target: kafkaBacklogTopic + "@" + brokers[0], Duration: elapsed,
			Mode:     fmt.Sprintf("%d records of %d bytes waiting, sink with SINK_DELAY 1ms", n, kafkaRecordSize),
			Requests: int64(invoked), OK: int64(invoked), Throughput: invoked / elapsed.Seconds(),
		},
		Notes: []string{
			fmt.Sprintf("gateway peak RSS (VmHWM) %.1f MiB over %s; the broker and its records are in a process of their own", float64(peak)/(1<<20), elapsed.Round(time.Second)),
			fmt.Sprintf("at most %.0f records buffered by the trigger (sluice_kafka_buffered_records); lag up to %.0f records", maxBuf, maxLag),
		},
	})
	return nil
}

// produceBacklog produces n records to topic unless it holds them already.
func produceBacklog(ctx context.Context, cfg *SuiteConfig, brokers []string, topic string, n int64) (*Result, error) {
	out, err := RunKafka(ctx, KafkaConfig{
		Brokers: brokers, Topic: topic, Records: n, Size: kafkaRecordSize, Name: "produce " + topic, Progress: cfg.Progress,
		Opts: []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())},
	})
	if err != nil {
		return nil, fmt.Errorf("produce %s: %w", topic, err)
	}
	if out.OK != n {
		return nil, fmt.Errorf("produce %s: %d of %d records acknowledged (%v)", topic, out.OK, n, out.Errors)
	}
	return out, nil
}

// bareConsume reads n records of topic in a new consumer group with
// franz-go's defaults and nothing else, timed from the first fetched
// records (those not counted) to the last.
func bareConsume(ctx context.Context, brokers []string, topic string, n int64, group string) (*bareRun, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var got, first int64
	var start time.Time
	var cpu0 time.Duration
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bare consumer: %d of %d records: %w", got, n, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("bare consumer: fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		k := int64(fs.NumRecords())
		if k > 0 && start.IsZero() {
			start, first, cpu0 = time.Now(), k, ownCPU()
		}
		got += k
	}
	elapsed := time.Since(start)
	cpu := (ownCPU() - cpu0) / time.Duration(got-first)
	return &bareRun{cpu: cpu, Result: &Result{
		Name: kafkaCeilingName, Target: topic + "@" + strings.Join(brokers, ","), Duration: elapsed,
		Mode:     fmt.Sprintf("%d records of %d bytes, backlog", n, kafkaRecordSize),
		Requests: n, OK: n, Throughput: float64(got-first) / elapsed.Seconds(),
	}}, nil
}

// bareRun is a run of the bare consumer and the CPU time per record the
// suite's process used meanwhile.
type bareRun struct {
	*Result
	cpu time.Duration
}

// ownCPU returns the CPU time (user and system) the suite's process has
// used.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns the CPU time (user and system) process pid has used, to
// the clock tick; 0 where /proc cannot tell.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command, which may hold spaces, in parentheses;
	// utime and stime are the 14th and 15th of the line.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick
}

// timedRun is the progress of a gateway through n records, from its
// admin /metrics, with the CPU time the gateway used meanwhile.
type timedRun struct {
	n    int64
	last metricSet
	// first and mid are the first scrape that saw an invocation and the
	// last one that saw fewer than n: the run is timed between them, both
	// taken in the middle of the stream, so that neither the wait for the
	// first records nor the last scrape's lateness counts.
	first, mid sample
}

// sample is one scrape of a timed run.
type sample struct {
	at      time.Time
	invoked float64
	cpu     time.Duration // of the gateway
}

// rate is the records a second between the two samples.
func (r *timedRun) rate() float64 {
	return (r.mid.invoked - r.first.invoked) / r.mid.at.Sub(r.first.at).Seconds()
}

// elapsed is the time between the two samples.
func (r *timedRun) elapsed() time.Duration { return r.mid.at.Sub(r.first.at) }

// cpuPer returns the gateway's CPU time per record between the two
// samples.
func (r *timedRun) cpuPer() time.Duration {
	return (r.mid.cpu - r.first.cpu) / time.Duration(r.mid.invoked-r.first.invoked)
}

// timeRun scrapes the admin /metrics of gateway pid until the counter
// done reaches n. Scraping is not free: VictoriaMetrics reads the process's
// /proc files for each, some 0.8ms of the gateway's CPU, so it samples every
// 100ms.
func timeRun(ctx context.Context, pid int, url, done string, n int64, timeout time.Duration) (*timedRun, error) {
	r := &timedRun{n: n}
	deadline := time.Now().Add(timeout)
	for {
		m, err := scrape(ctx, url)
		if err != nil {
			return nil, err
		}
		smp := sample{at: time.Now(), invoked: m[done], cpu: procCPU(pid)}
		if smp.invoked >= float64(n) {
			r.last = m
			if r.first.at.IsZero() {
				return nil, fmt.Errorf("all %d records were invoked before the first scrape: too few to time", n)
			}
			if !r.mid.at.After(r.first.at) {
				// No scrape fell in the middle of the stream: time it to
				// the end, late by up to one interval.
				r.mid = smp
			}
			return r, nil
		}
		if smp.invoked > 0 {
			if r.first.at.IsZero() {
				r.first = smp
			} else {
				r.mid = smp
			}
		}
		if smp.at.After(deadline) {
			return nil, fmt.Errorf("%s = %.0f of %d after %s", done, smp.invoked, n, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(scrapeEvery): // polling the gateway's counters
		}
	}
}

// waitMetrics scrapes url until ok holds.
func waitMetrics(ctx context.Context, url string, timeout time.Duration, ok func(metricSet) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		m, err := scrape(ctx, url)
		if err != nil {
			return err
		}
		if ok(m) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the gateway's metrics
		}
	}
}

// waitCommitted waits until group has committed the end of every partition
// it consumes and returns how long that took.
func waitCommitted(ctx context.Context, brokers []string, group string, timeout time.Duration) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	var lag int64 = -1
	for time.Since(start) < timeout {
		lags, err := adm.Lag(ctx, group)
		if err == nil {
			if l, ok := lags[group]; ok && l.Error() == nil && len(l.Lag) > 0 {
				if lag = l.Lag.Total(); lag == 0 {
					return time.Since(start), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the group's offsets
		}
	}
	return 0, fmt.Errorf("group %s still lags %d records after %s", group, lag, timeout)
}

// metricSet is one scrape of a Prometheus text page: series (name with
// labels, as written) to value.
type metricSet map[string]float64

func scrape(ctx context.Context, url string) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus text: "series value" lines; comments and
// lines it cannot read are skipped.
func parseMetrics(r io.Reader) (metricSet, error) {
	m := metricSet{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the series that start with prefix.
func (m metricSet) sum(prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// count is the number of series that start with prefix.
func (m metricSet) count(prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// bucket is one vmrange bucket of a VictoriaMetrics histogram.
type bucket struct {
	lo, hi float64
	n      int64
}

// buckets returns the vmrange buckets of the histogram series (name with
// its labels, as registered), in ascending order.
func (m metricSet) buckets(series string) []bucket {
	prefix := strings.TrimSuffix(suffixed(series, "_bucket"), "}") + `,vmrange="`
	var out []bucket
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		lo, hi, ok := strings.Cut(strings.TrimSuffix(rest, `"}`), "...")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseFloat(lo, 64)
		h, err2 := strconv.ParseFloat(hi, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, bucket{lo: l, hi: h, n: int64(v)})
	}
	slices.SortFunc(out, func(a, b bucket) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	return out
}

// diffBuckets subtracts an earlier scrape's buckets from a later one's.
func diffBuckets(after, before []bucket) []bucket {
	prev := map[float64]int64{}
	for _, b := range before {
		prev[b.lo] = b.n
	}
	out := make([]bucket, 0, len(after))
	for _, b := range after {
		if b.n -= prev[b.lo]; b.n > 0 {
			out = append(out, b)
		}
	}
	return out
}

// bucketQuantile returns the upper bound of the bucket holding the q-th
// quantile (0 < q <= 1): never below the true value, at most one bucket
// width (about 12%) above it. NaN for no observations.
func bucketQuantile(bs []bucket, q float64) float64 {
	var total int64
	for _, b := range bs {
		total += b.n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := int64(math.Ceil(q * float64(total)))
	var cum int64
	for _, b := range bs {
		if cum += b.n; cum >= rank {
			return b.hi
		}
	}
	return bs[len(bs)-1].hi
}

// histMean is the mean of the observations between two scrapes.
func histMean(after, before metricSet, series string) float64 {
	sum := after[suffixed(series, "_sum")] - before[suffixed(series, "_sum")]
	n := after[suffixed(series, "_count")] - before[suffixed(series, "_count")]
	if n <= 0 {
		return math.NaN()
	}
	return sum / n
}

// suffixed puts suffix after the name of a series, before its labels:
// the _count, _sum and _bucket series of a histogram.
func suffixed(series, suffix string) string {
	name, labels, ok := strings.Cut(series, "{")
	if !ok {
		return series + suffix
	}
	return name + suffix + "{" + labels
}

// count writes n as "1M", "5M", "200k".
func count(n int64) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return strconv.FormatInt(n/1e6, 10) + "M"
	case n >= 1e3 && n%1e3 == 0:
		return strconv.FormatInt(n/1e3, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}
