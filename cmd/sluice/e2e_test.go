package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// coreConfig is a deployment of the builtin examples and a Python process
// function, on ports the kernel picks.
func coreConfig(dir string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  max_body: 64KiB
  drain_timeout: 20s
log: {level: info, format: json}
functions:
  echo:  {runtime: go, handler: echo}
  fail:  {runtime: go, handler: fail}
  sleep: {runtime: go, handler: sleep, timeout: 300ms}
  slow:  {runtime: go, handler: sleep, timeout: 10s, concurrency: 1, queue: 2, batch: {max_items: 1}}
  drain: {runtime: go, handler: sleep, timeout: 10s}
  sink:
    runtime: go
    handler: sink
    env: {SINK_FILE: %[1]s/sink.jsonl}
  hello-py:
    runtime: process
    command: ["python3", "plugins/examples/hello.py"]
    instances: 2
triggers:
  - http: {method: POST, path: /echo/{id}, function: echo}
  - http: {method: GET,  path: /echo/{id}/items/{item}, function: echo}
  - http: {method: POST, path: /fail, function: fail}
  - http: {method: POST, path: /sleep, function: sleep}
  - http: {method: POST, path: /slow, function: slow}
  - http: {method: POST, path: /drain, function: drain}
  - http: {method: POST, path: /sink, function: sink, mode: async}
  - http: {method: POST, path: /hello, function: hello-py}
`, dir)
}

func TestE2EHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, coreConfig(dir)))

	t.Run("sync with path parameters", func(t *testing.T) {
		r := do(t, "POST", p.http+"/echo/42?x=1&x=2", "application/json", []byte(`{"hello":"world"}`))
		if r.code != 200 {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		var ev plugins.Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatalf("echo output is not an event: %v\n%s", err, r.body)
		}
		if ev.Type != plugins.TypeHTTPRequest || ev.ID != r.header.Get("X-Sluice-Request-Id") {
			t.Errorf("type %q id %q, request id %q", ev.Type, ev.ID, r.header.Get("X-Sluice-Request-Id"))
		}
		var data struct {
			RouteKey       string            `json:"routeKey"`
			PathParameters map[string]string `json:"pathParameters"`
			QueryString    map[string]string `json:"queryStringParameters"`
			Body           string            `json:"body"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.RouteKey != "POST /echo/{id}" || data.PathParameters["id"] != "42" || data.QueryString["x"] != "1,2" || data.Body != `{"hello":"world"}` {
			t.Errorf("data %+v", data)
		}
		r = do(t, "GET", p.http+"/echo/7/items/x%20y", "", nil)
		if r.code != 200 || !strings.Contains(string(r.body), `"pathParameters":{"id":"7","item":"x y"}`) {
			t.Errorf("two parameters: %d %s", r.code, r.body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			body               []byte
			code               int
		}{
			{"unknown route", "POST", "/nope", nil, 404},
			{"wrong method", "GET", "/fail", nil, 405},
			{"function error", "POST", "/fail", []byte(`{"error":"boom"}`), 502},
			{"timeout", "POST", "/sleep", []byte(`{"ms":5000}`), 504},
			{"oversized body", "POST", "/echo/1", bytes.Repeat([]byte("x"), 65*1024), 413},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := do(t, tt.method, p.http+tt.path, "application/json", tt.body)
				if r.code != tt.code {
					t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
				}
				var e struct{ Message, RequestID string }
				if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" || e.RequestID != r.header.Get("X-Sluice-Request-Id") || e.RequestID == "" {
					t.Errorf("error body %s (request id header %q)", r.body, r.header.Get("X-Sluice-Request-Id"))
				}
			})
		}
		if ls := p.findLog("invocation", map[string]any{"function": "sleep", "outcome": "timeout"}); len(ls) == 0 || !strings.Contains(fmt.Sprint(ls[0]["error"]), "Task timed out after 0.30 seconds") {
			t.Errorf("no timeout invocation line: %v", ls)
		}
	})

	t.Run("async", func(t *testing.T) {
		const n = 20
		for i := 0; i < n; i++ {
			r := do(t, "POST", p.http+"/sink", "application/json", []byte(fmt.Sprintf(`{"n":%d}`, i)))
			if r.code != 202 || !strings.Contains(string(r.body), r.header.Get("X-Sluice-Request-Id")) {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
		}
		waitFor(t, 10*time.Second, "async events in the sink", func() bool { return countLines(filepath.Join(dir, "sink.jsonl")) >= n })
	})

	t.Run("process function", func(t *testing.T) {
		r := do(t, "POST", p.http+"/hello", "application/json", []byte(`{"name":"sluice"}`))
		if r.code != 200 || !strings.Contains(string(r.body), "sluice") {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		id := r.header.Get("X-Sluice-Request-Id")
		waitFor(t, 5*time.Second, "the function's stderr line tagged with its request id", func() bool {
			return strings.Contains(p.log(), `"function":"hello-py","request_id":"`+id+`","source":"function"`)
		})
	})

	t.Run("admin", func(t *testing.T) {
		if r := do(t, "GET", p.admin+"/readyz", "", nil); r.code != 200 {
			t.Errorf("readyz %d %s", r.code, r.body)
		}
		if r := do(t, "GET", p.admin+"/healthz", "", nil); r.code != 200 {
			t.Errorf("healthz %d", r.code)
		}
		r := do(t, "GET", p.admin+"/metrics", "", nil)
		for _, want := range []string{
			`sluice_invocations_total{function="echo",trigger="http",outcome="success"}`,
			`sluice_invocations_total{function="fail",trigger="http",outcome="error"}`,
			`sluice_invocation_duration_seconds_bucket{function="echo"`,
			`sluice_batch_size_bucket{function="echo"`,
			`sluice_queue_depth{function="echo"}`,
			`sluice_concurrent_executions{function="echo"}`,
			`sluice_throttles_total{function="slow"}`,
			`sluice_billed_seconds_total{function="echo"}`,
			`sluice_worker_restarts_total{function="hello-py"}`,
			`go_goroutines`,
		} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if r := do(t, "GET", p.admin+"/debug/pprof/", "", nil); r.code != 200 {
			t.Errorf("pprof %d", r.code)
		}
	})
}

// TestE2EOverload sends far more concurrent requests than a function's
// concurrency plus queue: the excess gets 429 with Retry-After at once, and
// every accepted request completes.
func TestE2EOverload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, coreConfig(dir)))
	const n = 40 // slow: concurrency 1 + queue 2
	var ok, throttled, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, "POST", p.http+"/slow", "application/json", []byte(`{"ms":300}`))
			switch {
			case r.code == 200:
				ok.Add(1)
			case r.code == 429 && r.header.Get("Retry-After") != "":
				throttled.Add(1)
			default:
				other.Add(1)
				t.Errorf("status %d: %s", r.code, r.body)
			}
		}()
	}
	wg.Wait()
	if throttled.Load() == 0 || ok.Load() == 0 || other.Load() != 0 {
		t.Fatalf("ok %d, throttled %d, other %d", ok.Load(), throttled.Load(), other.Load())
	}
	// Each invocation line is written before its response; the test reads
	// the process's stderr on its own goroutine, so wait for it to catch up.
	waitFor(t, 5*time.Second, "one invocation line per 200", func() bool {
		return int64(len(p.findLog("invocation", map[string]any{"function": "slow", "outcome": "success"}))) == ok.Load()
	})
	if n := p.metric(`sluice_throttles_total{function="slow"}`); n != float64(throttled.Load()) {
		t.Errorf("sluice_throttles_total %v for %d 429s", n, throttled.Load())
	}
}

