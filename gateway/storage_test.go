package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/invoker/filter"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

// sample reads a real-shaped notification of the storage decoder's corpus.
func sample(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "streams", "formats", "testdata", "s3", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sinkEvents reads the events a sink function wrote.
func sinkEvents(t testing.TB, path string) []plugins.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var evs []plugins.Event
	for line := range bytes.Lines(b) {
		var ev plugins.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("sink line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

type storageAnswer struct {
	RequestID string `json:"requestId"`
	Accepted  int    `json:"accepted"`
	Filtered  int    `json:"filtered"`
}

func checkAccepted(t testing.TB, resp *http.Response, body []byte, accepted, filtered int) {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 (body %s)", resp.StatusCode, body)
	}
	var a storageAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if a.RequestID != resp.Header.Get(HeaderRequestID) || a.Accepted != accepted || a.Filtered != filtered {
		t.Fatalf("answer %+v, want %d accepted and %d filtered", a, accepted, filtered)
	}
}

func TestStorageWebhook(t *testing.T) {
	sinkFile := filepath.Join(t.TempDir(), "sink.jsonl")
	sink := startFunction(t, "sink", builtinHandler(t, "sink"), invoker.Config{}, map[string]string{"SINK_FILE": sinkFile})
	pattern, err := filter.Compile(json.RawMessage(`{"data":{"s3":{"object":{"key":[{"anything-but":{"prefix":"tmp/"}}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, Config{}, nil, func(s *Server) {
		for _, r := range []StorageRoute{
			{Path: "/hooks/storage", Function: sink, Token: "s3cr3t"},
			{Path: "/hooks/open", Function: sink},
			{Path: "/hooks/scheme", Function: sink, Token: "Token abc123"},
			{Path: "/hooks/filtered", Function: sink, Filter: pattern.Match},
		} {
			if err := s.HandleStorage(r); err != nil {
				t.Fatal(err)
			}
		}
	})
	c := httpClient(t)
	auth := map[string]string{"Authorization": "Bearer s3cr3t", "Content-Type": "application/json"}
	seen := 0
	// next waits for the sink to hold n more events and returns them.
	next := func(n int) []plugins.Event {
		t.Helper()
		var evs []plugins.Event
		pollUntil(t, func() bool { evs = sinkEvents(t, sinkFile); return len(evs) >= seen+n })
		if len(evs) != seen+n {
			t.Fatalf("sink holds %d events, want %d", len(evs), seen+n)
		}
		evs = evs[seen:]
		seen += n
		return evs
	}

	t.Run("S3 put with an encoded key", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/hooks/storage", sample(t, "s3-put-encoded-key.json"), auth)
		checkAccepted(t, resp, body, 1, 0)
		ev := next(1)[0]
		if ev.Type != plugins.TypeStorageCreated || ev.Subject != "amzn-s3-demo-bucket/photos/my summer(2024).jpg" || ev.PartitionKey != ev.Subject {
			t.Fatalf("event %+v", ev)
		}
		var rec struct {
			EventName string `json:"eventName"`
			S3        struct {
				Object struct{ Key, Sequencer string } `json:"object"`
			} `json:"s3"`
		}
		if err := json.Unmarshal(ev.Data, &rec); err != nil || rec.S3.Object.Key != "photos/my summer(2024).jpg" || rec.EventName != "ObjectCreated:Put" || rec.S3.Object.Sequencer == "" {
			t.Fatalf("data %s: %v", ev.Data, err)
		}
	})

	t.Run("MinIO put and delete", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/hooks/storage", sample(t, "minio-put.json"), auth)
		checkAccepted(t, resp, body, 1, 0)
		resp, body = do(t, c, "POST", ts.url+"/hooks/storage", sample(t, "minio-delete.json"), auth)
		checkAccepted(t, resp, body, 1, 0)
		evs := next(2)
		if evs[0].Type != plugins.TypeStorageCreated || evs[0].Subject != "images/holiday photos/beach & sun.jpg" ||
			evs[1].Type != plugins.TypeStorageRemoved || evs[1].Subject != "images/old.png" {
			t.Fatalf("events %+v", evs)
		}
	})

	t.Run("several records", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/hooks/open", sample(t, "s3-delete-objects.json"), nil)
		checkAccepted(t, resp, body, 2, 0)
		evs := next(2)
		if evs[0].Subject == evs[1].Subject || evs[0].Type != plugins.TypeStorageRemoved {
			t.Fatalf("events %+v", evs)
		}
	})

	t.Run("test event", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/hooks/storage", sample(t, "s3-test-event.json"), auth)
		checkAccepted(t, resp, body, 0, 0)
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, body := do(t, c, "HEAD", ts.url+"/hooks/storage", "", map[string]string{"Authorization": "Bearer s3cr3t"})
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
		}
		resp, _ = do(t, c, "HEAD", ts.url+"/hooks/storage", "", nil)
		if resp.StatusCode != 401 {
			t.Fatalf("HEAD without the token: %d", resp.StatusCode)
		}
	})

	t.Run("auth", func(t *testing.T) {
		for _, tt := range []struct {
			path, header string
			ok           bool
		}{
			{"/hooks/storage", "Bearer s3cr3t", true},
			{"/hooks/storage", "bearer s3cr3t", true},
			{"/hooks/storage", "BEARER  s3cr3t ", true},
			{"/hooks/storage", "", false},
			{"/hooks/storage", "Bearer wrong", false},
			{"/hooks/storage", "Bearer s3cr3", false},
			{"/hooks/storage", "Bearer s3cr3tt", false},
			{"/hooks/storage", "s3cr3t", false},
			{"/hooks/storage", "Basic czNjcjN0", false},
			{"/hooks/scheme", "Token abc123", true},
			{"/hooks/scheme", "Bearer abc123", false},
			{"/hooks/scheme", "Token abc12", false},
			{"/hooks/open", "", true},
			{"/hooks/open", "Bearer anything", true},
		} {
			hdr := map[string]string{}
			if tt.header != "" {
				hdr["Authorization"] = tt.header
			}
			resp, body := do(t, c, "POST", ts.url+tt.path, sample(t, "s3-test-event.json"), hdr)
			if tt.ok {
				checkAccepted(t, resp, body, 0, 0)
				continue
			}
			checkError(t, resp, body, 401, "Unauthorized")
			want := `Bearer realm="sluice"`
			if tt.header != "" {
				want += `, error="invalid_token"`
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("%s %q: WWW-Authenticate %q, want %q", tt.path, tt.header, got, want)
			}
		}
	})

	t.Run("malformed", func(t *testing.T) {
		twoRecords := sample(t, "s3-delete-objects.json")
		var doc map[string][]map[string]any
		if err := json.Unmarshal([]byte(twoRecords), &doc); err != nil {
			t.Fatal(err)
		}
		doc["Records"][1]["s3"].(map[string]any)["object"].(map[string]any)["key"] = 42
		secondBad, _ := json.Marshal(doc)
		for _, tt := range []struct {
			name, body, want string
		}{
			{"not JSON", `{"Records":[`, "not JSON"},
			{"not an object", `[1,2]`, "want a JSON object"},
			{"no records", `{"hello":"world"}`, `no "Records"`},
			{"second record bad", string(secondBad), "Records[1].s3.object.key"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := do(t, c, "POST", ts.url+"/hooks/storage", tt.body, auth)
				if resp.StatusCode != 400 {
					t.Fatalf("status %d, body %s", resp.StatusCode, body)
				}
				var e struct{ Message string }
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Message, tt.want) {
					t.Fatalf("message %q, want it to name %q", e.Message, tt.want)
				}
			})
		}
		// Nothing of the bad bodies was accepted: the next good event is
		// the only new one in the sink.
		resp, body := do(t, c, "POST", ts.url+"/hooks/storage", sample(t, "minio-delete.json"), auth)
		checkAccepted(t, resp, body, 1, 0)
		if evs := next(1); evs[0].Subject != "images/old.png" {
			t.Fatalf("after the bad bodies the sink got %+v", evs)
		}
	})

	t.Run("filter", func(t *testing.T) {
		keep := `{"Records":[` + record("b", "img/a.png", "ObjectCreated:Put") + `,` + record("b", "tmp/x", "ObjectCreated:Put") + `]}`
		resp, body := do(t, c, "POST", ts.url+"/hooks/filtered", keep, nil)
		checkAccepted(t, resp, body, 1, 1)
		resp, body = do(t, c, "POST", ts.url+"/hooks/filtered", `{"Records":[`+record("b", "tmp/y", "ObjectRemoved:Delete")+`]}`, nil)
		checkAccepted(t, resp, body, 0, 1)
		if evs := next(1); evs[0].Subject != "b/img/a.png" {
			t.Fatalf("filtered webhook delivered %+v", evs)
		}
		var b bytes.Buffer
		ts.set.WritePrometheus(&b)
		if !strings.Contains(b.String(), `sluice_filtered_total{trigger="storage"} 2`) {
			t.Fatalf("metrics lack the filtered count:\n%s", b.String())
		}
	})
}

// record is one S3 event record.
func record(bucket, key, name string) string {
	return fmt.Sprintf(`{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2024-07-14T10:00:00.000Z","eventName":%q,`+
		`"s3":{"s3SchemaVersion":"1.0","bucket":{"name":%q},"object":{"key":%q,"size":1,"sequencer":"0A1B"}}}`, name, bucket, key)
}

func TestStorageWebhookQueueFull(t *testing.T) {
	b := newBlocker(t)
	fn := startFunction(t, "busy", b.handle, invoker.Config{
		Concurrency: 1, Queue: 2, Timeout: 20 * time.Second, Batch: invoker.BatchConfig{MaxItems: 1, MaxWait: -1},
	}, nil)
	ts := startServerWith(t, Config{}, nil, func(s *Server) {
		if err := s.HandleStorage(StorageRoute{Path: "/hook", Function: fn}); err != nil {
			t.Fatal(err)
		}
	})
	c := httpClient(t)
	body := func(keys ...string) string {
		recs := make([]string, len(keys))
		for i, k := range keys {
			recs[i] = record("b", k, "ObjectCreated:Put")
		}
		return `{"Records":[` + strings.Join(recs, ",") + `]}`
	}
	resp, rb := do(t, c, "POST", ts.url+"/hook", body("first"), nil)
	checkAccepted(t, resp, rb, 1, 0)
	<-b.started // it runs, holding the only slot; the queue of two is empty

	resp, rb = do(t, c, "POST", ts.url+"/hook", body("a", "b", "c"), nil)
	checkError(t, resp, rb, 429, msgTooMany)
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("429 without Retry-After: %v", resp.Header)
	}
	if d, _ := fn.Load(); d != 0 {
		t.Fatalf("a refused body left %d events in the queue", d)
	}
	resp, rb = do(t, c, "POST", ts.url+"/hook", body("x", "y"), nil)
	checkAccepted(t, resp, rb, 2, 0)
	resp, rb = do(t, c, "POST", ts.url+"/hook", body("z"), nil)
	checkError(t, resp, rb, 429, msgTooMany)

	b.open()
	for range 2 {
		<-b.started
	}
	pollUntil(t, func() bool { d, _ := fn.Load(); return d == 0 })
	select {
	case id := <-b.started:
		t.Fatalf("an event of a refused body ran: %s", id)
	default:
	}
}

func TestStorageWebhookAsyncTopic(t *testing.T) {
	fn := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	pub := &recordingPublisher{}
	failing := &recordingPublisher{err: errors.New("broker down")}
	ts := startServerWith(t, Config{}, nil, func(s *Server) {
		for _, r := range []StorageRoute{
			{Path: "/ok", Function: fn, Mode: ModeAsync, AsyncTopic: "objects", Publisher: pub},
			{Path: "/down", Function: fn, Mode: ModeAsync, AsyncTopic: "objects", Publisher: failing},
		} {
			if err := s.HandleStorage(r); err != nil {
				t.Fatal(err)
			}
		}
	})
	c := httpClient(t)
	resp, body := do(t, c, "POST", ts.url+"/ok", sample(t, "s3-delete-objects.json"), map[string]string{
		"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	})
	checkAccepted(t, resp, body, 2, 0)
	got := pub.events()
	if len(got) != 2 || got[0].topic != "objects" || !got[0].hadDeadline {
		t.Fatalf("published %+v", got)
	}
	for _, p := range got {
		if p.ev.Type != plugins.TypeStorageRemoved || p.ev.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Fatalf("published event %+v", p.ev)
		}
	}
	resp, body = do(t, c, "POST", ts.url+"/down", sample(t, "minio-put.json"), nil)
	checkError(t, resp, body, 503, msgUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func TestHandleStorageErrors(t *testing.T) {
	fn := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/taken", Function: fn}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		r    StorageRoute
		want string
	}{
		{StorageRoute{Path: "/x"}, "no function"},
		{StorageRoute{Path: "x", Function: fn}, "must start with /"},
		{StorageRoute{Path: "/taken", Function: fn}, "conflicts"},
		{StorageRoute{Path: "/x", Function: fn, Token: "a b c"}, "token"},
		{StorageRoute{Path: "/x", Function: fn, Token: "a\nb"}, "control"},
		{StorageRoute{Path: "/x", Function: fn, AsyncTopic: "t"}, "needs mode: async"},
		{StorageRoute{Path: "/x", Function: fn, Mode: ModeAsync, AsyncTopic: "t"}, "publisher"},
		{StorageRoute{Path: "/x", Function: fn, Mode: "later"}, "must be sync or async"},
	} {
		if err := s.HandleStorage(tt.r); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("HandleStorage(%+v) = %v, want an error containing %q", tt.r, err, tt.want)
		}
	}
}

func TestRouteFilter(t *testing.T) {
	sinkFile := filepath.Join(t.TempDir(), "sink.jsonl")
	sink := startFunction(t, "sink", builtinHandler(t, "sink"), invoker.Config{}, map[string]string{"SINK_FILE": sinkFile})
	pattern, err := filter.Compile(json.RawMessage(`{"data":{"queryStringParameters":{"keep":["yes"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{}, []Route{
		{Method: "POST", Path: "/sync", Function: sink, Filter: pattern.Match},
		{Method: "POST", Path: "/async", Function: sink, Mode: ModeAsync, Filter: pattern.Match},
	})
	c := httpClient(t)
	if resp, body := do(t, c, "POST", ts.url+"/sync?keep=no", "{}", nil); resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("filtered sync request: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, c, "POST", ts.url+"/async?keep=no", "{}", nil); resp.StatusCode != 202 {
		t.Fatalf("filtered async request: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, c, "POST", ts.url+"/sync?keep=yes", "{}", nil); resp.StatusCode != 200 || string(body) != "null" {
		t.Fatalf("matching sync request: %d %q", resp.StatusCode, body)
	}
	resp, _ := do(t, c, "POST", ts.url+"/async?keep=yes", "{}", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("matching async request: %d", resp.StatusCode)
	}
	id := resp.Header.Get(HeaderRequestID)
	pollUntil(t, func() bool {
		evs := sinkEvents(t, sinkFile)
		return len(evs) == 2 && evs[1].ID == id
	})
	var b bytes.Buffer
	ts.set.WritePrometheus(&b)
	if !strings.Contains(b.String(), `sluice_filtered_total{trigger="http"} 2`) {
		t.Fatalf("metrics lack the filtered count:\n%s", b.String())
	}
}

// FuzzStorageWebhook posts arbitrary bodies to the webhook handler: it
// must answer 200 with exactly the records the decoder finds, all queued,
// or 400 with nothing queued; never panic, never anything else.
func FuzzStorageWebhook(f *testing.F) {
	for _, name := range []string{"s3-put-encoded-key.json", "minio-put.json", "s3-delete-objects.json", "s3-test-event.json"} {
		f.Add([]byte(sample(f, name)))
	}
	f.Add([]byte(`{"Records":[{"s3":{}}]}`))
	f.Add([]byte(`{"Records":null}`))

	var (
		mu    sync.Mutex
		count int
	)
	fn := startFunction(f, "count", func(context.Context, *plugins.Event) ([]byte, error) {
		mu.Lock()
		count++
		mu.Unlock()
		return nil, nil
	}, invoker.Config{Queue: 1 << 20}, nil)
	s, err := New(Config{}, nil, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.HandleStorage(StorageRoute{Path: "/hook", Function: fn}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, decodeErr := formats.DecodeStorageNotification(body)
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/hook")
		ctx.Request.SetBody(body)
		mu.Lock()
		before := count
		mu.Unlock()
		s.serve(&ctx)
		pollUntil(t, func() bool { d, _ := fn.Load(); return d == 0 })
		switch code := ctx.Response.StatusCode(); {
		case code == 200 && decodeErr == nil:
			var a storageAnswer
			if err := json.Unmarshal(ctx.Response.Body(), &a); err != nil || a.Accepted != len(want) {
				t.Fatalf("answer %s for %d records", ctx.Response.Body(), len(want))
			}
			pollUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return count == before+len(want) })
		case code == 400 && decodeErr != nil:
			mu.Lock()
			defer mu.Unlock()
			if count != before {
				t.Fatalf("a refused body ran %d events", count-before)
			}
		default:
			t.Fatalf("status %d (decoder error %v): %s", code, decodeErr, ctx.Response.Body())
		}
	})
}
