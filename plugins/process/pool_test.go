package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  process.Config
		want string // substring of the error; "" for valid
	}{
		{"minimal", process.Config{Command: []string{"cat"}}, ""},
		{"full", process.Config{Command: []string{"python3", "x.py"}, Dir: "/tmp", Env: map[string]string{"A": "b"}, Instances: 4, Memory: 1 << 20, StartTimeout: time.Second, MaxLineBytes: 1024}, ""},
		{"no command", process.Config{}, "command: must name a program"},
		{"empty program", process.Config{Command: []string{""}}, "command: must name a program"},
		{"NUL in argument", process.Config{Command: []string{"a", "b\x00"}}, "command: argument 1 holds a NUL byte"},
		{"negative instances", process.Config{Command: []string{"cat"}, Instances: -1}, "instances: must not be negative"},
		{"negative memory", process.Config{Command: []string{"cat"}, Memory: -5}, "memory: must not be negative"},
		{"negative start timeout", process.Config{Command: []string{"cat"}, StartTimeout: -time.Second}, "start_timeout: must not be negative"},
		{"negative max line", process.Config{Command: []string{"cat"}, MaxLineBytes: -1}, "max_line: must not be negative"},
		{"bad env name", process.Config{Command: []string{"cat"}, Env: map[string]string{"A=B": "c"}}, `env: invalid variable name "A=B"`},
		{"empty env name", process.Config{Command: []string{"cat"}, Env: map[string]string{"": "c"}}, `env: invalid variable name ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if _, err := process.New("f", tt.cfg, nil); err == nil || !strings.Contains(err.Error(), `function "f"`) {
				t.Fatalf("New() = %v, want the validation error naming the function", err)
			}
		})
	}
}

func TestRoundTripProcecho(t *testing.T) {
	t.Parallel()
	p := startPool(t, process.Config{Command: []string{procecho(t)}, Instances: 2}, nil)
	evs := []*plugins.Event{
		event("a", map[string]any{"n": 1}),
		{ID: "b", Source: "s", Type: plugins.TypeKafkaRecord, KafkaTopic: "orders", Data: []byte{0, 1, 2}, DataContentType: "application/octet-stream"},
		// Pretty-printed JSON data: its newlines must not split the line.
		{ID: "c\n\"quoted\"", Source: "s", Type: "t", Data: []byte("{\n  \"a\": [1,\r\n 2]\n}"), Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	for _, size := range []int{1, 3} {
		b := batch(evs[:size]...)
		if err := invoke(p, b, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		for i, ev := range b.Events {
			r := b.Results[i]
			if r.Err != nil {
				t.Fatalf("event %q: %v", ev.ID, r.Err)
			}
			var got, want any
			if err := json.Unmarshal(r.Output, &got); err != nil {
				t.Fatalf("event %q: output %s: %v", ev.ID, r.Output, err)
			}
			if err := json.Unmarshal(ev.AppendJSON(nil), &want); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("event %q: output %s, want the envelope %s", ev.ID, r.Output, ev.AppendJSON(nil))
			}
		}
		if b.MaxRSSBytes <= 0 {
			t.Errorf("MaxRSSBytes = %d, want the process's peak RSS", b.MaxRSSBytes)
		}
	}
}

func TestRoundTripHelloPy(t *testing.T) {
	t.Parallel()
	py := python3(t)
	rec := &logRecorder{}
	p := startPool(t, process.Config{Command: []string{py, "../examples/hello.py"}}, rec)
	httpEvent := func(id, body string) *plugins.Event {
		data, _ := json.Marshal(map[string]any{"rawPath": "/hello", "body": body, "isBase64Encoded": false})
		return &plugins.Event{ID: id, Source: "http", Type: plugins.TypeHTTPRequest, DataContentType: "application/json", Data: data}
	}
	b := batch(
		httpEvent("h1", `{"name":"Ada"}`),
		httpEvent("h2", ""),
		event("k1", map[string]any{"name": "Grace"}),
		event("k2", map[string]any{"fail": true}),
		event("k3", "just a string"),
	)
	if err := invoke(p, b, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"hello":"Ada"}`, `{"hello":"world"}`, `{"hello":"Grace"}`, "", `{"hello":"world"}`}
	for i, w := range want {
		r := b.Results[i]
		if w == "" {
			var fe *plugins.FunctionError
			if !errors.As(r.Err, &fe) || fe.Type != "RequestedFailure" || !strings.Contains(fe.Message, "asked") {
				t.Errorf("event %d: err = %#v, want a RequestedFailure FunctionError", i, r.Err)
			}
			continue
		}
		if r.Err != nil || string(r.Output) != w {
			t.Errorf("event %d: output %s, err %v; want %s", i, r.Output, r.Err, w)
		}
	}
	waitFor(t, "hello.py's stderr line", func() bool {
		l, ok := rec.find("hello: batch " + b.ID + ": 5 events")
		return ok && l.reqID == b.ID
	})
}