// TestE2EDrain sends SIGTERM while requests are in flight: every one of them
// is answered, and async events accepted before the signal reach the sink.
func TestE2EDrain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, coreConfig(dir)))
	const n = 10
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(t, "POST", p.http+"/drain", "application/json", []byte(`{"ms":700}`)).code
		}()
	}
	for i := 0; i < 30; i++ {
		if r := do(t, "POST", p.http+"/sink", "application/json", []byte(fmt.Sprintf(`{"n":%d}`, i))); r.code != 202 {
			t.Fatalf("async status %d", r.code)
		}
	}
	waitFor(t, 10*time.Second, "requests in flight", func() bool {
		return p.metric(`sluice_concurrent_executions{function="drain"}`) > 0
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d in flight at SIGTERM: status %d", i, c)
		}
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit after draining")
	}
	if p.waitErr != nil {
		t.Errorf("exit: %v", p.waitErr)
	}
	if got := countLines(filepath.Join(dir, "sink.jsonl")); got != 30 {
		t.Errorf("%d of 30 accepted async events reached the sink", got)
	}
	if len(p.findLog("stopped", nil)) != 1 {
		t.Error("no stopped line")
	}
}

func TestE2EValidate(t *testing.T) {
	t.Parallel()
	broken := filepath.Join(repo0(t), "cmd/sluice/internal/config/testdata/broken.yaml")
	golden, err := os.ReadFile(filepath.Join(repo0(t), "cmd/sluice/internal/config/testdata/broken.golden"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runSluice(t, nil, "validate", "-c", broken)
	want := strings.ReplaceAll(string(golden), "testdata/broken.yaml", broken)
	if code != 2 || strings.TrimSpace(out) != strings.TrimSpace(want) {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	okFile := filepath.Join(repo0(t), "cmd/sluice/internal/config/testdata/ok.yaml")
	if code, out, _ := runSluice(t, nil, "validate", "-c", okFile); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("ok.yaml: exit %d: %s", code, out)
	}

	// What only the machine can tell: a plugin, a program or a folder that
	// is not there is reported at its key, as serve would meet it.
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script.sh")
	_ = os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	rt := writeConfig(t, dir, fmt.Sprintf(`functions:
  a: {runtime: plugin, path: %[1]s/missing.so}
  b: {runtime: process, command: [no-such-program-on-path]}
  c: {runtime: lambda, command: [%[2]s]}
  d: {runtime: go, handler: echo, dead_letter: {file: %[1]s/no/dir/dl.jsonl}}
  e: {runtime: process, command: [python3, plugins/examples/hello.py]}
`, dir, notExec))
	code, out, _ = runSluice(t, nil, "validate", "-c", rt)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wants := []string{
		rt + ":2:24: path: ",
		rt + `:3:25: command: "no-such-program-on-path" is not in PATH`,
		rt + ":4:24: command: " + notExec + " is not executable",
		rt + ":5:49: dead_letter.file: folder " + dir + "/no/dir does not exist",
	}
	if code != 2 || len(lines) != len(wants) {
		t.Fatalf("exit %d, want 2 and %d problems:\n%s", code, len(wants), out)
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %s\nwant prefix %s", i+1, lines[i], w)
		}
	}
	if code, _, errOut := runSluice(t, nil, "validate", "-c", "/no/such/file.yaml"); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d: %s", code, errOut)
	}
	if code, _, _ := runSluice(t, nil, "validate"); code != 2 {
		t.Errorf("no -c: exit %d", code)
	}
}

