package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowPy is a process function that takes one second per event (SLEEP_S),
// writes the id and body of every event it starts to RUNS_FILE, and exits
// without answering on a body holding "crash".
const slowPy = `import json, os, sys, time
runs = os.environ["RUNS_FILE"]
for line in sys.stdin:
    if not line.strip():
        continue
    b = json.loads(line)
    results = []
    for ev in b.get("events") or []:
        body = (ev.get("data") or {}).get("body") or ""
        with open(runs, "a") as f:
            f.write(ev["id"] + " " + body + "\n")
        if "crash" in body:
            os._exit(3)
        time.sleep(float(os.environ.get("SLEEP_S", "1")))
        results.append({"id": ev["id"], "ok": True, "output": {"slept": True}})
    sys.stdout.write(json.dumps({"batch": b["batch"], "results": results}) + "\n")
    sys.stdout.flush()
`

// textRuntimePy is an AWS Lambda custom runtime (the Runtime API over
// HTTP, stdlib only) whose handler posts, as its raw response, the reply
// the request body names, or sleeps a second on a body starting "req-".
const textRuntimePy = `import json, os, time, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
replies = {
    "text": b"Hello from Lambda!",
    "json-object": b'{"a":1}',
    "json-string": b'"quoted"',
    "response": b'{"statusCode":201,"headers":{"content-type":"text/plain","x-n":7},"cookies":["a=1; Path=/","b=2"],"body":"made"}',
    "base64": b'{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"isBase64Encoded":true,"body":"AAEC"}',
    "bad-response": b'{"statusCode":"teapot"}',
}
while True:
    with urllib.request.urlopen(base + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        ev = json.loads(r.read())
    body = ev.get("body") or ""
    if body.startswith("req-"):
        time.sleep(1)
        reply = b'{"slept":true}'
    else:
        reply = replies.get(body, b"unknown")
    urllib.request.urlopen(urllib.request.Request(base + rid + "/response", data=reply, method="POST")).read()
`

