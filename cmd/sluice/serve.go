package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cloudflare/tableflip"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/invoker"
)

func cmdServe(args []string, stderr io.Writer) error {
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
	return serve(cfg, &log, gen)
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
}

func serve(cfg *config.File, log *zerolog.Logger, gen int) error {
	started := time.Now()
	upg, err := tableflip.New(tableflip.Options{PIDFile: cfg.Server.Pidfile, UpgradeTimeout: upgradeTimeout(cfg)})
	if err != nil {
		return fmt.Errorf("cannot start the upgrader: %w", err)
	}
	defer upg.Stop()

	s := &server{cfg: cfg, log: log, byFn: map[string]*invoker.Function{}}
	if err := s.build(); err != nil {
		return &exitError{code: 2, err: err}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startFunctions(ctx, s.fns); err != nil {
		s.stopFunctions(time.Second)
		return err
	}
	if err := s.kafka.startTriggers(); err != nil {
		s.stopFunctions(time.Second)
		return err
	}

	ln, err := upg.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		s.stopFunctions(time.Second)
		return fmt.Errorf("%s: cannot listen: %w", cfg.Where("server.listen"), err)
	}
	adminLn, err := upg.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		s.stopFunctions(time.Second)
		return fmt.Errorf("%s: cannot listen: %w", cfg.Where("server.admin_listen"), err)
	}

	errc := make(chan error, 2)
	go func() { errc <- s.gw.Serve(ln) }()
	go func() { errc <- s.admin.Serve(adminLn) }()

	if err := upg.Ready(); err != nil {
		return fmt.Errorf("cannot signal readiness: %w", err)
	}
	log.Log().Dur("startup_ms", time.Since(started)).Int("functions", len(s.fns)).Int("pid", os.Getpid()).Msg("ready")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.upgrade(upg, gen)
				continue
			}
			log.Log().Str("signal", sig.String()).Msg("shutting down: draining")
			return s.shutdown()
		case <-upg.Exit():
			log.Log().Msg("new process ready: draining")
			return s.shutdown()
		case err := <-errc:
			if err != nil && !errors.Is(err, gateway.ErrServerClosed) {
				log.Error().Err(err).Msg("listener failed")
				_ = s.shutdown()
				return err
			}
		}
	}
}

func upgradeTimeout(cfg *config.File) time.Duration {
	// A new process must start every worker before it is ready; allow for
	// slow runtimes, but not forever.
	return 2 * time.Minute
}

// upgrade starts the next generation from the binary on disk. The new
// process inherits the listeners; this one keeps serving until it is ready.
func (s *server) upgrade(upg *tableflip.Upgrader, gen int) {
	start := time.Now()
	os.Setenv(generationEnv, strconv.Itoa(gen+1))
	err := upg.Upgrade()
	os.Setenv(generationEnv, strconv.Itoa(gen))
	if err != nil {
		metrics.GetOrCreateCounter(`sluice_reloads_total{result="failed"}`).Inc()
		s.log.Error().Err(err).Dur("took_ms", time.Since(start)).Msg("reload failed: still serving")
		return
	}
	metrics.GetOrCreateCounter(`sluice_reloads_total{result="ok"}`).Inc()
	s.log.Log().Dur("took_ms", time.Since(start)).Int("next_generation", gen+1).Msg("reload: new process ready")
}

// build creates every function and the gateway, starting nothing.
func (s *server) build() error {
	cfg := s.cfg
	if err := s.kafka.startEmbedded(cfg, s); err != nil {
		return err
	}
	if err := s.kafka.newPublisher(cfg, s); err != nil {
		return err
	}
	s.tap = gateway.NewLogTap()
	deps := functionDeps{log: s.log, logTap: s.tap.Log}
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
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	gcfg := gateway.Config{
		Listen:      cfg.Server.Listen,
		MaxBody:     int(cfg.Server.MaxBody),
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
	}
	if err := s.kafka.buildTriggers(cfg, s); err != nil {
		return err
	}
	glog := *s.log
	gw, err := gateway.New(gcfg, routes, gateway.Deps{Logger: &glog})
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
	return nil
}

// shutdown drains in order: stop taking requests and finish those in
// flight, then drain the functions' queues, then let the last answers out.
func (s *server) shutdown() error {
	start := time.Now()
	drain := s.cfg.Server.DrainTimeout
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	gwErr := s.gw.Shutdown(ctx)
	trErr := s.kafka.closeTriggers(ctx)
	fnErr := closeFunctions(ctx, s.fns)
	s.kafka.closeRest()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	_ = s.gw.Wait(wctx)
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	_ = s.admin.Shutdown(actx)
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
