package tracing

import (
	"context"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// processor is a bounded batching span processor that counts what it drops.
// The SDK's BatchSpanProcessor drops silently when its queue is full; a
// dead collector must show up as a number on /metrics, and never as a
// request waiting for the exporter.
type processor struct {
	exp      sdktrace.SpanExporter
	log      zerolog.Logger
	queue    chan sdktrace.ReadOnlySpan
	batch    int
	linger   time.Duration
	timeout  time.Duration
	dropped  *metrics.Counter
	exported *metrics.Counter

	lastWarn time.Time // of the last export failure logged; run's own

	flush    chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.RWMutex // held for reading by OnEnd, for writing by Shutdown
	closed   bool
}

// warnEvery spaces the log lines of failed exports.
const warnEvery = 10 * time.Second

func newProcessor(exp sdktrace.SpanExporter, cfg Config, log zerolog.Logger, set *metrics.Set) *processor {
	p := &processor{
		exp:      exp,
		log:      log,
		queue:    make(chan sdktrace.ReadOnlySpan, cfg.QueueSize),
		batch:    cfg.BatchSize,
		linger:   cfg.BatchTimeout,
		timeout:  cfg.ExportTimeout,
		dropped:  set.GetOrCreateCounter(`sluice_trace_spans_dropped_total`),
		exported: set.GetOrCreateCounter(`sluice_trace_spans_exported_total`),
		flush:    make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go p.run()
	return p
}

var _ sdktrace.SpanProcessor = (*processor)(nil)

func (p *processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export without ever blocking: a full queue drops it.
func (p *processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Inc()
		return
	}
	select {
	case p.queue <- s:
	default:
		p.dropped.Inc()
	}
}

// run exports batches: as soon as a span is queued it waits up to linger
// for more (or until a batch is full), then exports them in one request.
func (p *processor) run() {
	defer close(p.done)
	buf := make([]sdktrace.ReadOnlySpan, 0, p.batch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case s := <-p.queue:
			buf = append(buf, s)
			timer.Reset(p.linger)
		collect:
			for len(buf) < p.batch {
				select {
				case s := <-p.queue:
					buf = append(buf, s)
				case <-timer.C:
					break collect
				case <-p.stop:
					break collect
				}
			}
			timer.Stop()
			buf = p.export(buf)
		case ack := <-p.flush:
			buf = p.drain(buf)
			close(ack)
		case <-p.stop:
			p.drain(buf)
			return
		}
	}
}

// drain exports everything queued.
func (p *processor) drain(buf []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-p.queue:
			buf = append(buf, s)
			if len(buf) == p.batch {
				buf = p.export(buf)
			}
		default:
			return p.export(buf)
		}
	}
}

func (p *processor) export(buf []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(buf) == 0 {
		return buf
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	err := p.exp.ExportSpans(ctx, buf)
	cancel()
	if err != nil {
		p.dropped.Add(len(buf))
		// A dead collector fails every export: one line per interval
		// says so without flooding the log.
		if now := time.Now(); now.Sub(p.lastWarn) >= warnEvery {
			p.lastWarn = now
			p.log.Warn().Err(err).Int("spans", len(buf)).Msg("cannot export spans; dropped (sluice_trace_spans_dropped_total counts them)")
		}
	} else {
		p.exported.Add(len(buf))
	}
	clear(buf)
	return buf[:0]
}

// ForceFlush exports what is queued, or returns ctx's error.
func (p *processor) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case p.flush <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and shuts the exporter down.
func (p *processor) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.stop)
	})
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.exp.Shutdown(ctx)
}
