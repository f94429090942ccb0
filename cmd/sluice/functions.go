package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/invoker/custom"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
	"github.com/sluicehq/sluice/plugins/goplugin"
	"github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/process"
	"github.com/sluicehq/sluice/tracing"
)

// function is one configured function, wired: its worker inside its
// invoker, and what must be closed with it.
type function struct {
	cfg     *config.File
	fn      *config.Function
	inv     *invoker.Function
	closers []io.Closer
}

// functionDeps are what building a function needs besides its config.
type functionDeps struct {
	log *zerolog.Logger
	// logTap, when set, also receives every function output line (for the
	// Lambda invoke API's log tails).
	logTap plugins.LogFunc
	// deadLetterTopic builds the dead letter of a function with
	// dead_letter.topic; nil when Kafka is not wired.
	deadLetterTopic func(fn *config.Function) (invoker.DeadLetter, error)
	// custom, when set, receives the functions' custom metrics: EMF lines
	// on their output and Go functions' plugins.PutMetric.
	custom *custom.Registry
	// onInvocation, when set, receives every invocation (the status page).
	onInvocation func(invoker.Invocation)
	// tracer is nil when tracing is off.
	tracer *tracing.Tracer
}

// buildFunction creates fn's worker and invoker, not yet started.
func buildFunction(cfg *config.File, fn *config.Function, d functionDeps) (*function, error) {
	log := d.log.With().Str("function", fn.Name).Logger()
	logFn := functionLog(&log, fn.Name, d.logTap, d.custom)
	restarts := metrics.GetOrCreateCounter(fmt.Sprintf(`sluice_worker_restarts_total{function=%q}`, fn.Name))
	onRestart := func(reason error) {
		restarts.Inc()
		log.Warn().Err(reason).Msg("worker replaced")
	}

	icfg := fn.Invoker()
	sc := fn.Scaling
	coldStarts := metrics.GetOrCreateCounter(fmt.Sprintf(`sluice_cold_starts_total{function=%q}`, fn.Name))
	initDur := metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf(`sluice_init_duration_seconds{function=%q}`, fn.Name))
	ooms := metrics.GetOrCreateCounter(fmt.Sprintf(`sluice_oom_kills_total{function=%q}`, fn.Name))
	onColdStart := func(d time.Duration) {
		coldStarts.Inc()
		initDur.Update(d.Seconds())
	}
	onOOM := func() {
		ooms.Inc()
		log.Warn().Int64("memory_mb", fn.Memory>>20).Msg("function ran out of memory; its instance is replaced")
	}
	var w plugins.Worker
	var closers []io.Closer
	switch fn.Runtime {
	case config.RuntimeGo:
		h, ok := builtin.Lookup(fn.Handler)
		if !ok {
			return nil, fmt.Errorf("%s: no builtin function %q (have %s)", cfg.At(fn.Pos), fn.Handler, strings.Join(builtin.Names(), ", "))
		}
		bw := builtin.NewWorker(fn.Name, h, fn.Env)
		if d.custom != nil {
			bw.SetMetrics(d.custom.Sink(fn.Name))
		}
		w = bw
	case config.RuntimePlugin:
		pw, err := goplugin.New(fn.Name, fn.Path, fn.Env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Where("functions."+fn.Name+".path"), err)
		}
		if d.custom != nil {
			pw.SetMetrics(d.custom.Sink(fn.Name))
		}
		w = pw
	case config.RuntimeProcess:
		p, err := process.New(fn.Name, process.Config{
			Command:     fn.Command,
			Env:         fn.Env,
			Min:         sc.Min,
			Max:         sc.Max,
			Idle:        sc.Idle,
			Memory:      fn.Memory,
			Limit:       memlimit.Default(),
			OnRestart:   onRestart,
			OnColdStart: onColdStart,
			OnOOM:       onOOM,
		}, logFn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.At(fn.Pos), err)
		}
		w = p
		trackInstances(fn.Name, p.Instances)
		icfg.Concurrency = capConcurrency(icfg.Concurrency, sc.Max)
	case config.RuntimeLambda:
		dir, err := absDir(fn.Dir)
		if err != nil {
			return nil, fmt.Errorf("%s: dir: %w", cfg.Where("functions."+fn.Name+".dir"), err)
		}
		p, err := lambda.New(fn.Name, lambda.Config{
			Command:          fn.Command,
			Dir:              dir,
			Handler:          fn.Handler,
			Min:              sc.Min,
			Max:              sc.Max,
			Idle:             sc.Idle,
			Env:              fn.Env,
			Memory:           fn.Memory,
			Limit:            memlimit.Default(),
			Timeout:          effectiveTimeout(icfg),
			Region:           functionRegion(cfg),
			BootstrapServers: cfg.Kafka.Brokers,
			OnRestart:        func(_ int, reason error) { onRestart(reason) },
			OnColdStart:      onColdStart,
			OnOOM:            onOOM,
		}, logFn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.At(fn.Pos), err)
		}
		w = p
		trackInstances(fn.Name, p.Instances)
		icfg.Concurrency = capConcurrency(icfg.Concurrency, sc.Max)
	case config.RuntimePython, config.RuntimeNodejs, config.RuntimeJava:
		p, clients, err := managedPool(cfg, fn, effectiveTimeout(icfg), func(_ int, reason error) { onRestart(reason) }, logFn)
		if err != nil {
			return nil, err
		}
		w = p
		closers = append(closers, clients)
		trackInstances(fn.Name, p.Instances)
		icfg.Concurrency = capConcurrency(icfg.Concurrency, sc.Max)
	default:
		return nil, fmt.Errorf("%s: unknown runtime %q", cfg.At(fn.Pos), fn.Runtime)
	}

	f := &function{cfg: cfg, fn: fn, closers: closers}
	var dlq invoker.DeadLetter
	switch {
	case fn.DeadLetter.File != "":
		fdl, err := invoker.OpenFileDeadLetter(fn.DeadLetter.File)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Where("functions."+fn.Name+".dead_letter.file"), err)
		}
		dlq = fdl
		f.closers = append(f.closers, fdl)
	case fn.DeadLetter.Topic != "" && d.deadLetterTopic != nil:
		tdl, err := d.deadLetterTopic(fn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Where("functions."+fn.Name+".dead_letter.topic"), err)
		}
		dlq = tdl
	}
	inv, err := invoker.New(fn.Name, icfg, w, invoker.Deps{Logger: d.log, DeadLetter: dlq, OnInvocation: d.onInvocation, Tracer: d.tracer})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.At(fn.Pos), err)
	}
	f.inv = inv
	return f, nil
}