func TestPerEventResults(t *testing.T) {
	t.Parallel()
	p := startPool(t, helperConfig("echo"), nil)
	b := batch(
		event("ok", map[string]any{}),
		event("fail", map[string]any{"fail": "no such user", "fail_type": "NotFound"}),
		event("skipped", map[string]any{"skip": true}),
		event("plain-fail", map[string]any{"fail": "boom"}),
	)
	if err := invoke(p, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := b.Results[0]; r.Err != nil || !strings.Contains(string(r.Output), `"id":"ok"`) {
		t.Errorf("ok: %s, %v", r.Output, r.Err)
	}
	var fe *plugins.FunctionError
	if !errors.As(b.Results[1].Err, &fe) || fe.Message != "no such user" || fe.Type != "NotFound" {
		t.Errorf("fail: %#v, want FunctionError{no such user, NotFound}", b.Results[1].Err)
	}
	if err := b.Results[2].Err; !errors.Is(err, process.ErrMissingResult) || !strings.Contains(err.Error(), `"skipped"`) {
		t.Errorf("skipped: %v, want ErrMissingResult naming the event", err)
	}
	if !errors.As(b.Results[3].Err, &fe) || fe.Message != "boom" || fe.Type != "" {
		t.Errorf("plain-fail: %#v", b.Results[3].Err)
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("Restarts() = %d after per-event failures, want 0", n)
	}
}

func TestCrashMidBatch(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	var reasons []error
	var mu sync.Mutex
	cfg := helperConfig("echo")
	cfg.OnRestart = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, err)
	}
	p := startPool(t, cfg, rec)
	b0 := batch(event("first", nil))
	if err := invoke(p, b0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := outputPID(t, b0.Results[0])

	b := batch(event("x", map[string]any{"log": "about to go"}), event("y", map[string]any{"crash": true}))
	err := invoke(p, b, 10*time.Second)
	var ee *process.ExitError
	if !errors.As(err, &ee) || !errors.Is(err, process.ErrExited) {
		t.Fatalf("err = %v, want an ExitError", err)
	}
	if ee.PID != pid || ee.Status != "exit status 3" {
		t.Errorf("ExitError = %+v, want pid %d, exit status 3", ee, pid)
	}
	msg := err.Error()
	if !strings.Contains(msg, "process exited: exit status 3") || !strings.Contains(msg, "crashing now, as asked") {
		t.Errorf("error %q lacks the status or the last stderr lines", msg)
	}
	// Lines are drained before the error is reported: none is lost, and
	// they carry the batch's request id.
	for _, want := range []string{"about to go", "crashing now, as asked"} {
		if l, ok := rec.find(want); !ok || l.reqID != b.ID {
			t.Errorf("log line %q: %+v, found %v; want it tagged %q", want, l, ok, b.ID)
		}
	}
	if n := p.Restarts(); n != 1 {
		t.Errorf("Restarts() = %d, want 1", n)
	}

	b2 := batch(event("after", nil))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatalf("batch after the crash: %v", err)
	}
	if pid2 := outputPID(t, b2.Results[0]); pid2 == pid {
		t.Errorf("the batch after the crash ran in the crashed process %d", pid)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 1 || !errors.Is(reasons[0], process.ErrExited) {
		t.Errorf("OnRestart reasons = %v, want one ExitError", reasons)
	}
}