func syncConfig(dir string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
log: {level: info, format: json}
functions:
  slow:
    runtime: process
    command: ["python3", "%[1]s/slow.py"]
    instances: 2
    timeout: 3s
    env: {RUNS_FILE: "%[1]s/slow-runs.txt"}
  crashy:
    runtime: process
    command: ["python3", "%[1]s/slow.py"]
    env: {RUNS_FILE: "%[1]s/crash-runs.txt", SLEEP_S: "0"}
    # Each attempt after a crash waits for the replacement process, within
    # its timeout: a long one, so that a slow start on a busy machine does
    # not fail an attempt before it ran.
    timeout: 30s
    retry: {attempts: 3, backoff: 10ms, max_backoff: 20ms}
  text:
    runtime: lambda
    command: ["python3", "%[1]s/runtime.py"]
  lambda-slow:
    runtime: lambda
    command: ["python3", "%[1]s/runtime.py"]
    instances: 2
    timeout: 3s
triggers:
  - http: {method: POST, path: /lambda-slow, function: lambda-slow}
  - http: {method: POST, path: /slow, function: slow}
  - http: {method: POST, path: /crash, function: crashy}
  - http: {method: POST, path: /crash-async, function: crashy, mode: async}
  - http: {method: POST, path: /text, function: text}
`, dir)
}

func startSyncGateway(t *testing.T) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"slow.py": slowPy, "runtime.py": textRuntimePy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startSluice(t, writeConfig(t, dir, syncConfig(dir))), dir
}

// runsOf returns the lines of a RUNS_FILE naming id.
func runsOf(path, id string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, id+" ") {
			n++
		}
	}
	return n
}

// TestE2ESyncRequestsQueueWithoutSharingATimeout: 12 concurrent requests
// to a function taking 1 s per event, with instances: 2 and timeout: 3s, a
// process function and a Lambda runtime. Each request's event runs alone on
// an instance, its timeout counting its execution only: all 12 answer 200,
// none 504, although the last wait about 5 s in the queue, and the last
// answers after about 6 s (12 seconds of work on 2 instances).
func TestE2ESyncRequestsQueueWithoutSharingATimeout(t *testing.T) {
	t.Parallel()
	p, _ := startSyncGateway(t)
	for _, fn := range []string{"slow", "lambda-slow"} {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			checkQueuedRequests(t, p, fn)
		})
	}
}

func checkQueuedRequests(t *testing.T, p *proc, fn string) {
	const n = 12
	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, n)
	ids := make([]string, n)
	var last time.Duration
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, "POST", p.http+"/"+fn, "text/plain", []byte(fmt.Sprint("req-", i)))
			mu.Lock()
			defer mu.Unlock()
			codes[i], ids[i] = r.code, r.header.Get("X-Sluice-Request-Id")
			last = max(last, time.Since(start))
			if r.code != 200 {
				t.Errorf("request %d: %d %s", i, r.code, r.body)
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses %v, the last after %s", codes, last)
	// Not a speed figure: 12 one-second events on 2 instances cannot all
	// end sooner than 6 s, and finishing within a few times that shows no
	// request waited on another's timeout.
	if last < 5*time.Second || last > 30*time.Second {
		t.Errorf("the last request answered after %s, want about 6 s", last)
	}
	var longest float64
	waitFor(t, 10*time.Second, "every invocation line", func() bool {
		return len(p.findLog("invocation", map[string]any{"function": fn})) >= n
	})
	for _, id := range ids {
		ls := p.findLog("invocation", map[string]any{"function": fn, "request_id": id})
		if len(ls) != 1 {
			t.Errorf("%s: %d invocation lines, want 1", id, len(ls))
			continue
		}
		l := ls[0]
		if l["outcome"] != "success" || l["batch_size"] != float64(1) {
			t.Errorf("%s: %v", id, l)
		}
		q, ok := l["queue_ms"].(float64)
		if !ok {
			t.Errorf("%s: no queue_ms: %v", id, l)
		}
		if d, _ := l["duration_ms"].(float64); d > 3000 {
			t.Errorf("%s: duration_ms %v counts more than its own execution", id, d)
		}
		longest = max(longest, q)
	}
	if longest < 3000 {
		t.Errorf("the longest queue_ms is %v: the test should have queued requests past the timeout", longest)
	}
}

// TestE2ESyncIsTriedOnce: a crash fails a sync request at once, after one
// run, as Lambda does not retry synchronous invocations, while the same
// crash on an async request is retried up to its attempts.
func TestE2ESyncIsTriedOnce(t *testing.T) {
	t.Parallel()
	p, dir := startSyncGateway(t)
	runs := filepath.Join(dir, "crash-runs.txt")

	r := do(t, "POST", p.http+"/crash", "text/plain", []byte("crash"))
	if r.code != 502 {
		t.Fatalf("sync crash: %d %s, want 502", r.code, r.body)
	}
	id := r.header.Get("X-Sluice-Request-Id")
	if got := runsOf(runs, id); got != 1 {
		t.Errorf("the sync event ran %d times, want once", got)
	}
	waitFor(t, 10*time.Second, "its invocation line", func() bool {
		return len(p.findLog("invocation", map[string]any{"request_id": id})) > 0
	})
	if ls := p.findLog("invocation", map[string]any{"request_id": id}); len(ls) != 1 || ls[0]["outcome"] != "crash" || ls[0]["attempt"] != float64(1) {
		t.Errorf("want one crash invocation line, attempt 1: %v", ls)
	}
	if r := do(t, "POST", p.http+"/crash", "text/plain", []byte("fine")); r.code != 200 {
		t.Errorf("after the crash: %d %s", r.code, r.body)
	}

	r = do(t, "POST", p.http+"/crash-async", "text/plain", []byte("crash"))
	if r.code != 202 {
		t.Fatalf("async: %d %s", r.code, r.body)
	}
	id = r.header.Get("X-Sluice-Request-Id")
	waitFor(t, 60*time.Second, "three runs of the async event", func() bool { return runsOf(runs, id) == 3 })
	waitFor(t, 10*time.Second, "its last attempt logged", func() bool {
		return len(p.findLog("invocation", map[string]any{"request_id": id, "attempt": 3})) == 1
	})
	if got := runsOf(runs, id); got != 3 {
		t.Errorf("the async event ran %d times, want 3", got)
	}
}

// TestE2ELambdaHTTPResponses: what an unmodified Lambda runtime answers on
// an HTTP route becomes the response by API Gateway's payload format 2.0
// rules, plain text included.
func TestE2ELambdaHTTPResponses(t *testing.T) {
	t.Parallel()
	p, _ := startSyncGateway(t)
	tests := []struct {
		reply, ctype, body string
		code               int
		check              func(t *testing.T, r response)
	}{
		{"text", "application/json", "Hello from Lambda!", 200, nil},
		{"json-object", "application/json", `{"a":1}`, 200, nil},
		{"json-string", "application/json", "quoted", 200, nil},
		{"response", "text/plain", "made", 201, func(t *testing.T, r response) {
			if r.header.Get("X-N") != "7" || len(r.header.Values("Set-Cookie")) != 2 {
				t.Errorf("headers %v", r.header)
			}
		}},
		{"base64", "application/octet-stream", "\x00\x01\x02", 200, nil},
		{"bad-response", "application/json", "", 502, nil},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			r := do(t, "POST", p.http+"/text", "text/plain", []byte(tt.reply))
			if r.code != tt.code || r.header.Get("Content-Type") != tt.ctype {
				t.Fatalf("%d %q %q, want %d %q", r.code, r.header.Get("Content-Type"), r.body, tt.code, tt.ctype)
			}
			if tt.code == 200 || tt.code == 201 {
				if string(r.body) != tt.body {
					t.Errorf("body %q, want %q", r.body, tt.body)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}
