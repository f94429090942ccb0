package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// tracingConfigYAML is the echo gateway of the tracing scenarios; %s is
// its tracing section ("" for none).
const tracingConfigYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
log: {level: warn, format: json}
%s
functions:
  echo: {runtime: go, handler: echo, concurrency: 256, queue: 4096}
triggers:
  - http: {method: POST, path: /echo, function: echo}
`

// runTracingScenarios measures HTTP → echo with tracing off, then on with
// every trace sampled and with 1% sampled, exporting to a local OTLP/HTTP
// sink. Each figure is a ratio to tracing off measured in the same run
// (twice, first and last; the better counts, so drift can only make
// tracing look costlier).
func runTracingScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	const off = "http → echo, tracing off"
	type run struct{ name, section string }
	runs := []run{
		{"http → echo, tracing on, 100% sampled", "tracing: {otlp_endpoint: %q, sample_ratio: 1.0}"},
		{"http → echo, tracing on, 1% sampled", "tracing: {otlp_endpoint: %q, sample_ratio: 0.01}"},
	}
	any := cfg.wants(off) || cfg.wants("tracing")
	for _, r := range runs {
		any = any || cfg.wants(r.name)
	}
	if !any {
		return nil
	}
	sink, stopSink, err := startSpanSink()
	if err != nil {
		return err
	}
	defer stopSink()

	measure := func(name, section string) (*Result, []string, error) {
		gw, err := startGateway(ctx, cfg, fmt.Sprintf(tracingConfigYAML, section))
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: %w", err)
		}
		defer gw.Stop()
		out, err := cfg.http(ctx, name, "http://"+gw.Addr("http")+"/echo")
		if err != nil {
			return nil, nil, err
		}
		var notes []string
		if section != "" {
			m, err := scrape(ctx, "http://"+gw.Addr("admin")+"/metrics")
			if err != nil {
				return nil, nil, err
			}
			notes = append(notes, fmt.Sprintf("%.0f spans exported, %.0f dropped", m["sluice_trace_spans_exported_total"], m["sluice_trace_spans_dropped_total"]))
		}
		if n := out.ErrorCount(); n > 0 {
			notes = append(notes, fmt.Sprintf("%d failed requests", n))
		}
		return out, notes, nil
	}

	first, _, err := measure(off, "")
	if err != nil {
		return err
	}
	var measured []*Scenario
	for _, r := range runs {
		out, notes, err := measure(r.name, fmt.Sprintf(r.section, sink))
		if err != nil {
			return err
		}
		s := &Scenario{Name: r.name, Result: out, Notes: notes}
		measured = append(measured, s)
	}
	last, _, err := measure(off, "")
	if err != nil {
		return err
	}
	best := first
	if last.Throughput > best.Throughput {
		best = last
	}
	base := &Scenario{Name: off, Result: best,
		Notes: []string{fmt.Sprintf("first %.0f/s, last %.0f/s; the tracing ratios use the better", first.Throughput, last.Throughput)}}
	res.Scenarios = append(res.Scenarios, base)
	for _, s := range measured {
		s.Ceiling = base.Name
		s.Ratio = s.Result.Throughput / best.Throughput
		s.Notes = append(s.Notes, fmt.Sprintf("p99 %.2fms against %.2fms with tracing off", s.Result.Latency.P99, best.Latency.P99))
		res.Scenarios = append(res.Scenarios, s)
	}
	return nil
}

// startSpanSink serves OTLP/HTTP on loopback and discards what it is sent,
// answering as a collector does (an empty ExportTraceServiceResponse is
// zero bytes of protobuf).
func startSpanSink() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
