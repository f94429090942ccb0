package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cloudflare/tableflip"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/invoker/custom"
	"github.com/sluicehq/sluice/tracing"
)

func cmdServe(args []string, stderr io.Writer) (err error) {
	// A process started by a reload tells the process it replaces why it
	// failed, when it fails before it is ready: a bad config, a worker
	// that does not start.
	ho := takeHandoff()
	defer func() { ho.fail(err) }()
	fs := flag.NewFlagSet("sluice serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded dev default, configs/sluice.yaml)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("usage: sluice serve [-c FILE]")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	gen := generation()
	log := newLogger(cfg.Log, stderr, gen)
	return serve(cfg, &log, gen, ho)
}

// server is a running gateway process: its functions, listeners and
// triggers, and the order they stop in.
type server struct {
	cfg   *config.File
	log   *zerolog.Logger
	fns   []*function
	byFn  map[string]*invoker.Function
	gw    *gateway.Server
	admin *gateway.Admin
	kafka kafkaParts
	tap   *gateway.LogTap
	// custom holds the functions' custom metrics, written on /metrics.
	custom *custom.Registry
	// status is the admin listener's status page.
	status *gateway.Status
	// tracer is nil when tracing is off.
	tracer    *tracing.Tracer
	tracerSet *metrics.Set

	upg     *tableflip.Upgrader
	handoff *handoff   // nil unless a reload started this process
	errc    chan error // the listeners' Serve results
}

// upgradeTimeout bounds how long a new process may take to get ready: it
// must start every worker first, so allow for slow runtimes, but not
// forever. The new process gives up by itself at this point, cleanly;
// tableflip kills it upgradeKillGrace later if it could not.
const (
	upgradeTimeout   = 2 * time.Minute
	upgradeKillGrace = 30 * time.Second
)

// drainWatchdog is how long past drain_timeout a stopping process may
// take before it exits anyway: a stuck close must not keep the old
// process, and the embedded broker's address, forever.
const drainWatchdog = 30 * time.Second

func serve(cfg *config.File, log *zerolog.Logger, gen int, ho *handoff) error {
	started := time.Now()
	// Signals are ours from the start: a SIGTERM while workers start stops
	// the start cleanly instead of killing the process, workers left behind.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	upg, err := tableflip.New(tableflip.Options{PIDFile: cfg.Server.Pidfile, UpgradeTimeout: upgradeTimeout + upgradeKillGrace})
	if err != nil {
		return fmt.Errorf("cannot start the upgrader: %w", err)
	}
	defer upg.Stop()
	if ho == nil && upg.HasParent() {
		// Started by a reload whose handoff file could not be made: a
		// blank one keeps the reload's logic, without the old process's
		// details.
		ho = &handoff{Started: started}
	}

	if usesSubprocesses(cfg) {
		l := memlimit.Default()
		log.Info().Str("mechanism", string(l.Mechanism())).Msg(l.Describe())
	}
	s := &server{cfg: cfg, log: log, byFn: map[string]*invoker.Function{}, upg: upg, handoff: ho, custom: custom.New(0), status: gateway.NewStatus(0)}
	metrics.RegisterMetricsWriter(s.custom.WritePrometheus)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ho != nil {
		// Give up cleanly before the old process's tableflip kills us.
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, upgradeTimeout)
		defer c()
	}
	sig, err := s.startup(ctx, cancel, sigs)
	if err != nil {
		if sig != nil {
			return fmt.Errorf("stopped by %s while starting: %w", sig, err)
		}
		return err
	}
	if sig != nil {
		log.Log().Str("signal", sig.String()).Msg("shutting down before ready: draining")
		_ = s.shutdown()
		return fmt.Errorf("stopped by %s while starting", sig)
	}
	if err := upg.Ready(); err != nil {
		_ = s.shutdown()
		return fmt.Errorf("cannot signal readiness: %w", err)
	}
	ho.markReady()
	r := newReloader(s, gen)
	log.Log().Dur("startup_ms", time.Since(started)).Int("functions", len(s.fns)).Int("pid", os.Getpid()).Msg("ready")
	return s.run(sigs, r)
}

