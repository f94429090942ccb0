package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaConfig is one Kafka produce run: Records records of Size bytes to
// Topic, measuring the produce-to-acknowledgement latency of each.
type KafkaConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Topic to produce to. Required.
	Topic string
	// Records to produce. Defaults to 100000.
	Records int64
	// Size of each record value in bytes. Defaults to 100.
	Size int
	// Rate, when positive, paces production at this many records per second
	// (open loop: latency counts from when each record was due).
	Rate int
	// Keys, when positive, spreads records over this many distinct keys;
	// zero sends records without keys (spread over partitions).
	Keys int
	// JSON makes each value a JSON object padded to Size, so that triggers
	// keep it as JSON; otherwise values are random bytes, a different run
	// of them for each record, so that the producer's compression does not
	// shrink a topic of a million records to a few fetches.
	JSON bool
	// DueTimestamps stamps each record with the time it was due (with Rate,
	// its slot in the schedule) instead of letting the client stamp it when
	// it takes it: consumers that measure latency from the record's
	// timestamp then count a producer that fell behind too, as an open-loop
	// run should.
	DueTimestamps bool
	// Name labels the result.
	Name string
	// Progress receives a live progress bar; nil for none.
	Progress io.Writer
	// Opts are extra franz-go client options, after RunKafka's own.
	Opts []kgo.Opt
}

// RunKafka produces cfg.Records records and measures them. Failed records
// are counted by kind in Result.Errors.
func RunKafka(ctx context.Context, cfg KafkaConfig) (*Result, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("bench: --brokers and --topic are required")
	}
	if cfg.Records <= 0 {
		cfg.Records = 100000
	}
	if cfg.Size <= 0 {
		cfg.Size = 100
	}
	if cfg.Name == "" {
		cfg.Name = "kafka-produce"
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(1 << 16),
		kgo.AllowAutoTopicCreation(),
	}, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: kafka client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return nil, fmt.Errorf("bench: cannot reach brokers %s: %w", strings.Join(cfg.Brokers, ","), err)
	}

	var value, pool []byte
	if cfg.JSON {
		pad := max(cfg.Size-len(`{"seq":0,"pad":""}`), 0)
		value = fmt.Appendf(nil, `{"seq":0,"pad":"%s"}`, strings.Repeat("x", pad))
	} else {
		// Values cycle through 4 MiB of random bytes: more than one batch
		// holds, so no batch repeats a value.
		pool = make([]byte, max(4<<20/cfg.Size, 1)*cfg.Size)
		_, _ = rand.Read(pool)
	}
	slots := int64(len(pool) / cfg.Size)
	var bar *progressbar.ProgressBar
	if cfg.Progress != nil {
		bar = progressbar.NewOptions64(cfg.Records, progressbar.OptionSetWriter(cfg.Progress),
			progressbar.OptionSetDescription(cfg.Name), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}

	secs := 3600
	rec := newRecorder(secs)
	var mu sync.Mutex // franz-go runs promise callbacks serially per partition, not globally
	var acked atomic.Int64
	start := time.Now()
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Second / time.Duration(cfg.Rate)
	}
	var wg sync.WaitGroup
	for i := int64(0); i < cfg.Records; i++ {
		if ctx.Err() != nil {
			break
		}
		due := time.Now()
		if interval > 0 {
			due = start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d) // pacing an open-loop producer, not waiting for a condition
			}
		}
		r := &kgo.Record{Value: value}
		if pool != nil {
			off := (i % slots) * int64(cfg.Size)
			r.Value = pool[off : off+int64(cfg.Size) : off+int64(cfg.Size)]
		}
		if cfg.DueTimestamps {
			r.Timestamp = due
		}
		if cfg.Keys > 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%int64(cfg.Keys))
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			lat := time.Since(due)
			mu.Lock()
			rec.record(int(due.Sub(start)/time.Second), lat, kafkaErrKind(err), len(r.Value))
			mu.Unlock()
			if n := acked.Add(1); bar != nil && n%1024 == 0 {
				_ = bar.Set64(n)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	res := merge([]*recorder{rec}, secs)
	res.Name, res.Target, res.Duration = cfg.Name, cfg.Topic+"@"+strings.Join(cfg.Brokers, ","), elapsed
	res.Mode = fmt.Sprintf("%d records of %d bytes", cfg.Records, cfg.Size)
	if cfg.Rate > 0 {
		res.Mode += fmt.Sprintf(", open-loop %d/s", cfg.Rate)
	}
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	return res, nil
}

func kafkaErrKind(err error) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return "kafka_" + strings.ToLower(ke.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return "produce"
}
