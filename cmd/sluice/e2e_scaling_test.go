package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFunctions builds the Go Lambda functions the scaling tests run.
var (
	testFnOnce sync.Once
	testFnDir  string
	testFnErr  error
)

// lambdaBinary returns the path of a Lambda function built from pkg (a
// package path relative to the repository root), built once per run.
func lambdaBinaries(t testing.TB) (echo, fn string) {
	t.Helper()
	sluiceBin(t) // sets repo
	testFnOnce.Do(func() {
		testFnDir = filepath.Dir(binPath)
		for name, pkg := range map[string]string{"lambda-echo": "./plugins/examples/lambda-echo", "lambdafn": "./cmd/sluice/testdata/lambdafn"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(testFnDir, name), pkg)
			cmd.Dir = repo
			if out, err := cmd.CombinedOutput(); err != nil {
				testFnErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if testFnErr != nil {
		t.Fatal(testFnErr)
	}
	return filepath.Join(testFnDir, "lambda-echo"), filepath.Join(testFnDir, "lambdafn")
}

// reportRE is Lambda's REPORT line.
var reportRE = regexp.MustCompile(`(?m)^REPORT RequestId: (\S+) Duration: \d+\.\d\d ms Billed Duration: \d+ ms Memory Size: (\d+) MB Max Memory Used: \d+ MB( Init Duration: (\d+\.\d\d) ms)?$`)

// invokeAPI calls a function through the Lambda invoke API with a log
// tail and returns the response and the decoded tail.
func invokeAPI(t testing.TB, p *proc, function, payload string) (response, string) {
	t.Helper()
	r := do(t, "POST", p.http+"/2015-03-31/functions/"+function+"/invocations", "application/json", []byte(payload), "X-Amz-Log-Type", "Tail")
	tail, err := base64.StdEncoding.DecodeString(r.header.Get("X-Amz-Log-Result"))
	if err != nil {
		t.Fatalf("X-Amz-Log-Result: %v", err)
	}
	return r, string(tail)
}

// instances returns the function's instances of every state, read from one
// scrape of /metrics.
func (p *proc) instances(function string) float64 {
	p.t.Helper()
	r := do(p.t, "GET", p.admin+"/metrics", "", nil)
	var n float64
	for _, line := range strings.Split(string(r.body), "\n") {
		if !strings.HasPrefix(line, fmt.Sprintf(`sluice_instances{function=%q,`, function)) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			n += v
		}
	}
	return n
}

func TestE2EScaleFromZero(t *testing.T) {
	t.Parallel()
	_, fn := lambdaBinaries(t)
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
log: {level: info, format: json}
functions:
  cold: {runtime: lambda, command: [%q], timeout: 20s, memory: 256MiB, scaling: {min: 0, max: 3, idle: 1s}}
  pcold: {runtime: process, command: [python3, cmd/sluice/testdata/procfn.py], timeout: 20s, scaling: {min: 0, max: 3, idle: 1s}}
triggers:
  - http: {method: POST, path: /pcold, function: pcold}
`, fn)))
	if n := p.instances("cold"); n != 0 {
		t.Fatalf("%v instances at start, want 0 (min: 0)", n)
	}

	// The first request waits for a cold start and reports it.
	r, tail := invokeAPI(t, p, "cold", `{}`)
	if r.code != 200 || !strings.Contains(string(r.body), `"pid"`) {
		t.Fatalf("first invocation: %d %s", r.code, r.body)
	}
	m := reportRE.FindStringSubmatch(tail)
	if m == nil || m[3] == "" || m[2] != "256" {
		t.Fatalf("no REPORT line with Init Duration and Memory Size 256 MB in the tail:\n%s", tail)
	}
	waitFor(t, 10*time.Second, "the invocation log line", func() bool {
		return len(p.findLog("invocation", map[string]any{"function": "cold", "request_id": m[1], "cold_start": true})) == 1
	})
	if l := p.findLog("invocation", map[string]any{"function": "cold", "request_id": m[1]})[0]; l["init_ms"].(float64) <= 0 {
		t.Errorf("init_ms = %v", l["init_ms"])
	}
	if n := p.metric(`sluice_cold_starts_total{function="cold"}`); n != 1 {
		t.Errorf("sluice_cold_starts_total = %v, want 1", n)
	}
	if n := p.metric(`sluice_init_duration_seconds_count{function="cold"}`); n != 1 {
		t.Errorf("sluice_init_duration_seconds_count = %v, want 1", n)
	}
	// A warm request has no Init Duration.
	_, tail = invokeAPI(t, p, "cold", `{}`)
	if m := reportRE.FindStringSubmatch(tail); m == nil || m[3] != "" {
		t.Errorf("warm invocation's REPORT:\n%s", tail)
	}

	// After idle, back to zero.
	waitFor(t, 20*time.Second, "scale to zero", func() bool { return p.instances("cold") == 0 })

	// A burst of 6 concurrent requests starts several instances at once,
	// never more than max.
	for _, tc := range []struct{ function, path string }{{"cold", ""}, {"pcold", "/pcold"}} {
		before := p.metric(fmt.Sprintf(`sluice_cold_starts_total{function=%q}`, tc.function))
		before = max(before, 0)
		var wg sync.WaitGroup
		codes := make([]int, 6)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if tc.path == "" {
					r, _ := invokeAPI(t, p, tc.function, `{"sleep_ms":300}`)
					codes[i] = r.code
				} else {
					codes[i] = do(t, "POST", p.http+tc.path, "application/json", []byte(`{"sleep_ms":300}`)).code
				}
			}()
		}
		peak := 0.0
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
	sample:
		for {
			peak = max(peak, p.instances(tc.function))
			select {
			case <-done:
				break sample
			case <-time.After(5 * time.Millisecond): // sampling interval of the gauge while the burst runs
			}
		}
		for i, c := range codes {
			if c != 200 {
				t.Errorf("%s: burst request %d: status %d", tc.function, i, c)
			}
		}
		started := p.metric(fmt.Sprintf(`sluice_cold_starts_total{function=%q}`, tc.function)) - before
		if peak <= 1 || peak > 3 || started <= 1 || started > 3 {
			t.Errorf("%s: burst of 6 at max 3: instance gauge peaked at %v, %v cold starts; want 2..3 of each", tc.function, peak, started)
		}
		waitFor(t, 20*time.Second, tc.function+" to scale back to zero", func() bool { return p.instances(tc.function) == 0 })
	}
}

func TestE2EMemoryLimit(t *testing.T) {
	t.Parallel()
	_, fn := lambdaBinaries(t)
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
log: {level: info, format: json}
functions:
  echo: {runtime: go, handler: echo}
  lambda-oom: {runtime: lambda, command: [%q], memory: 128MiB, timeout: 20s}
  proc-oom: {runtime: process, command: [python3, cmd/sluice/testdata/procfn.py], memory: 128MiB, timeout: 20s}
triggers:
  - http: {method: POST, path: /echo/{id}, function: echo}
`, fn)))
	if ls := p.findLog(p.mechanismLine(), nil); len(ls) != 1 {
		t.Errorf("want one line naming the memory limit mechanism, got %d", len(ls))
	}
	cfgPath := filepath.Join(dir, "sluice.yaml")
	if code, out, errOut := runSluice(t, nil, "validate", "-c", cfgPath); code != 0 || strings.TrimSpace(out) != "ok" || !strings.Contains(errOut, "memory limits: "+p.mechanism()) {
		t.Errorf("validate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, function := range []string{"lambda-oom", "proc-oom"} {
		t.Run(function, func(t *testing.T) {
			r, tail := invokeAPI(t, p, function, `{"alloc_mb":300}`)
			var e struct{ ErrorMessage, ErrorType string }
			_ = json.Unmarshal(r.body, &e)
			if r.code != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" || e.ErrorType != "Runtime.OutOfMemory" ||
				!strings.Contains(e.ErrorMessage, "Runtime exited with error: ") {
				t.Fatalf("allocating past memory: %d %s %s", r.code, r.header.Get("X-Amz-Function-Error"), r.body)
			}
			if !strings.Contains(tail, "Runtime.OutOfMemory") || reportRE.FindStringSubmatch(tail) == nil {
				t.Errorf("tail:\n%s", tail)
			}
			// The gateway and other functions are unaffected.
			if r := do(t, "POST", p.http+"/echo/1", "application/json", []byte(`{}`)); r.code != 200 {
				t.Errorf("echo after the OOM: %d", r.code)
			}
			// The instance was replaced: the function serves again.
			waitFor(t, 20*time.Second, "the function to serve again", func() bool {
				r, _ := invokeAPI(t, p, function, `{"alloc_mb":8}`)
				return r.code == 200 && r.header.Get("X-Amz-Function-Error") == "" && strings.Contains(string(r.body), `"pid"`)
			})
			if n := p.metric(fmt.Sprintf(`sluice_oom_kills_total{function=%q}`, function)); n != 1 {
				t.Errorf("sluice_oom_kills_total = %v, want 1", n)
			}
		})
	}
}

// mechanism is the memory limit mechanism serve logged.
func (p *proc) mechanism() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if m, ok := l["mechanism"].(string); ok {
			return m
		}
	}
	return "(none logged)"
}

// mechanismLine is the start-up message naming the memory limit mechanism.
func (p *proc) mechanismLine() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l != nil && l["mechanism"] != nil {
			return l["message"].(string)
		}
	}
	return "(no line with a mechanism field)"
}
