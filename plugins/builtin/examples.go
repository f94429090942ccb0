package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

func init() {
	Register("echo", Echo)
	Register("noop", Noop)
	Register("sink", Sink)
	Register("sleep", Sleep)
	Register("fail", Fail)
}

// Echo returns the event it got, as its CloudEvents JSON.
func Echo(_ context.Context, ev *plugins.Event) ([]byte, error) {
	return ev.MarshalJSON()
}

// Noop does nothing and returns null.
func Noop(context.Context, *plugins.Event) ([]byte, error) { return nil, nil }

// Sleep waits the "ms" milliseconds of its JSON payload (or until the
// deadline), then returns {"slept_ms":N}.
func Sleep(ctx context.Context, ev *plugins.Event) ([]byte, error) {
	var p struct {
		MS float64 `json:"ms"`
	}
	if b := plugins.Payload(ev); len(b) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("sleep: payload: %w", err)
		}
	}
	t := time.NewTimer(time.Duration(p.MS * float64(time.Millisecond)))
	defer t.Stop()
	select {
	case <-t.C:
		return fmt.Appendf(nil, `{"slept_ms":%g}`, p.MS), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Fail returns an error: the "error" string of its JSON payload, or
// "fail: requested failure".
func Fail(_ context.Context, ev *plugins.Event) ([]byte, error) {
	var p struct {
		Error string `json:"error"`
	}
	if b := plugins.Payload(ev); len(b) > 0 {
		_ = json.Unmarshal(b, &p) // a payload that is not JSON still fails, with the default message
	}
	if p.Error == "" {
		p.Error = "fail: requested failure"
	}
	return nil, &plugins.FunctionError{Message: p.Error, Type: "RequestedFailure"}
}

// sinks holds one open file per path so concurrent invocations append whole
// lines without interleaving.
var sinks struct {
	sync.Mutex
	files map[string]*sinkFile
}

type sinkFile struct {
	mu sync.Mutex
	f  *os.File
	b  []byte
}

var errNoSinkFile = errors.New("sink: SINK_FILE is not set in the function's env")

// Sink appends the event as one JSON line to the file named by SINK_FILE in
// the function's env. The line is written with a single write(2) before Sink
// returns, so an acknowledged event is in the file (in the OS page cache)
// even if the gateway is killed right after. SINK_DELAY (a Go duration),
// when set, is waited before each write: a slow consumer, to watch
// backpressure and at-least-once delivery at work.
func Sink(ctx context.Context, ev *plugins.Event) ([]byte, error) {
	path := plugins.Getenv(ctx, "SINK_FILE")
	if path == "" {
		return nil, errNoSinkFile
	}
	if d := plugins.Getenv(ctx, "SINK_DELAY"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("sink: SINK_DELAY: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	sf, err := openSink(path)
	if err != nil {
		return nil, err
	}
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.b = ev.AppendJSON(sf.b[:0])
	sf.b = append(sf.b, '\n')
	if _, err := sf.f.Write(sf.b); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return nil, nil
}

func openSink(path string) (*sinkFile, error) {
	sinks.Lock()
	defer sinks.Unlock()
	if sf := sinks.files[path]; sf != nil {
		return sf, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	if sinks.files == nil {
		sinks.files = make(map[string]*sinkFile)
	}
	sf := &sinkFile{f: f}
	sinks.files[path] = sf
	return sf, nil
}
