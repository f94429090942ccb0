package process_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/process"
)

// The test binary doubles as the process the pool runs: with
// SLUICE_PROCESS_HELPER set it speaks the protocol instead of running tests,
// doing what each event's data asks (see helperCommand).
func TestMain(m *testing.M) {
	memlimit.Main() // the test binary is the memory-limit shim too
	if os.Getenv("SLUICE_PROCESS_HELPER") != "" {
		helperMain()
		return
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// helperCommand is what an event's data can ask the helper to do.
type helperCommand struct {
	Fail       string `json:"fail"`        // fail the event with this error
	FailType   string `json:"fail_type"`   // and this error_type
	Skip       bool   `json:"skip"`        // answer no result for the event
	Crash      bool   `json:"crash"`       // log to stderr and exit 3
	CrashOnce  string `json:"crash_once"`  // crash unless this file exists; create it first
	Hang       bool   `json:"hang"`        // start a grandchild, log its pid, never answer
	Log        string `json:"log"`         // write this line to stderr
	Stray      string `json:"stray"`       // write this line to stdout before the result
	Alloc      int    `json:"alloc"`       // allocate and touch this many bytes, keep them
	Env        bool   `json:"env"`         // output the environment
	Cwd        bool   `json:"cwd"`         // output the working directory
	WrongBatch bool   `json:"wrong_batch"` // answer with another batch id
	Garbage    bool   `json:"garbage"`     // answer a malformed line claiming the protocol
	Huge       int    `json:"huge"`        // output a string of this many bytes
	ExitAfter  bool   `json:"exit_after"`  // exit 0 after answering the batch
	SleepMS    int    `json:"sleep_ms"`    // sleep before answering
}

var kept [][]byte // the helper's allocations, alive until it exits

func helperMain() {
	switch os.Getenv("HELPER_MODE") {
	case "exit-at-start":
		fmt.Fprintln(os.Stderr, "boom at start")
		os.Exit(2)
	case "fail-if-exists":
		if _, err := os.Stat(os.Getenv("HELPER_FILE")); err == nil {
			fmt.Fprintln(os.Stderr, "refusing to start: the marker file exists")
			os.Exit(2)
		}
	case "silent":
		select {}
	case "sleeper":
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	// SIGUSR1 makes it log a line between batches.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			fmt.Fprintln(os.Stderr, "idle chatter")
		}
	}()
	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			os.Exit(0)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		var req struct {
			Batch  string            `json:"batch"`
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad batch line:", err)
			os.Exit(1)
		}
		results := []map[string]any{}
		batch, exitAfter := req.Batch, false
		for _, raw := range req.Events {
			var ev plugins.Event
			if err := json.Unmarshal(raw, &ev); err != nil {
				fmt.Fprintln(os.Stderr, "helper: bad event:", err)
				os.Exit(1)
			}
			var c helperCommand
			_ = json.Unmarshal(plugins.Payload(&ev), &c)
			if c.Log != "" {
				fmt.Fprintln(os.Stderr, c.Log)
			}
			if c.Stray != "" {
				fmt.Println(c.Stray)
			}
			if c.SleepMS > 0 {
				time.Sleep(time.Duration(c.SleepMS) * time.Millisecond)
			}
			if c.CrashOnce != "" {
				if _, err := os.Stat(c.CrashOnce); err != nil {
					_ = os.WriteFile(c.CrashOnce, nil, 0o644)
					c.Crash = true
				}
			}
			if c.Crash {
				fmt.Fprintln(os.Stderr, "crashing now, as asked")
				os.Exit(3)
			}
			if c.Hang {
				gc := exec.Command(os.Args[0])
				gc.Env = append(os.Environ(), "HELPER_MODE=sleeper")
				gc.Stderr = os.Stderr // holds the pipe open, as a real descendant would
				if err := gc.Start(); err != nil {
					fmt.Fprintln(os.Stderr, "helper:", err)
					os.Exit(1)
				}
				fmt.Fprintf(os.Stderr, "grandchild %d\n", gc.Process.Pid)
				select {}
			}
			if c.Alloc > 0 {
				b := make([]byte, c.Alloc)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				kept = append(kept, b)
			}
			if c.WrongBatch {
				batch = "not-" + req.Batch
			}
			exitAfter = exitAfter || c.ExitAfter
			if c.Garbage {
				fmt.Printf("{\"batch\":%q,\"results\":[{\"id\":\n", req.Batch)
				continue
			}
			if c.Skip {
				continue
			}
			res := map[string]any{"id": ev.ID}
			switch {
			case c.Fail != "":
				res["ok"], res["error"] = false, c.Fail
				if c.FailType != "" {
					res["error_type"] = c.FailType
				}
			case c.Env:
				res["ok"], res["output"] = true, os.Environ()
			case c.Cwd:
				wd, _ := os.Getwd()
				res["ok"], res["output"] = true, wd
			case c.Huge > 0:
				res["ok"], res["output"] = true, strings.Repeat("x", c.Huge)
			default:
				res["ok"], res["output"] = true, map[string]any{"pid": os.Getpid(), "id": ev.ID}
			}
			results = append(results, res)
		}
		out, _ := json.Marshal(map[string]any{"batch": batch, "results": results})
		os.Stdout.Write(append(out, '\n'))
		if exitAfter {
			os.Exit(0)
		}
		if len(req.Events) == 0 && os.Getenv("HELPER_MODE") == "exit-after-probe" {
			// Answer the start probe, then exit until HELPER_FILE exists.
			if _, err := os.Stat(os.Getenv("HELPER_FILE")); err != nil {
				os.Exit(0)
			}
		}
	}
}