// instanceCounts are the current pools' counts by function, read by the
// sluice_instances gauges (created once per function and process, while a
// function's pool may be built more than once).
var instanceCounts sync.Map // function name -> *atomic.Pointer[func() (busy, idle, starting int)]

// trackInstances exports counts as sluice_instances{function,state}.
func trackInstances(function string, counts func() (busy, idle, starting int)) {
	v, loaded := instanceCounts.LoadOrStore(function, new(atomic.Pointer[func() (int, int, int)]))
	ptr := v.(*atomic.Pointer[func() (int, int, int)])
	ptr.Store(&counts)
	if loaded {
		return
	}
	for i, state := range []string{"busy", "idle", "starting"} {
		metrics.GetOrCreateGauge(fmt.Sprintf(`sluice_instances{function=%q,state=%q}`, function, state), func() float64 {
			f := ptr.Load()
			if f == nil {
				return 0
			}
			busy, idle, starting := (*f)()
			return float64([3]int{busy, idle, starting}[i])
		})
	}
}

// capConcurrency bounds a function's batches in flight by its processes:
// each serves one batch at a time, and a batch waiting inside the worker for
// a process would spend its deadline there instead of in the queue.
func capConcurrency(c, instances int) int {
	instances = max(instances, 1)
	if c == 0 || c > instances {
		return instances
	}
	return c
}

// functionRegion is the region of the functions' ARNs, the one the invoke
// API names and the one a Lambda runtime sees (its invoked function ARN,
// AWS_REGION): server.invoke_api.region, else gateway's default.
func functionRegion(cfg *config.File) string {
	if r := cfg.Server.InvokeAPI.Region; r != "" {
		return r
	}
	return gateway.DefaultLambdaRegion
}

func effectiveTimeout(c invoker.Config) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return invoker.DefaultTimeout
}

// functionLog turns a function's output lines into log lines tagged with
// function and request id, at info level, message the line itself. An
// Embedded Metric Format line also becomes custom metrics in reg (when not
// nil); one that breaks the format is logged with a warning saying why, and
// so is the first datum dropped over the function's series cap.
func functionLog(log *zerolog.Logger, name string, tap plugins.LogFunc, reg *custom.Registry) plugins.LogFunc {
	var capWarned atomic.Bool
	return func(requestID string, line []byte) {
		if tap != nil {
			tap(requestID, line)
		}
		log.Info().Str("request_id", requestID).Str("source", "function").Bytes("message", line).Send()
		if reg == nil || !plugins.IsEMF(line) {
			return
		}
		ms, err := plugins.DecodeEMF(line)
		if err != nil {
			if !errors.Is(err, plugins.ErrNotEMF) {
				log.Warn().Str("request_id", requestID).Err(err).Msg("invalid EMF line: no metric recorded")
			}
			return
		}
		for i := range ms {
			if !reg.Add(name, &ms[i]) && capWarned.CompareAndSwap(false, true) {
				log.Warn().Str("request_id", requestID).Int("max_series", custom.DefaultMaxSeries).
					Msg("custom metrics: the function holds the most series allowed; new series are dropped and counted in sluice_custom_metrics_dropped_total")
			}
		}
	}
}

// startFunctions starts every function's workers at once, since process
// pools and Lambda runtimes take time to come up, and returns the first
// failure (all of them, joined).
func startFunctions(ctx context.Context, fns []*function) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.inv.Start(ctx); err != nil {
				where := f.cfg.At(f.fn.Pos)
				var ie *lambda.InitError
				if f.fn.Handler != "" && errors.As(err, &ie) {
					// The runtime could not load its handler: point at it.
					where = f.cfg.Where("functions." + f.fn.Name + ".handler")
				}
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeFunctions drains every function until ctx ends, then closes what
// each holds.
func closeFunctions(ctx context.Context, fns []*function) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.inv.Close(ctx)
			for _, c := range f.closers {
				err = errors.Join(err, c.Close())
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
