package streams

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

// The benchmarks read SLUICE_BENCH_RECORDS records (default 200,000; the
// issue's target is measured with 1,000,000) of 100 random bytes from 8
// partitions of the in-process broker. Run them together so that the ratio
// compares the same run:
//
//	go test -run '^$' -bench 'BareConsumer|TriggerNoop' -benchtime 3x ./streams/
//
// cpu-ns/record is the process's CPU time per record, broker included: on a
// shared machine it moves much less than records/s. Both benchmarks share
// their process with a broker holding every record, whose heap makes the
// garbage collector run far less often than in a gateway of its own, so
// they understate what allocation costs: `make bench` (bench.RunSuite)
// measures the real binary against a broker in another process.

const benchPartitions = 8

var bench struct {
	once  sync.Once
	c     *kfake.Cluster
	seeds []string
	n     int
	err   error
}

// benchTopic returns a broker holding topic "bench" with the benchmark's
// records, produced once per process.
func benchTopic(b *testing.B) ([]string, int) {
	b.Helper()
	bench.once.Do(func() {
		bench.n = 200_000
		if s := os.Getenv("SLUICE_BENCH_RECORDS"); s != "" {
			bench.n, bench.err = strconv.Atoi(s)
			if bench.err != nil {
				return
			}
		}
		bench.c, bench.err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, "bench"))
		if bench.err != nil {
			return
		}
		bench.seeds = bench.c.ListenAddrs()
		cl, err := kgo.NewClient(kgo.SeedBrokers(bench.seeds...), kgo.ProducerLinger(5*time.Millisecond),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(100_000))
		if err != nil {
			bench.err = err
			return
		}
		defer cl.Close()
		// Random values, a different one per record (cycling through 4 MiB,
		// more than a batch holds): repeated values would compress a whole
		// partition into one fetch, which no real topic does.
		pool := make([]byte, 4<<20)
		_, _ = crand.Read(pool)
		var failed atomic.Value
		for i := range bench.n {
			off := i * 100 % (len(pool) - 100)
			cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: pool[off : off+100 : off+100]}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Store(err)
				}
			})
		}
		if err := cl.Flush(context.Background()); err != nil {
			bench.err = err
		}
		if err, _ := failed.Load().(error); err != nil {
			bench.err = err
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.seeds, bench.n
}

var benchGroup atomic.Int64

// BenchmarkBareConsumer is the ceiling: franz-go alone reading the topic in
// a consumer group, doing nothing with the records.
func BenchmarkBareConsumer(b *testing.B) {
	seeds, n := benchTopic(b)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("bench"),
			kgo.ConsumerGroup(fmt.Sprintf("bare-%d", benchGroup.Add(1))), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.Balancers(kgo.CooperativeStickyBalancer()))
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < n {
			fs := cl.PollFetches(context.Background())
			if err := fs.Err0(); err != nil {
				b.Fatal(err)
			}
			got += fs.NumRecords()
		}
		cl.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n*b.N), "cpu-ns/record")
}

// BenchmarkTriggerNoop reads the same topic through a Trigger into the
// invoker and the builtin noop function, with the default policy.
func BenchmarkTriggerNoop(b *testing.B) {
	seeds, n := benchTopic(b)
	h, _ := builtin.Lookup("noop")
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		fn, err := invoker.New("noop", invoker.Config{}, builtin.NewWorker("noop", h, nil), invoker.Deps{})
		if err != nil {
			b.Fatal(err)
		}
		if err := fn.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		tr, err := NewTrigger(Config{Brokers: seeds, Topics: []string{"bench"}, Group: fmt.Sprintf("noop-%d", benchGroup.Add(1))}, fn, Deps{})
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for tr.finished() < int64(n) {
			time.Sleep(time.Millisecond) // polling the watermark
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := tr.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := fn.Close(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n*b.N), "cpu-ns/record")
}