// startup builds and starts everything, then serves the listeners. A
// SIGTERM or SIGINT meanwhile cancels ctx (what is starting stops) and is
// returned; a SIGHUP is refused, there being nothing to reload yet.
func (s *server) startup(ctx context.Context, cancel context.CancelFunc, sigs <-chan os.Signal) (os.Signal, error) {
	var got os.Signal
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					reloadCounter(reloadRefused).Inc()
					s.log.Warn().Msg("reload refused: this process is still starting")
					continue
				}
				got = sig
				cancel()
				return
			case <-stop:
				return
			}
		}
	}()
	err := s.start(ctx)
	close(stop)
	<-watched
	return got, err
}

// start builds every part and starts them in order: functions, Kafka
// triggers, then the listeners (inherited from the old process on a
// reload). Whatever it started is stopped again when it fails.
func (s *server) start(ctx context.Context) error {
	cfg := s.cfg
	if err := s.build(); err != nil {
		s.kafka.closeRest()
		return &exitError{code: 2, err: err}
	}
	if err := startFunctions(ctx, s.fns); err != nil {
		s.stopFunctions(time.Second)
		return err
	}
	if err := s.kafka.startTriggers(ctx); err != nil {
		s.stopFunctions(time.Second)
		return err
	}
	ln, err := s.listen("http", cfg.Server.Listen)
	if err != nil {
		s.stopFunctions(time.Second)
		return fmt.Errorf("%s: cannot listen: %w", cfg.Where("server.listen"), err)
	}
	adminLn, err := s.listen("admin", cfg.Server.AdminListen)
	if err != nil {
		s.stopFunctions(time.Second)
		return fmt.Errorf("%s: cannot listen: %w", cfg.Where("server.admin_listen"), err)
	}
	s.errc = make(chan error, 2)
	go func() { s.errc <- s.gw.Serve(ln) }()
	go func() { s.errc <- s.admin.Serve(adminLn) }()
	return nil
}

// listen returns the listener named name on addr: the one the process
// being replaced passes on, or a new one. tableflip keys what it passes
// on by network and address, and two listeners on "127.0.0.1:0" would
// share a key and be swapped: the name keeps them apart.
func (s *server) listen(name, addr string) (net.Listener, error) {
	return s.upg.ListenWithCallback("tcp", name+"@"+addr, func(network, _ string) (net.Listener, error) {
		return net.Listen(network, addr)
	})
}

// run serves until told to stop, or until a reload hands over to a new
// process; then it drains.
func (s *server) run(sigs <-chan os.Signal, r *reloader) error {
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				r.start()
				continue
			}
			r.abort(sig)
			s.log.Log().Str("signal", sig.String()).Msg("shutting down: draining")
			s.exitAnyway()
			err := s.shutdown()
			removePidfile(s.cfg.Server.Pidfile)
			return err
		case res := <-r.results:
			r.finish(res, nil)
		case <-s.upg.Exit():
			r.handOver()
			s.exitAnyway()
			drainStart := time.Now()
			err := s.shutdown()
			r.drained(time.Since(drainStart))
			return err
		case err := <-s.errc:
			if err != nil && !errors.Is(err, gateway.ErrServerClosed) {
				s.log.Error().Err(err).Msg("listener failed")
				r.abort(syscall.SIGTERM)
				_ = s.shutdown()
				return err
			}
		}
	}
}

// exitAnyway ends the process if the drain that starts now overruns
// drain_timeout by drainWatchdog.
func (s *server) exitAnyway() {
	d := s.cfg.Server.DrainTimeout + drainWatchdog
	time.AfterFunc(d, func() {
		s.log.Error().Dur("after_ms", d).Msg("drain did not finish: exiting anyway")
		os.Exit(1)
	})
}

// removePidfile removes path when it still holds this process's pid (a
// successor's is left alone).
func removePidfile(path string) {
	if path == "" {
		return
	}
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}

