package lambda

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// The functions of testdata/fn, real aws-lambda-go programs (and one
// hand-written runtime), plus the shipped lambda-echo example, built once
// per test binary.
var (
	fnOnce sync.Once
	fnDir  string
	fnErr  error
)

var fnNames = []string{"echo", "panic", "sleep", "batchfail", "env", "big", "crash", "raw"}

func TestMain(m *testing.M) {
	code := m.Run()
	if fnDir != "" {
		os.RemoveAll(fnDir)
	}
	os.Exit(code)
}

// fn returns the path of a built test function.
func fn(t testing.TB, name string) string {
	t.Helper()
	fnOnce.Do(func() {
		fnDir, fnErr = os.MkdirTemp("", "sluice-lambda-fn-")
		if fnErr != nil {
			return
		}
		args := []string{"build", "-o", fnDir + string(filepath.Separator)}
		for _, n := range fnNames {
			args = append(args, "./testdata/fn/"+n)
		}
		args = append(args, "../examples/lambda-echo")
		cmd := exec.Command("go", args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			fnErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if fnErr != nil {
		t.Fatal(fnErr)
	}
	return filepath.Join(fnDir, name)
}

type logLine struct{ req, line string }

// logRecorder is a LogFunc that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

func (r *logRecorder) log(req string, line []byte) {
	r.mu.Lock()
	r.lines = append(r.lines, logLine{req, string(line)})
	r.mu.Unlock()
}

// of returns the lines tagged with req.
func (r *logRecorder) of(req string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if l.req == req {
			out = append(out, l.line)
		}
	}
	return out
}

// waitFor polls until a line containing substr arrived, and returns its tag.
func (r *logRecorder) waitFor(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, l := range r.lines {
			if strings.Contains(l.line, substr) {
				r.mu.Unlock()
				return l.req
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no log line containing %q; got %q", substr, r.lines)
	return ""
}

func startPool(t *testing.T, name string, cfg Config) (*Pool, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	p, err := New(name, cfg, rec.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return p, rec
}

// invoke runs one batch of evs with the given timeout.
func invoke(p *Pool, timeout time.Duration, evs ...*plugins.Event) (*plugins.Batch, error) {
	b := &plugins.Batch{
		ID:       plugins.NewID(),
		Function: p.Name(),
		Deadline: time.Now().Add(timeout),
		Events:   evs,
		Results:  make([]plugins.Result, len(evs)),
	}
	ctx, cancel := context.WithDeadline(context.Background(), b.Deadline)
	defer cancel()
	return b, p.Invoke(ctx, b)
}

// invokeOne runs one event and returns its output, failing the test on any
// error.
func invokeOne(t *testing.T, p *Pool, ev *plugins.Event) []byte {
	t.Helper()
	b, err := invoke(p, 10*time.Second, ev)
	if err != nil {
		t.Fatalf("invoke %s: %v", ev.ID, err)
	}
	if b.Results[0].Err != nil {
		t.Fatalf("invoke %s: function error: %v", ev.ID, b.Results[0].Err)
	}
	return b.Results[0].Output
}

func invokeEvent(data string) *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "test", Type: plugins.TypeInvoke,
		DataContentType: "application/json", Data: []byte(data),
	}
}

// waitUntil polls cond until it holds or 15s passed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