// cpuTime returns the CPU time (user and system) the process has used: on
// a shared machine records/s swings with the neighbours' load, the CPU per
// record much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// finished returns how many records are below the watermarks, for
// benchmarks that wait for a known number of records.
func (t *Trigger) finished() int64 { return t.stats.passed.Load() }

// BenchmarkTriggerLatency produces at SLUICE_BENCH_RATE records/s (default
// 50,000; the target is half the rate BenchmarkTriggerNoop reaches)
// for three seconds and reports the latency from produce to invocation.
func BenchmarkTriggerLatency(b *testing.B) {
	rate := 50_000
	if s := os.Getenv("SLUICE_BENCH_RATE"); s != "" {
		var err error
		if rate, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, "latency"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeds := c.ListenAddrs()
	hist := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	fn, err := invoker.New("latency", invoker.Config{}, builtin.NewWorker("latency", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		if len(ev.Data) >= 8 {
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(ev.Data)))
			mu.Lock()
			_ = hist.RecordValue(time.Since(sent).Microseconds())
			mu.Unlock()
		}
		return nil, nil
	}, nil), invoker.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := fn.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer fn.Close(context.Background())
	tr, err := NewTrigger(Config{Brokers: seeds, Topics: []string{"latency"}, Group: "latency", Start: StartLatest}, fn, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer tr.Close(context.Background())
	for tr.Stats().Partitions < benchPartitions {
		time.Sleep(time.Millisecond) // polling for the group to settle
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer pcl.Close()
	b.ResetTimer()
	total := 0
	for range b.N {
		const d = 3 * time.Second
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		for now := range tick.C {
			if now.Sub(start) >= d {
				break
			}
			for total < int(float64(rate)*now.Sub(start).Seconds()) {
				v := make([]byte, 100)
				binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
				pcl.Produce(context.Background(), &kgo.Record{Topic: "latency", Value: v}, nil)
				total++
			}
		}
		tick.Stop()
	}
	for {
		mu.Lock()
		got := hist.TotalCount()
		mu.Unlock()
		if got >= int64(total) {
			break
		}
		time.Sleep(time.Millisecond) // polling for the last records
	}
	b.StopTimer()
	b.ReportMetric(float64(rate), "records/s")
	b.ReportMetric(float64(hist.ValueAtQuantile(50))/1000, "p50-ms")
	b.ReportMetric(float64(hist.ValueAtQuantile(99))/1000, "p99-ms")
	b.ReportMetric(float64(hist.Max())/1000, "max-ms")
}

// BenchmarkBacklogRSS consumes a backlog far larger than memory (kfake's
// synthetic fetch serves 100-byte records from every offset up to 2^62)
// with a slow function, and reports the peak resident memory of the whole
// process (broker included) and the trigger's buffered records.
func BenchmarkBacklogRSS(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, "backlog"), kfake.SyntheticFetch(kfake.SyntheticBatch{}))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var done atomic.Int64
	fn, err := invoker.New("slow", invoker.Config{}, builtin.NewWorker("slow", func(context.Context, *plugins.Event) ([]byte, error) {
		done.Add(1)
		time.Sleep(20 * time.Microsecond)
		return nil, nil
	}, nil), invoker.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := fn.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer fn.Close(context.Background())
	tr, err := NewTrigger(Config{Brokers: c.ListenAddrs(), Topics: []string{"backlog"}, Group: "backlog"}, fn, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer tr.Close(context.Background())
	b.ResetTimer()
	maxBuf := 0
	for range b.N {
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) {
			maxBuf = max(maxBuf, tr.Stats().Buffered)
			time.Sleep(10 * time.Millisecond) // sampling interval
		}
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MiB")
	b.ReportMetric(float64(maxBuf), "max-buffered-records")
	b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "records/s")
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc is not available.
func peakRSS() int64 {
	_, peak, _ := subproc.ReadMemory(os.Getpid())
	return peak
}
