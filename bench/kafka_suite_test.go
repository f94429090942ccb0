package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/plugins"
)

// TestHistogramFromScrape feeds a VictoriaMetrics histogram known values,
// scrapes it as the suite scrapes /metrics, and checks the quantiles read
// back: never below the true value, within one bucket above it.
func TestHistogramFromScrape(t *testing.T) {
	set := metrics.NewSet()
	const series = `test_age_seconds{function="fn"}`
	h := set.NewHistogram(series)
	var before bytes.Buffer
	h.Update(100) // observed before the run: diffBuckets takes it away
	set.WritePrometheus(&before)
	for i := 1; i <= 1000; i++ {
		h.Update(float64(i) / 1000) // 1ms to 1s
	}
	var after bytes.Buffer
	set.WritePrometheus(&after)
	b, err := parseMetrics(&before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseMetrics(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := a[suffixed(series, "_count")]; got != 1001 {
		t.Fatalf("count = %v, want 1001 (series %q)", got, suffixed(series, "_count"))
	}
	bs := diffBuckets(a.buckets(series), b.buckets(series))
	for _, tt := range []struct{ q, want float64 }{{0.5, 0.5}, {0.9, 0.9}, {0.99, 0.99}, {1, 1}} {
		got := bucketQuantile(bs, tt.q)
		if got < tt.want || got > tt.want*1.13 {
			t.Errorf("quantile %v = %v, want %v to %v", tt.q, got, tt.want, tt.want*1.13)
		}
	}
	if mean := histMean(a, b, series); math.Abs(mean-0.5005) > 1e-9 {
		t.Errorf("mean = %v, want 0.5005", mean)
	}
	if !math.IsNaN(bucketQuantile(nil, 0.5)) {
		t.Error("a quantile of no observations is not NaN")
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP x
sluice_kafka_lag_records{group="g",topic="t",partition="0"} 5
sluice_kafka_lag_records{group="g",topic="t",partition="1"} 7
sluice_kafka_lag_records{group="h",topic="t",partition="0"} 100
plain 1.5e3
broken line
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum(`sluice_kafka_lag_records{group="g"`); got != 12 {
		t.Errorf("sum = %v, want 12", got)
	}
	if got := m.count(`sluice_kafka_lag_records{group="g"`); got != 2 {
		t.Errorf("count = %v, want 2", got)
	}
	if m["plain"] != 1500 || len(m) != 4 {
		t.Errorf("parsed %v", m)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{5_000_000: "5M", 200_000: "200k", 50_000: "50k", 1234: "1234", 1_500_000: "1500k"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLatencyHandler checks that the builtin observes each event's age in
// its function's histogram, and skips events without a time.
func TestLatencyHandler(t *testing.T) {
	ctx := plugins.WithFunction(context.Background(), "latency-test", nil)
	series := ageMetric("latency-test")
	read := func() metricSet {
		var b bytes.Buffer
		metrics.WritePrometheus(&b, false)
		m, err := parseMetrics(&b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := read()
	for _, ev := range []*plugins.Event{
		{ID: "a", Time: time.Now().Add(-20 * time.Millisecond)},
		{ID: "b", Time: time.Now().Add(-20 * time.Millisecond)},
		{ID: "no time"},
	} {
		if out, err := LatencyHandler(ctx, ev); out != nil || err != nil {
			t.Fatalf("LatencyHandler = %s, %v", out, err)
		}
	}
	after := read()
	if got := after[suffixed(series, "_count")] - before[suffixed(series, "_count")]; got != 2 {
		t.Fatalf("%v observations, want 2", got)
	}
	bs := diffBuckets(after.buckets(series), before.buckets(series))
	if p := bucketQuantile(bs, 1); p < 0.02 || p > 10 {
		t.Fatalf("the oldest age is %vs, want at least 0.02s", p)
	}
}

func TestCPUTimes(t *testing.T) {
	own0, proc0 := ownCPU(), procCPU(os.Getpid())
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x // burning CPU for the clocks to see
	}
	if own := ownCPU() - own0; own < 10*time.Millisecond {
		t.Errorf("ownCPU grew by %s over 50ms of work", own)
	}
	if proc := procCPU(os.Getpid()); proc <= proc0 && proc0 == 0 {
		t.Errorf("procCPU = %s", proc)
	}
	if procCPU(-1) != 0 {
		t.Error("procCPU of no process is not 0")
	}
}

// TestKafkaScenarios runs the Kafka scenarios of the suite, small, against
// the real binary: a broker process, the bare consumer, the gateway into
// noop, the latency runs and the backlog.
func TestKafkaScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	old := scrapeEvery
	scrapeEvery = 5 * time.Millisecond
	t.Cleanup(func() { scrapeEvery = old })
	var out bytes.Buffer
	cfg := SuiteConfig{
		Sluice: bin, Dir: t.TempDir(), Duration: time.Second, Warmup: 200 * time.Millisecond,
		KafkaRecords: 100_000, KafkaBacklog: 50_000, Only: []string{"kafka"}, Out: &out,
	}
	cfg.defaults()
	res := &SuiteResult{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := runKafkaScenarios(ctx, &cfg, res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	printSuite(&out, res)
	t.Log("\n" + out.String())
	got := map[string]*Scenario{}
	for _, s := range res.Scenarios {
		got[s.Name] = s
	}
	ceil, noop, lat := got[kafkaCeilingName], got[kafkaNoopName], got[kafkaLatencyName]
	sustained := got[kafkaSustainedName]
	backlog := got["kafka backlog: 50k records, slow function, gateway RSS"]
	if ceil == nil || noop == nil || lat == nil || sustained == nil || backlog == nil || len(res.Scenarios) != 6 {
		t.Fatalf("scenarios: %v", res.Scenarios)
	}
	if ceil.Result.Throughput <= 0 || noop.Result.Throughput <= 0 || noop.Ratio <= 0 || noop.Met == nil {
		t.Errorf("throughput: ceiling %+v, noop %+v", ceil.Result, noop.Result)
	}
	if noop.Result.OK != cfg.KafkaRecords {
		t.Errorf("%d of %d records invoked successfully", noop.Result.OK, cfg.KafkaRecords)
	}
	if r := lat.Result; r.OK != r.Requests || r.OK == 0 || r.Latency.P99 <= 0 || r.Latency.P50 > r.Latency.P99 {
		t.Errorf("latency run: %d of %d observed, %+v", r.OK, r.Requests, r.Latency)
	}
	if r := sustained.Result; r.Throughput <= 0 || r.OK != r.Requests {
		t.Errorf("sustained run: %+v", r)
	}
	if want := fmt.Sprintf("open-loop %.0f/s", sustained.Result.Throughput/2); !strings.HasPrefix(lat.Result.Mode, want) {
		t.Errorf("latency run: mode %q, want it at half the sustained rate (%s)", lat.Result.Mode, want)
	}
	if backlog.Result.OK <= 0 || backlog.Met == nil || !strings.Contains(strings.Join(backlog.Notes, " "), "peak RSS") {
		t.Errorf("backlog: %+v %v", backlog.Result, backlog.Notes)
	}
}
