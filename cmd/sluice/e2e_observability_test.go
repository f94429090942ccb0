package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func observabilityConfig(dir string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 20s
kafka:
  embedded: true
  embedded_partitions: 2
  brokers: ["127.0.0.1:0"]
log: {level: debug, format: json}
functions:
  echo: {runtime: go, handler: echo}
  fail: {runtime: go, handler: fail}
  emf-py:
    runtime: process
    command: ["python3", "cmd/sluice/testdata/emf.py"]
    instances: 1
    memory: 256MiB
  emf-lambda:
    runtime: lambda
    command: ["python3", "cmd/sluice/testdata/emf_bootstrap.py"]
    instances: 1
  sink:
    runtime: go
    handler: sink
    env: {SINK_FILE: %[1]s/sink.jsonl}
triggers:
  - http: {method: POST, path: /emf-lambda, function: emf-lambda}
  - http: {method: POST, path: /echo, function: echo}
  - http: {method: POST, path: /fail, function: fail}
  - http: {method: POST, path: /emf, function: emf-py}
  - http: {method: POST, path: /sink, function: sink, mode: async, async_topic: orders}
`, dir)
}

// TestE2EObservability drives the real binary with a Python process
// function printing EMF, a Go function, a failing one and an async topic
// (so franz-go logs), then checks what an operator sees: the custom metric
// on /metrics with its labels, /metrics whole through Prometheus' parser
// with every family typed, GB-seconds, logs with a level and no key twice,
// and the status page, in headless Chromium.
func TestE2EObservability(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, observabilityConfig(dir)))

	var emfIDs, failIDs []string
	for i := 0; i < 5; i++ {
		r := do(t, "POST", p.http+"/emf", "application/json", []byte(`{"n":1}`))
		if r.code != 200 {
			t.Fatalf("emf: %d %s", r.code, r.body)
		}
		emfIDs = append(emfIDs, r.header.Get("X-Sluice-Request-Id"))
		if r := do(t, "POST", p.http+"/echo", "application/json", []byte(`{"n":1}`)); r.code != 200 {
			t.Fatalf("echo: %d %s", r.code, r.body)
		}
	}
	for i := 0; i < 2; i++ {
		r := do(t, "POST", p.http+"/fail", "application/json", []byte(`{"error":"boom"}`))
		if r.code != 502 {
			t.Fatalf("fail: %d %s", r.code, r.body)
		}
		failIDs = append(failIDs, r.header.Get("X-Sluice-Request-Id"))
	}
	if r := do(t, "POST", p.http+"/emf", "application/json", []byte(`{"bad":true}`)); r.code != 200 {
		t.Fatalf("bad emf: the invocation failed: %d %s", r.code, r.body)
	}
	for i := 0; i < 3; i++ {
		if r := do(t, "POST", p.http+"/sink", "application/json", []byte(`{"n":1}`)); r.code != 202 {
			t.Fatalf("sink: %d %s", r.code, r.body)
		}
	}
	waitFor(t, 20*time.Second, "async events in the sink", func() bool { return countLines(filepath.Join(dir, "sink.jsonl")) >= 3 })

	t.Run("EMF becomes a metric", func(t *testing.T) {
		const labels = `{function="emf-py",route="/checkout",service="cart"}`
		waitFor(t, 10*time.Second, "six EMF observations", func() bool {
			return p.metric("sluice_custom_shop_cartlatency_seconds_count"+labels) == 6
		})
		if v := p.metric("sluice_custom_shop_cartlatency_seconds_sum" + labels); v != 1.5 {
			t.Errorf("latency sum %v s, want 6 × 250ms = 1.5", v)
		}
		if v := p.metric("sluice_custom_shop_ordersplaced_sum" + labels); v != 6 {
			t.Errorf("orders %v, want 6", v)
		}
		p.waitLog("invalid EMF line: no metric recorded", 10*time.Second)

		// A Lambda custom runtime's stdout: two values of 1 and 2 KB.
		for i := 0; i < 2; i++ {
			if r := do(t, "POST", p.http+"/emf-lambda", "application/json", []byte(`{}`)); r.code != 200 {
				t.Fatalf("emf-lambda: %d %s", r.code, r.body)
			}
		}
		const lambdaLabels = `{function="emf-lambda",service="payments"}`
		waitFor(t, 10*time.Second, "the Lambda runtime's EMF", func() bool {
			return p.metric("sluice_custom_lambda_shop_payloadsize_bytes_count"+lambdaLabels) == 4
		})
		if v := p.metric("sluice_custom_lambda_shop_payloadsize_bytes_sum" + lambdaLabels); v != 6000 {
			t.Errorf("payload size sum %v bytes, want 2 × (1+2) KB = 6000", v)
		}
		if n := len(p.findLog("sluice: warning: the process wrote a line to stdout that is not a result line; stdout is for the protocol, write logs to stderr", nil)); n != 0 {
			t.Errorf("EMF on stdout was warned about as a stray print %d times", n)
		}
	})

	t.Run("metrics parse as Prometheus", func(t *testing.T) {
		r := do(t, "GET", p.admin+"/metrics", "", nil)
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("Prometheus' parser rejects /metrics: %v", err)
		}
		for name, f := range fams {
			if f.GetType() == dto.MetricType_UNTYPED || f.GetHelp() == "" {
				t.Errorf("family %s: type %v, help %q", name, f.GetType(), f.GetHelp())
			}
		}
		for name, typ := range map[string]dto.MetricType{
			"sluice_invocations_total":               dto.MetricType_COUNTER,
			"sluice_invocation_duration_seconds":     dto.MetricType_HISTOGRAM,
			"sluice_batch_size":                      dto.MetricType_HISTOGRAM,
			"sluice_gb_seconds_total":                dto.MetricType_COUNTER,
			"sluice_billed_seconds_total":            dto.MetricType_COUNTER,
			"sluice_custom_shop_cartlatency_seconds": dto.MetricType_SUMMARY,
			"sluice_queue_depth":                     dto.MetricType_GAUGE,
		} {
			if f := fams[name]; f == nil || f.GetType() != typ {
				t.Errorf("family %s: %v, want type %v", name, f, typ)
			}
		}
		// 6 invocations of at least 1 ms billed, at 256 MiB.
		gbs := p.metric(`sluice_gb_seconds_total{function="emf-py"}`)
		billed := p.metric(`sluice_billed_seconds_total{function="emf-py"}`)
		if billed < 0.006 || gbs < billed*0.25*0.999 || gbs > billed*0.25*1.001 {
			t.Errorf("emf-py billed %vs, %v GB-s: want GB-s = billed × 0.25 GiB", billed, gbs)
		}
	})

	t.Run("logs", func(t *testing.T) {
		p.mu.Lock()
		raw := append([]string(nil), p.raw...)
		p.mu.Unlock()
		kafkaKeys := 0
		for _, line := range raw {
			keys, err := objectKeys(line)
			if err != nil {
				t.Errorf("not a JSON object: %v: %s", err, line)
				continue
			}
			seen := map[string]bool{}
			for _, k := range keys {
				if seen[k] {
					t.Errorf("key %q twice: %s", k, line)
				}
				seen[k] = true
				if strings.HasPrefix(k, "kafka_") {
					kafkaKeys++
				}
			}
			if !seen["level"] {
				t.Errorf("no level: %s", line)
			}
		}
		if kafkaKeys == 0 {
			t.Errorf("no franz-go line with a renamed key (kafka_generation, kafka_group) among %d lines", len(raw))
		}
	})

	t.Run("status.json", func(t *testing.T) {
		var st struct {
			Functions []struct {
				Name, Runtime string
				Invocations   int     `json:"invocations"`
				ErrorRate     float64 `json:"error_rate"`
				P99           float64 `json:"p99_ms"`
				Idle          int     `json:"instances_idle"`
			} `json:"functions"`
			Triggers []struct {
				Name, Kind, Group string
				Lag               *float64 `json:"lag"`
			} `json:"triggers"`
			Recent []struct {
				RequestID string `json:"request_id"`
			} `json:"recent_invocations"`
			Errors []struct {
				RequestID string `json:"request_id"`
				Error     string `json:"error"`
			} `json:"recent_errors"`
		}
		r := do(t, "GET", p.admin+"/status.json", "", nil)
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		byName := map[string]int{}
		for i, f := range st.Functions {
			byName[f.Name] = i
		}
		emf := st.Functions[byName["emf-py"]]
		if emf.Runtime != "process" || emf.Invocations != 6 || emf.ErrorRate != 0 || emf.P99 <= 0 || emf.Idle != 1 {
			t.Errorf("emf-py: %+v", emf)
		}
		if f := st.Functions[byName["fail"]]; f.ErrorRate != 1 {
			t.Errorf("fail: %+v", f)
		}
		lagged := false
		for _, tr := range st.Triggers {
			if tr.Kind == "async" && tr.Lag != nil {
				lagged = true
			}
		}
		if !lagged {
			t.Errorf("no async trigger with a lag: %+v", st.Triggers)
		}
		ids := strings.Builder{}
		for _, r := range st.Recent {
			ids.WriteString(r.RequestID + " ")
		}
		for _, id := range emfIDs[1:] {
			if !strings.Contains(ids.String(), id) {
				t.Errorf("recent invocations lack %s", id)
			}
		}
		errIDs := strings.Builder{}
		for _, r := range st.Errors {
			errIDs.WriteString(r.RequestID + " ")
		}
		for _, id := range failIDs {
			if !strings.Contains(errIDs.String(), id) {
				t.Errorf("recent errors lack %s: %+v", id, st.Errors)
			}
		}
	})

	t.Run("status page in Chromium", func(t *testing.T) {
		chromium, err := exec.LookPath("chromium")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("chromium is not installed (CI=true: .ci/run installs it)")
			}
			t.Skip("chromium not installed")
		}
		dom := runChromium(t, chromium, "--dump-dom", p.admin+"/")
		for _, want := range []string{"<b>emf-py</b>", "<b>echo</b>", `<span class="mono">` + emfIDs[4] + "</span>", `<span class="mono">` + failIDs[1] + "</span>", `<span class="pill">process</span>`} {
			if !strings.Contains(dom, want) {
				t.Errorf("the rendered page lacks %s:\n%s", want, dom)
			}
		}
		shot := filepath.Join(t.TempDir(), "status.png")
		runChromium(t, chromium, "--screenshot="+shot, "--window-size=1280,1100", "--hide-scrollbars", p.admin+"/")
		png, err := os.ReadFile(shot)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatalf("no screenshot: %v", err)
		}
		if os.Getenv("SLUICE_UPDATE_SCREENSHOT") != "" {
			if err := os.WriteFile(filepath.Join(repo, "docs", "status-page.png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// runChromium runs headless Chromium on the loopback only, with a fresh
// profile, and returns its stdout.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// objectKeys returns the top-level keys of the JSON object line, in order,
// repeats included.
func objectKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
