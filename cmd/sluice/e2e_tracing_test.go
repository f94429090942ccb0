package main

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice/plugins"
)

// otlpCollector is a test OTLP/HTTP collector: it decodes each protobuf
// ExportTraceServiceRequest posted to /v1/traces and keeps its spans.
type otlpCollector struct {
	url      string
	mu       sync.Mutex
	spans    []*tracepb.Span
	services map[string]bool
}

func startCollector(t *testing.T) *otlpCollector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &otlpCollector{url: "http://" + ln.Addr().String(), services: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					c.services[a.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// trace returns the spans of trace id (hex) received so far, by name.
func (c *otlpCollector) trace(id string) map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range c.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out[s.Name] = s
		}
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key != key {
			continue
		}
		switch v := a.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return fmt.Sprint(v.IntValue)
		}
	}
	return ""
}

// buildTraceLambda builds the test Lambda function into dir.
func buildTraceLambda(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tracelambda")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice/testdata/tracelambda")
	cmd.Dir = repo0(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// traceLines returns the _X_AMZN_TRACE_ID values the Lambda function saw.
func traceLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]string
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m["xray"])
		}
	}
	return out
}

// TestE2ETracing sends an HTTP request through an async route, the
// embedded Kafka broker and a cloudevents trigger to a Lambda runtime, and
// checks what a real OTLP/HTTP collector receives: one trace across it
// all, each span the child of the one before, and the runtime's
// _X_AMZN_TRACE_ID naming the invocation span. Then a sync request that
// carries a traceparent continues that trace.
func TestE2ETracing(t *testing.T) {
	t.Parallel()
	sluiceBin(t)
	dir := t.TempDir()
	lam := buildTraceLambda(t, dir)
	col := startCollector(t)
	broker := freeAddr(t)
	traceFile := filepath.Join(dir, "trace.jsonl")
	p := startSluice(t, writeConfig(t, dir, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
kafka: {embedded: true, embedded_partitions: 1, brokers: ["%s"]}
tracing: {otlp_endpoint: "%s", sample_ratio: 1.0, service_name: sluice-e2e}
functions:
  lam: {runtime: lambda, command: [%s], env: {TRACE_FILE: %s}}
triggers:
  - http: {method: POST, path: /jobs, function: lam, mode: async, async_topic: jobs}
  - http: {method: POST, path: /now, function: lam}
`, broker, col.url, lam, traceFile)))

	r := do(t, "POST", p.http+"/jobs", "application/json", []byte(`{"job":1}`))
	if r.code != 202 {
		t.Fatalf("async: status %d: %s", r.code, r.body)
	}
	tc, ok := plugins.ParseTraceParent(r.header.Get("Traceparent"))
	if !ok || !tc.Sampled() {
		t.Fatalf("202 carries traceparent %q", r.header.Get("Traceparent"))
	}
	traceID := hex.EncodeToString(tc.TraceID[:])
	var spans map[string]*tracepb.Span
	names := []string{"POST /jobs", "process jobs", "queue lam", "batch lam", "invoke lam"}
	waitFor(t, 60*time.Second, "the spans of the async request", func() bool {
		spans = col.trace(traceID)
		for _, n := range names {
			if spans[n] == nil {
				return false
			}
		}
		return true
	})
	id := func(n string) string { return hex.EncodeToString(spans[n].SpanId) }
	parent := func(n string) string { return hex.EncodeToString(spans[n].ParentSpanId) }
	if parent("POST /jobs") != "" {
		t.Errorf("the request span has a parent, %s: no traceparent came in", parent("POST /jobs"))
	}
	if id("POST /jobs") != hex.EncodeToString(tc.SpanID[:]) {
		t.Errorf("the response's traceparent names span %x, the request span is %s", tc.SpanID, id("POST /jobs"))
	}
	for child, want := range map[string]string{
		"process jobs": "POST /jobs",
		"queue lam":    "process jobs",
		"batch lam":    "process jobs",
		"invoke lam":   "batch lam",
	} {
		if parent(child) != id(want) {
			t.Errorf("span %q has parent %s, want %q (%s)", child, parent(child), want, id(want))
		}
	}
	for n, kind := range map[string]tracepb.Span_SpanKind{
		"POST /jobs":   tracepb.Span_SPAN_KIND_SERVER,
		"process jobs": tracepb.Span_SPAN_KIND_CONSUMER,
		"invoke lam":   tracepb.Span_SPAN_KIND_INTERNAL,
	} {
		if spans[n].Kind != kind {
			t.Errorf("span %q is of kind %v, want %v", n, spans[n].Kind, kind)
		}
	}
	inv := spans["invoke lam"]
	if attr(inv, "faas.name") != "lam" || attr(inv, "sluice.attempt") != "1" || attr(inv, "sluice.outcome") != "success" {
		t.Errorf("invocation span attributes: %v", inv.Attributes)
	}
	if attr(spans["process jobs"], "messaging.destination.name") != "jobs" {
		t.Errorf("record span attributes: %v", spans["process jobs"].Attributes)
	}
	wantXRay := fmt.Sprintf("Root=1-%s-%s;Parent=%s;Sampled=1", traceID[:8], traceID[8:], id("invoke lam"))
	waitFor(t, 30*time.Second, "the Lambda function's trace line", func() bool { return len(traceLines(t, traceFile)) == 1 })
	t.Logf("trace %s: the runtime saw _X_AMZN_TRACE_ID=%s", traceID, traceLines(t, traceFile)[0])
	if got := traceLines(t, traceFile)[0]; got != wantXRay {
		t.Errorf("the runtime saw _X_AMZN_TRACE_ID %q, want %q", got, wantXRay)
	}

	// A sync request continues the trace it names.
	const in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	r = do(t, "POST", p.http+"/now", "application/json", []byte(`{}`), "Traceparent", in)
	if r.code != 200 {
		t.Fatalf("sync: status %d: %s", r.code, r.body)
	}
	if got := r.header.Get("Traceparent"); !strings.HasPrefix(got, "00-0af7651916cd43dd8448eb211c80319c-") || got == in {
		t.Errorf("sync response traceparent %q, want the trace of %q and a span of ours", got, in)
	}
	var out map[string]string
	if err := json.Unmarshal(r.body, &out); err != nil || !strings.HasPrefix(out["xray"], "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=") {
		t.Errorf("sync: the runtime saw %s (%v)", r.body, err)
	}
	waitFor(t, 30*time.Second, "the spans of the sync request", func() bool {
		s := col.trace("0af7651916cd43dd8448eb211c80319c")
		return s["POST /now"] != nil && s["invoke lam"] != nil
	})
	s := col.trace("0af7651916cd43dd8448eb211c80319c")
	if got := hex.EncodeToString(s["POST /now"].ParentSpanId); got != "b7ad6b7169203331" {
		t.Errorf("sync request span's parent is %s, want the caller's b7ad6b7169203331", got)
	}
	if !strings.Contains(out["xray"], "Parent="+hex.EncodeToString(s["invoke lam"].SpanId)) {
		t.Errorf("sync: the runtime's parent is not the invocation span %x: %s", s["invoke lam"].SpanId, out["xray"])
	}
	col.mu.Lock()
	svc := col.services["sluice-e2e"]
	col.mu.Unlock()
	if !svc {
		t.Error("no span carried service.name sluice-e2e")
	}
	if n := p.metric("sluice_trace_spans_exported_total"); n < float64(len(names)) {
		t.Errorf("sluice_trace_spans_exported_total = %v", n)
	}
}

// TestE2ETracingDeadCollector: with the collector down, every request still
// succeeds with its traceparent, and the spans are counted as dropped.
func TestE2ETracingDeadCollector(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close() // nobody listens there now: every export is refused
	p := startSluice(t, writeConfig(t, dir, `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: POST, path: /echo, function: echo}
`), "OTEL_EXPORTER_OTLP_ENDPOINT="+dead)
	if len(p.findLog("tracing on", map[string]any{"otlp_endpoint": dead})) != 1 {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT did not turn tracing on:\n%s", p.log())
	}
	const n = 50
	for i := range n {
		r := do(t, "POST", p.http+"/echo", "application/json", []byte(`{}`))
		if _, ok := plugins.ParseTraceParent(r.header.Get("Traceparent")); r.code != 200 || !ok {
			t.Fatalf("request %d: status %d, traceparent %q", i, r.code, r.header.Get("Traceparent"))
		}
	}
	// Three spans a request: the request, the batch, the invocation.
	waitFor(t, 30*time.Second, "the spans counted as dropped", func() bool {
		return p.metric("sluice_trace_spans_dropped_total") >= 3*n
	})
	if got := p.metric("sluice_trace_spans_exported_total"); got != 0 {
		t.Errorf("sluice_trace_spans_exported_total = %v", got)
	}
}