// build creates every function and the gateway, starting nothing.
func (s *server) build() error {
	cfg := s.cfg
	if err := s.newTracer(); err != nil {
		return err
	}
	if err := s.kafka.startEmbedded(cfg, s); err != nil {
		return err
	}
	if err := s.kafka.newPublisher(cfg, s); err != nil {
		return err
	}
	s.tap = gateway.NewLogTap()
	deps := functionDeps{log: s.log, logTap: s.tap.Log, custom: s.custom, onInvocation: s.status.Observe, tracer: s.tracer}
	if s.kafka.publisher != nil {
		deps.deadLetterTopic = func(fn *config.Function) (invoker.DeadLetter, error) {
			return s.kafka.publisher.DeadLetterTo(fn.DeadLetter.Topic), nil
		}
	}
	var errs []error
	for i := range cfg.Functions {
		f, err := buildFunction(cfg, &cfg.Functions[i], deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.fns = append(s.fns, f)
		s.byFn[f.fn.Name] = f.inv
		s.status.AddFunction(gateway.StatusFunction{Name: f.fn.Name, Runtime: f.fn.Runtime, Instances: f.inv.Config().Concurrency})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	gcfg := gateway.Config{
		Listen:      cfg.Server.Listen,
		MaxBody:     int(cfg.Server.MaxBody),
		MaxHeaders:  cfg.Server.MaxHeaders,
		ReadTimeout: cfg.Server.ReadTimeout,
	}
	if t := cfg.Server.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Where("server.tls"), err)
		}
		gcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var routes []gateway.Route
	for _, t := range cfg.Triggers {
		if t.Kind != config.KindHTTP {
			continue
		}
		r := gateway.Route{
			Method:     t.HTTP.Method,
			Path:       t.HTTP.Path,
			Function:   s.byFn[t.Function],
			Mode:       gateway.Mode(t.HTTP.Mode),
			AsyncTopic: t.HTTP.AsyncTopic,
		}
		if r.AsyncTopic != "" {
			r.Publisher = s.kafka.publisher
		}
		match, err := compileFilter(cfg, &t)
		if err != nil {
			return err
		}
		r.Filter = match
		routes = append(routes, r)
		s.status.AddTrigger(gateway.StatusTrigger{Name: t.HTTP.Method + " " + t.HTTP.Path, Kind: t.Kind, Function: t.Function})
	}
	if err := s.kafka.buildTriggers(cfg, s); err != nil {
		return err
	}
	for _, t := range cfg.Triggers {
		switch t.Kind {
		case config.KindSchedule:
			s.status.AddTrigger(gateway.StatusTrigger{Name: t.Schedule.Name, Kind: t.Kind, Function: t.Function})
		case config.KindStorage:
			s.status.AddTrigger(gateway.StatusTrigger{Name: t.Storage.Path, Kind: t.Kind, Function: t.Function})
		}
	}
	glog := *s.log
	gw, err := gateway.New(gcfg, routes, gateway.Deps{Logger: &glog, Tracer: s.tracer})
	if err != nil {
		return err
	}
	s.gw = gw
	if err := s.addHandlers(); err != nil {
		return err
	}

	alog := *s.log
	invs := make([]*invoker.Function, 0, len(s.fns))
	for _, f := range s.fns {
		invs = append(invs, f.inv)
	}
	s.admin = gateway.NewAdmin(gateway.AdminConfig{Token: cfg.Server.AdminToken}, gateway.ReadyFunctions(invs...), gateway.Deps{Logger: &alog})
	s.admin.SetStatus(s.status)
	return nil
}

// shutdown drains in order: stop taking requests and Kafka records and
// finish those in flight (side by side: both only need the functions),
// then drain the functions' queues, then let the last answers out.
func (s *server) shutdown() error {
	start := time.Now()
	drain := s.cfg.Server.DrainTimeout
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	s.kafka.stopDeferred()
	var gwErr, trErr error
	var wg sync.WaitGroup
	wg.Go(func() { gwErr = s.gw.Shutdown(ctx) })
	wg.Go(func() { trErr = s.kafka.closeTriggers(ctx) })
	wg.Wait()
	fnErr := closeFunctions(ctx, s.fns)
	s.kafka.closeRest()
	// Requests still in flight at drain_timeout were answered 503 when
	// their functions closed: let those answers out.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	_ = s.gw.Wait(wctx)
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	_ = s.admin.Shutdown(actx)
	s.stopTracer()
	err := errors.Join(gwErr, trErr, fnErr)
	// Lifecycle lines are logged whatever the level: an operator always
	// sees a process start, get ready and stop.
	ev := s.log.Log()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	ev.Dur("drained_in_ms", time.Since(start)).Msg("stopped")
	return nil
}

func (s *server) stopFunctions(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = s.kafka.closeTriggers(ctx)
	_ = closeFunctions(ctx, s.fns)
	s.kafka.closeRest()
}