func TestE2EInvoke(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, coreConfig(dir))
	code, out, errOut := runSluice(t, []byte(`{"k":"v"}`), "invoke", "-c", cfg, "echo", "-e", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ev plugins.Event
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Type != plugins.TypeInvoke || string(ev.Data) != `{"k":"v"}` {
		t.Errorf("output %s: %v", out, err)
	}
	if !strings.Contains(errOut, `"message":"invocation"`) {
		t.Errorf("no invocation log on stderr: %s", errOut)
	}

	code, out, _ = runSluice(t, []byte(`{"error":"nope"}`), "invoke", "-c", cfg, "fail", "-e", "-")
	if code != 1 || !strings.Contains(out, `"errorMessage":"nope"`) {
		t.Errorf("fail: exit %d: %s", code, out)
	}

	s3 := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-28T12:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"photos"},"object":{"key":"a+b%21.jpg","size":3,"sequencer":"0A"}}}]}`
	f := filepath.Join(dir, "s3.json")
	_ = os.WriteFile(f, []byte(s3), 0o644)
	code, out, errOut = runSluice(t, nil, "invoke", "-c", cfg, "echo", "-e", f, "--as", "storage")
	if code != 0 || !strings.Contains(out, `"type":"sluice.storage.object.created"`) || !strings.Contains(out, `"subject":"photos/a b!.jpg"`) {
		t.Errorf("--as storage: exit %d: %s %s", code, out, errOut)
	}

	code, out, _ = runSluice(t, []byte(`{"name":"py"}`), "invoke", "-c", cfg, "hello-py", "-e", "-")
	if code != 0 || !strings.Contains(out, "py") {
		t.Errorf("process function: exit %d: %s", code, out)
	}
	if code, _, errOut := runSluice(t, nil, "invoke", "-c", cfg, "nosuch"); code != 2 || !strings.Contains(errOut, `no function "nosuch"`) {
		t.Errorf("unknown function: exit %d: %s", code, errOut)
	}
}

func TestE2EVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runSluice(t, nil, "version")
	if code != 0 || !strings.Contains(out, "sluice ") || !strings.Contains(out, "go1.") {
		t.Errorf("exit %d: %s", code, out)
	}
	if code, _, _ := runSluice(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

func repo0(t testing.TB) string {
	sluiceBin(t)
	return repo
}

func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		n++
	}
	return n
}