// helperConfig is a pool config running the helper in mode with env.
func helperConfig(mode string, env ...string) process.Config {
	e := map[string]string{"SLUICE_PROCESS_HELPER": "1", "HELPER_MODE": mode}
	for i := 0; i+1 < len(env); i += 2 {
		e[env[i]] = env[i+1]
	}
	return process.Config{Command: []string{os.Args[0]}, Env: e, StartTimeout: 20 * time.Second}
}

// logLine is one line a pool handed its LogFunc.
type logLine struct {
	reqID string
	line  string
}

// logRecorder records a pool's log lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

func (r *logRecorder) log(reqID string, line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, logLine{reqID, string(line)})
}

func (r *logRecorder) all() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logLine(nil), r.lines...)
}

// find returns the first line containing s.
func (r *logRecorder) find(s string) (logLine, bool) {
	for _, l := range r.all() {
		if strings.Contains(l.line, s) {
			return l, true
		}
	}
	return logLine{}, false
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startPool creates and starts a pool, closed at the end of the test.
func startPool(t testing.TB, cfg process.Config, rec *logRecorder) *process.Pool {
	t.Helper()
	var logs plugins.LogFunc
	if rec != nil {
		logs = rec.log
	}
	p, err := process.New("f", cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// event returns an event whose data is the JSON of data.
func event(id string, data any) *plugins.Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return &plugins.Event{ID: id, Source: "test", Type: "test", DataContentType: "application/json", Data: b}
}

// batch returns a batch of events with a fresh id.
func batch(events ...*plugins.Event) *plugins.Batch {
	b := &plugins.Batch{ID: plugins.NewID(), Function: "f", Events: events, Results: make([]plugins.Result, len(events))}
	if len(events) == 1 {
		b.ID = events[0].ID
	}
	return b
}

// invoke runs b with a timeout.
func invoke(p *process.Pool, b *plugins.Batch, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b.Deadline, _ = ctx.Deadline()
	return p.Invoke(ctx, b)
}

// outputPID returns the "pid" of a helper's output.
func outputPID(t *testing.T, r plugins.Result) int {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("result error: %v", r.Err)
	}
	var out struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(r.Output, &out); err != nil || out.PID == 0 {
		t.Fatalf("output %s: no pid (%v)", r.Output, err)
	}
	return out.PID
}

// noPoolGoroutines fails the test if a goroutine of the process package is
// still running.
func noPoolGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	waitFor(t, "the pool's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "sluice/plugins/process.(")
	})
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// procecho builds plugins/examples/procecho once per test binary and
// returns its path. It skips when the go tool is missing.
func procecho(t testing.TB) string {
	t.Helper()
	goTool := testtool.Need(t, "go", "the Go toolchain")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "procecho")
		if buildErr != nil {
			return
		}
		out, err := exec.Command(goTool, "build", "-o", filepath.Join(buildDir, "procecho"), "../examples/procecho").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "procecho")
}

// python3 returns the python3 program, skipping when it is missing.
func python3(t *testing.T) string {
	t.Helper()
	return testtool.Need(t, "python3", "Debian package python3")
}

// withTimeout returns a context that ends after d, cancelled at the end of
// the test.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
