package main

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/tracing"
)

// newTracer creates the tracer when the tracing section (or
// OTEL_EXPORTER_OTLP_ENDPOINT) names a collector; s.tracer stays nil,
// tracing off, otherwise.
func (s *server) newTracer() error {
	tc := s.cfg.Tracing
	if !tc.Enabled() {
		return nil
	}
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	tr, err := tracing.New(tracing.Config{
		Endpoint:    tc.OTLPEndpoint,
		SampleRatio: tc.SampleRatio,
		ServiceName: tc.ServiceName,
	}, tracing.Deps{Logger: s.log, Metrics: set})
	if err != nil {
		metrics.UnregisterSet(set, true)
		return err
	}
	s.tracer, s.tracerSet = tr, set
	s.log.Info().Str("otlp_endpoint", tc.OTLPEndpoint).Float64("sample_ratio", tc.SampleRatio).Msg("tracing on")
	return nil
}

// stopTracer exports the spans still queued, briefly: a collector that is
// down must not hold the exit up.
func (s *server) stopTracer() {
	if s.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.tracer.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("cannot export the last spans")
	}
	metrics.UnregisterSet(s.tracerSet, true)
}