func TestHangKilledAtDeadline(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	p := startPool(t, helperConfig("echo"), rec)
	b0 := batch(event("first", nil))
	if err := invoke(p, b0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := outputPID(t, b0.Results[0])

	b := batch(event("hang", map[string]any{"hang": true}))
	start := time.Now()
	err := invoke(p, b, 2*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last stderr: grandchild") {
		t.Fatalf("err = %v, want one wrapping context.DeadlineExceeded, with the last stderr lines", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("Invoke returned after %s, before the deadline", d)
	}
	l, ok := rec.find("grandchild ")
	if !ok {
		t.Fatal("the helper did not log its grandchild's pid")
	}
	if l.reqID != "hang" {
		t.Errorf("grandchild line tagged %q, want %q", l.reqID, "hang")
	}
	gpid, err := strconv.Atoi(strings.TrimPrefix(l.line, "grandchild "))
	if err != nil {
		t.Fatal(err)
	}
	// The process group went with it: the grandchild too.
	waitFor(t, "the hung process and its grandchild to be gone", func() bool { return testtool.Gone(pid) && testtool.Gone(gpid) })

	b2 := batch(event("after", nil))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatalf("batch after the hang: %v", err)
	}
	if outputPID(t, b2.Results[0]) == pid {
		t.Error("the batch after the hang ran in the killed process")
	}
	if n := p.Restarts(); n != 1 {
		t.Errorf("Restarts() = %d, want 1", n)
	}
}

func TestCancelKillsAndReplaces(t *testing.T) {
	t.Parallel()
	p := startPool(t, helperConfig("echo"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	b := batch(event("slow", map[string]any{"sleep_ms": 60000}))
	errc := make(chan error, 1)
	go func() { errc <- p.Invoke(ctx, b) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	b2 := batch(event("after", nil))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatalf("batch after the cancel: %v", err)
	}
	if b2.Results[0].Err != nil {
		t.Fatal(b2.Results[0].Err)
	}
}

func TestExpiredContextKeepsProcess(t *testing.T) {
	t.Parallel()
	p := startPool(t, helperConfig("echo"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Invoke(ctx, batch(event("late", nil))); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err := invoke(p, batch(event("next", nil)), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("Restarts() = %d: a batch that was never sent killed its process", n)
	}
}

func TestStderrTaggedWithRequestID(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	p := startPool(t, helperConfig("echo"), rec)
	one := batch(event("solo", map[string]any{"log": "line of solo"}))
	two := batch(event("p1", map[string]any{"log": "line of p1"}), event("p2", map[string]any{"log": "line of p2"}))
	// Back to back: a line the process wrote before its result keeps its
	// batch's id even when the pool reads it after the batch ended.
	for _, b := range []*plugins.Batch{one, two} {
		if err := invoke(p, b, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	pid := outputPID(t, two.Results[0])
	// A line written between batches has no request id.
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ line, want string }{
		{"line of solo", "solo"}, // a batch of one: the event's id
		{"line of p1", two.ID},   // else the batch id
		{"line of p2", two.ID},
		{"idle chatter", ""},
	} {
		var l logLine
		waitFor(t, tt.line, func() bool {
			var ok bool
			l, ok = rec.find(tt.line)
			return ok
		})
		if l.reqID != tt.want {
			t.Errorf("%q tagged %q, want %q", tt.line, l.reqID, tt.want)
		}
	}
}

func TestEnvIsolation(t *testing.T) {
	t.Setenv("SLUICE_TEST_CANARY", "must not leak")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "UTC")
	p := startPool(t, helperConfig("echo", "GREETING", "hi", "TZ", "Europe/Paris"), nil)
	b := batch(event("env", map[string]any{"env": true}))
	if err := invoke(p, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal(b.Results[0].Output, &env); err != nil {
		t.Fatalf("output %s: %v", b.Results[0].Output, err)
	}
	want := []string{"GREETING=hi", "HELPER_MODE=echo", "SLUICE_PROCESS_HELPER=1", "TZ=Europe/Paris", "LANG=C.UTF-8"}
	for _, k := range []string{"PATH", "HOME"} {
		if v := os.Getenv(k); v != "" {
			want = append(want, k+"="+v)
		}
	}
	slices.Sort(want)
	slices.Sort(env)
	if !slices.Equal(env, want) {
		t.Errorf("process environment:\n%q\nwant exactly\n%q", env, want)
	}
}

func TestWorkingDirectory(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := helperConfig("echo")
	cfg.Dir = dir
	p := startPool(t, cfg, nil)
	b := batch(event("cwd", map[string]any{"cwd": true}))
	if err := invoke(p, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := string(b.Results[0].Output); got != strconv.Quote(dir) {
		t.Errorf("working directory %s, want %q", got, dir)
	}
}

func TestMemoryLimitReplaces(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	const limit = 128 << 20
	cfg := helperConfig("echo")
	cfg.Memory = limit
	p, err := process.New("f", cfg, rec.log)
	if err != nil {
		t.Fatal(err)
	}
	process.SetRSSInterval(p, 0) // sample after every batch, for a deterministic test
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })

	b0 := batch(event("small", nil))
	if err := invoke(p, b0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b0.MaxRSSBytes <= 0 || b0.MaxRSSBytes >= limit {
		t.Skipf("the helper's baseline peak RSS is %d bytes, not between 0 and the %d limit", b0.MaxRSSBytes, limit)
	}
	if n := p.Restarts(); n != 0 {
		t.Fatalf("Restarts() = %d under the limit", n)
	}
	t.Logf("baseline peak RSS %.1f MiB", float64(b0.MaxRSSBytes)/(1<<20))
	pid := outputPID(t, b0.Results[0])

	b := batch(event("big", map[string]any{"alloc": limit + 32<<20}))
	if err := invoke(p, b, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if b.Results[0].Err != nil {
		t.Fatalf("the batch over the limit failed: %v; it should succeed and its process be replaced", b.Results[0].Err)
	}
	if b.MaxRSSBytes <= limit {
		t.Errorf("MaxRSSBytes = %d, want over %d", b.MaxRSSBytes, limit)
	}
	l, ok := rec.find("over the function's memory limit")
	if !ok || l.reqID != "big" {
		t.Errorf("memory log line %+v (found %v), want one tagged %q", l, ok, "big")
	}
	waitFor(t, "the process over the limit to be replaced", func() bool { return p.Restarts() == 1 && testtool.Gone(pid) })
	b2 := batch(event("after", nil))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if outputPID(t, b2.Results[0]) == pid {
		t.Error("the process over the limit still serves")
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	// Not parallel: it counts the package's goroutines.
	p, err := process.New("f", func() process.Config { c := helperConfig("echo"); c.Instances = 3; return c }(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := invoke(p, batch(event(fmt.Sprint("e", i), nil)), 10*time.Second); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	pids := process.PIDs(p)
	if len(pids) != 3 {
		t.Fatalf("PIDs = %v, want 3 processes", pids)
	}
	if err := p.Close(withTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v (the helper exits at EOF, nothing should need a kill)", err)
	}
	for _, pid := range pids {
		if !testtool.Gone(pid) {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if err := p.Invoke(context.Background(), batch(event("late", nil))); !errors.Is(err, process.ErrClosed) {
		t.Errorf("Invoke after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	noPoolGoroutines(t)
}

func TestCloseKillsAtContextEnd(t *testing.T) {
	// Not parallel: it counts the package's goroutines.
	rec := &logRecorder{}
	p, err := process.New("f", helperConfig("echo"), rec.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Invoke(context.Background(), batch(event("stuck", map[string]any{"hang": true}))) }()
	var gpid int
	waitFor(t, "the grandchild to start", func() bool {
		l, ok := rec.find("grandchild ")
		if ok {
			gpid, _ = strconv.Atoi(strings.TrimPrefix(l.line, "grandchild "))
		}
		return ok
	})
	pids := process.PIDs(p)
	if err := p.Close(withTimeout(t, 200*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want it to report the kill", err)
	}
	if err := <-errc; err == nil {
		t.Error("the batch in flight at the kill succeeded")
	}
	// The group was sent SIGKILL; a grandchild nobody waits for dies a
	// moment later, on the kernel's schedule.
	for _, pid := range append(pids, gpid) {
		waitFor(t, fmt.Sprintf("process %d to be gone after Close", pid), func() bool { return testtool.Gone(pid) })
	}
	noPoolGoroutines(t)
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  process.Config
		want []string
	}{
		{"missing program", process.Config{Command: []string{"/nonexistent/sluice-fn", "arg"}}, []string{`["/nonexistent/sluice-fn" "arg"]`, "no such file"}},
		{"exits at once", helperConfig("exit-at-start"), []string{os.Args[0], "exit status 2", "boom at start"}},
		{"never answers", func() process.Config { c := helperConfig("silent"); c.StartTimeout = 300 * time.Millisecond; return c }(), []string{os.Args[0], "deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Instances = 2
			p, err := process.New("f", tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Start(context.Background())
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start error %q lacks %q", err, w)
				}
			}
			if pids := process.PIDs(p); len(pids) != 0 {
				t.Errorf("processes left after a failed Start: %v", pids)
			}
			if err := p.Invoke(context.Background(), batch(event("x", nil))); !errors.Is(err, process.ErrClosed) {
				t.Errorf("Invoke after a failed Start = %v, want ErrClosed", err)
			}
		})
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "broken")
	var mu sync.Mutex
	var restarts []time.Time
	cfg := helperConfig("fail-if-exists", "HELPER_FILE", marker)
	cfg.OnRestart = func(error) {
		mu.Lock()
		defer mu.Unlock()
		restarts = append(restarts, time.Now())
	}
	p := startPool(t, cfg, nil)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Its process crashes; every replacement exits at start.
	if err := invoke(p, batch(event("crash", map[string]any{"crash": true})), 10*time.Second); !errors.Is(err, process.ErrExited) {
		t.Fatalf("err = %v, want ExitError", err)
	}
	start := time.Now()
	err := invoke(p, batch(event("next", nil)), 10*time.Second)
	if !errors.Is(err, process.ErrStartFailing) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("err = %v, want ErrStartFailing with the start failure's stderr", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Invoke took %s to report the crash loop: it should fail fast, not wait for its deadline", d)
	}
	// The replacement, then retries after 100, 200, 400ms of backoff.
	waitFor(t, "four restarts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(restarts) >= 4
	})
	mu.Lock()
	for i, min := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := restarts[i+1].Sub(restarts[i]); gap < min {
			t.Errorf("retry %d came %s after the one before, want a backoff of at least %s", i+1, gap, min)
		}
	}
	mu.Unlock()
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pool to recover", func() bool {
		return invoke(p, batch(event("recovered", nil)), 10*time.Second) == nil
	})
}

func TestProtocolErrorsReplaceTheProcess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    map[string]any
		maxLine int
		want    string
	}{
		{"result for another batch", map[string]any{"wrong_batch": true}, 0, "a result line for batch"},
		{"malformed result line", map[string]any{"garbage": true}, 0, "malformed result line"},
		{"line over max_line", map[string]any{"huge": 4096}, 1024, "longer than max_line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := helperConfig("echo")
			cfg.MaxLineBytes = tt.maxLine
			p := startPool(t, cfg, nil)
			b := batch(event("bad", tt.data))
			err := invoke(p, b, 10*time.Second)
			if !errors.Is(err, process.ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrProtocol: %s", err, tt.want)
			}
			waitFor(t, "a replacement", func() bool { return p.Restarts() == 1 })
			if err := invoke(p, batch(event("after", nil)), 10*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStrayStdoutIsLogged(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{}
	p := startPool(t, helperConfig("echo"), rec)
	b := batch(event("chatty", map[string]any{"stray": "debug: hello from stdout"}))
	if err := invoke(p, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if b.Results[0].Err != nil {
		t.Fatal(b.Results[0].Err)
	}
	pid := outputPID(t, b.Results[0])
	if l, ok := rec.find("debug: hello from stdout"); !ok || l.reqID != "chatty" {
		t.Errorf("stray line: %+v, found %v", l, ok)
	}
	if _, ok := rec.find("write logs to stderr"); !ok {
		t.Error("no warning about the stray stdout line")
	}
	b2 := batch(event("after", map[string]any{"stray": `{"not":"a result"}`}))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if outputPID(t, b2.Results[0]) != pid || p.Restarts() != 0 {
		t.Error("a stray line cost the process its life")
	}
}

func TestExitBetweenBatches(t *testing.T) {
	t.Parallel()
	p := startPool(t, helperConfig("echo"), nil)
	b := batch(event("last", map[string]any{"exit_after": true}))
	if err := invoke(p, b, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := outputPID(t, b.Results[0])
	waitFor(t, "the exited process to be replaced", func() bool { return p.Restarts() == 1 })
	b2 := batch(event("next", nil))
	if err := invoke(p, b2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if outputPID(t, b2.Results[0]) == pid {
		t.Error("the exited process served again")
	}
}

func TestInvokeWaitsForAnIdleProcess(t *testing.T) {
	t.Parallel()
	p := startPool(t, helperConfig("echo"), nil)
	slow := batch(event("slow", map[string]any{"sleep_ms": 300}))
	errc := make(chan error, 1)
	go func() { errc <- invoke(p, slow, 10*time.Second) }()
	// Waits for the one process, then runs.
	waiting := batch(event("waiting", nil))
	if err := invoke(p, waiting, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// A wait that outlasts its context fails without harming anyone.
	blocker := batch(event("blocker", map[string]any{"sleep_ms": 500}))
	go func() { errc <- invoke(p, blocker, 10*time.Second) }()
	var err error
	waitFor(t, "a wait to time out", func() bool {
		err = invoke(p, batch(event("impatient", nil)), 50*time.Millisecond)
		return err != nil
	})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no idle process") {
		t.Errorf("err = %v, want a DeadlineExceeded waiting for an idle process", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("Restarts() = %d", n)
	}
}

func TestLargeBatchLines(t *testing.T) {
	t.Parallel()
	p := startPool(t, process.Config{Command: []string{procecho(t)}}, nil)
	big := strings.Repeat("y", 3<<20)
	evs := []*plugins.Event{event("big1", big), event("big2", big)}
	for range 2 { // twice: the grown buffers are reused or dropped cleanly
		b := batch(evs...)
		if err := invoke(p, b, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Results {
			if r.Err != nil || len(r.Output) < len(big) {
				t.Fatalf("event %d: %d output bytes, err %v", i, len(r.Output), r.Err)
			}
		}
	}
}
