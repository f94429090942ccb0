package builtin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

func httpEvent(id, body string) *plugins.Event {
	data, _ := json.Marshal(map[string]any{"body": body, "isBase64Encoded": false})
	return &plugins.Event{ID: id, Source: "test", Type: plugins.TypeHTTPRequest, DataContentType: "application/json", Data: data}
}

func run(t *testing.T, name string, env map[string]string, timeout time.Duration, evs ...*plugins.Event) ([]plugins.Result, error) {
	t.Helper()
	h, ok := Lookup(name)
	if !ok {
		t.Fatalf("%s not registered", name)
	}
	w := NewWorker(name, h, env)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b := &plugins.Batch{ID: "b", Events: evs, Results: make([]plugins.Result, len(evs))}
	err := w.Invoke(ctx, b)
	return b.Results, err
}

func TestExamples(t *testing.T) {
	ev := httpEvent("1", `{"ms":1,"error":"custom"}`)
	res, err := run(t, "echo", nil, time.Second, ev)
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	var back plugins.Event
	if err := json.Unmarshal(res[0].Output, &back); err != nil || back.ID != "1" {
		t.Fatalf("echo output %s: %v", res[0].Output, err)
	}

	if res, err = run(t, "noop", nil, time.Second, ev); err != nil || res[0].Err != nil || res[0].Output != nil {
		t.Fatalf("noop: %v %+v", err, res[0])
	}

	res, _ = run(t, "fail", nil, time.Second, ev)
	var fe *plugins.FunctionError
	if !errors.As(res[0].Err, &fe) || fe.Message != "custom" {
		t.Fatalf("fail: %v", res[0].Err)
	}

	if res, err = run(t, "sleep", nil, time.Second, httpEvent("2", `{"ms":5}`)); err != nil || string(res[0].Output) != `{"slept_ms":5}` {
		t.Fatalf("sleep: %v %s", err, res[0].Output)
	}
	if _, err = run(t, "sleep", nil, 20*time.Millisecond, httpEvent("3", `{"ms":60000}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sleep past its deadline: %v", err)
	}
}

func TestPanicFailsOnlyItsEvent(t *testing.T) {
	w := NewWorker("p", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		if ev.ID == "bad" {
			panic("boom")
		}
		return []byte(`1`), nil
	}, nil)
	b := &plugins.Batch{Events: []*plugins.Event{{ID: "ok"}, {ID: "bad"}, {ID: "ok2"}}, Results: make([]plugins.Result, 3)}
	if err := w.Invoke(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var fe *plugins.FunctionError
	if b.Results[0].Err != nil || b.Results[2].Err != nil || !errors.As(b.Results[1].Err, &fe) || fe.Type != "Panic" || fe.Message != "boom" {
		t.Fatalf("results %+v", b.Results)
	}
}

func TestSinkAppendsWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.jsonl")
	env := map[string]string{"SINK_FILE": path}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if res, err := run(t, "sink", env, time.Second, httpEvent("x", `{"n":1}`)); err != nil || res[0].Err != nil {
					t.Error(err, res[0].Err)
				}
			}
		}()
	}
	wg.Wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev plugins.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not an event: %v", n+1, err)
		}
		n++
	}
	if n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	if res, _ := run(t, "sink", nil, time.Second, httpEvent("y", "")); !errors.Is(res[0].Err, errNoSinkFile) {
		t.Fatalf("sink without SINK_FILE: %v", res[0].Err)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	Register("echo", Echo)
}
