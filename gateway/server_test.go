package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-lambda-go/events"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func builtinHandler(t testing.TB, name string) plugins.Handler {
	t.Helper()
	h, ok := builtin.Lookup(name)
	if !ok {
		t.Fatalf("no builtin %q", name)
	}
	return h
}

// startFunction starts a real invoker over a builtin worker running h.
func startFunction(t testing.TB, name string, h plugins.Handler, cfg invoker.Config, env map[string]string) *invoker.Function {
	t.Helper()
	return startFunctionDeps(t, name, h, cfg, env, invoker.Deps{Metrics: metrics.NewSet()})
}

// startFunctionDeps is startFunction with the invoker's Deps given (a
// tracer, an invocation hook).
func startFunctionDeps(t testing.TB, name string, h plugins.Handler, cfg invoker.Config, env map[string]string, deps invoker.Deps) *invoker.Function {
	t.Helper()
	f, err := invoker.New(name, cfg, builtin.NewWorker(name, h, env), deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Close(ctx)
	})
	return f
}

type testServer struct {
	s    *Server
	url  string
	addr string
	set  *metrics.Set
	logs *syncBuffer
}

func startServer(t testing.TB, cfg Config, routes []Route) *testServer {
	t.Helper()
	ts := &testServer{set: metrics.NewSet(), logs: &syncBuffer{}}
	log := zerolog.New(ts.logs)
	s, err := New(cfg, routes, Deps{Logger: &log, Metrics: ts.set})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.s, ts.addr, ts.url = s, ln.Addr().String(), "http://"+ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

func httpClient(t testing.TB) *http.Client {
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// do sends a request and checks the request id every response carries.
func do(t testing.TB, c *http.Client, method, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if id := resp.Header.Get(HeaderRequestID); !uuidRE.MatchString(id) {
		t.Errorf("%s %s: %s = %q, want a UUID", method, url, HeaderRequestID, id)
	}
	return resp, b
}

// checkError checks the JSON error body and its request id.
func checkError(t testing.TB, resp *http.Response, body []byte, code int, msg string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	var e struct {
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Message != msg || e.RequestID != resp.Header.Get(HeaderRequestID) {
		t.Fatalf("error body = %+v, want message %q and the request id %q", e, msg, resp.Header.Get(HeaderRequestID))
	}
}

// decodeEcho decodes the envelope echo returned and its API Gateway data.
func decodeEcho(t testing.TB, body []byte) (plugins.Event, events.APIGatewayV2HTTPRequest) {
	t.Helper()
	var ev plugins.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("echo output %s: %v", body, err)
	}
	return ev, decodeV2(t, ev.Data)
}

func TestServeSync(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	noop := startFunction(t, "noop", builtinHandler(t, "noop"), invoker.Config{}, nil)
	fail := startFunction(t, "fail", builtinHandler(t, "fail"), invoker.Config{}, nil)
	sleep := startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{Timeout: 100 * time.Millisecond}, nil)
	shaped := startFunction(t, "shaped", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(ev.Data, &req); err != nil {
			return nil, err
		}
		return json.Marshal(events.APIGatewayV2HTTPResponse{
			StatusCode: 201,
			Headers:    map[string]string{"Content-Type": "application/octet-stream", "X-Id": req.PathParameters["id"]},
			Cookies:    []string{"session=abc; HttpOnly", "theme=dark"},
			Body:       base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 3}),

			IsBase64Encoded: true,
		})
	}, invoker.Config{}, nil)
	bad := startFunction(t, "bad", func(context.Context, *plugins.Event) ([]byte, error) {
		return []byte(`{"statusCode":"teapot"}`), nil
	}, invoker.Config{}, nil)

	ts := startServer(t, Config{}, []Route{
		{Method: "POST", Path: "/echo/{id}", Function: echo},
		{Method: "GET", Path: "/files/{path+}", Function: echo, Mode: ModeSync},
		{Method: "ANY", Path: "/noop", Function: noop},
		{Method: "POST", Path: "/fail", Function: fail},
		{Method: "POST", Path: "/sleep", Function: sleep},
		{Method: "GET", Path: "/shaped/{id}", Function: shaped},
		{Method: "GET", Path: "/bad", Function: bad},
	})
	c := httpClient(t)

	t.Run("echo", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/echo/42?x=1&x=2&y=%20z", `{"hello":"world"}`, map[string]string{
			"Content-Type": "application/json",
			"Traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, content-type %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		ev, req := decodeEcho(t, body)
		id := resp.Header.Get(HeaderRequestID)
		if ev.ID != id || req.RequestContext.RequestID != id {
			t.Errorf("event id %q, requestContext.requestId %q, want the request id %q", ev.ID, req.RequestContext.RequestID, id)
		}
		if ev.Type != plugins.TypeHTTPRequest || ev.Source != "/sluice/http/echo" || ev.Subject != "/echo/42" ||
			ev.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || ev.Time.IsZero() {
			t.Errorf("envelope = %+v", ev)
		}
		if req.PathParameters["id"] != "42" || req.QueryStringParameters["x"] != "1,2" || req.QueryStringParameters["y"] != " z" ||
			req.RawQueryString != "x=1&x=2&y=%20z" || req.Body != `{"hello":"world"}` || req.IsBase64Encoded ||
			req.RequestContext.HTTP.SourceIP != "127.0.0.1" || req.RouteKey != "POST /echo/{id}" ||
			req.Headers["x-forwarded-port"] != ts.addr[strings.LastIndexByte(ts.addr, ':')+1:] {
			t.Errorf("data = %+v", req)
		}
	})
	t.Run("greedy path", func(t *testing.T) {
		resp, body := do(t, c, "GET", ts.url+"/files/a/b/c.txt", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if _, req := decodeEcho(t, body); req.PathParameters["path"] != "a/b/c.txt" {
			t.Fatalf("pathParameters = %v", req.PathParameters)
		}
	})
	t.Run("null output", func(t *testing.T) {
		resp, body := do(t, c, "DELETE", ts.url+"/noop", "", nil)
		if resp.StatusCode != 200 || string(body) != "null" {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
	})
	t.Run("shaped response", func(t *testing.T) {
		resp, body := do(t, c, "GET", ts.url+"/shaped/7", "", nil)
		if resp.StatusCode != 201 || !bytes.Equal(body, []byte{0, 1, 2, 3}) ||
			resp.Header.Get("Content-Type") != "application/octet-stream" || resp.Header.Get("X-Id") != "7" {
			t.Fatalf("status %d, headers %v, body %q", resp.StatusCode, resp.Header, body)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
			t.Fatalf("Set-Cookie = %q", got)
		}
	})
	t.Run("function error", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/fail", `{"error":"boom"}`, map[string]string{"Content-Type": "application/json"})
		checkError(t, resp, body, 502, msgFunctionError)
	})
	t.Run("invalid output", func(t *testing.T) {
		resp, body := do(t, c, "GET", ts.url+"/bad", "", nil)
		checkError(t, resp, body, 502, msgBadOutput)
	})
	t.Run("timeout", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/sleep", `{"ms":5000}`, map[string]string{"Content-Type": "application/json"})
		checkError(t, resp, body, 504, msgTimeout)
	})
	t.Run("not found", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/nope", "", nil)
		checkError(t, resp, body, 404, msgNotFound)
	})
	t.Run("method not allowed", func(t *testing.T) {
		resp, body := do(t, c, "GET", ts.url+"/echo/1", "", nil)
		checkError(t, resp, body, 405, msgMethodNotAllowed)
		if got := resp.Header.Get("Allow"); got != "POST" {
			t.Fatalf("Allow = %q", got)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		var b bytes.Buffer
		ts.set.WritePrometheus(&b)
		for _, want := range []string{
			`sluice_http_requests_total{route="POST /echo/{id}",code="200"} 1`,
			`sluice_http_requests_total{route="POST /fail",code="502"} 1`,
			`sluice_http_requests_total{route="none",code="404"} 1`,
			`sluice_http_requests_total{route="none",code="405"} 1`,
			`sluice_http_request_duration_seconds_count{route="POST /echo/{id}"} 1`,
		} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	t.Run("listening log line", func(t *testing.T) {
		var line struct {
			Message, Addr, Listener string
		}
		first, _, _ := strings.Cut(ts.logs.String(), "\n")
		if err := json.Unmarshal([]byte(first), &line); err != nil {
			t.Fatal(err)
		}
		if line.Message != "listening" || line.Addr != ts.addr || line.Listener != "http" {
			t.Fatalf("first log line = %s", first)
		}
	})
}

func TestServeAsync(t *testing.T) {
	sinkFile := filepath.Join(t.TempDir(), "sink.jsonl")
	sink := startFunction(t, "sink", builtinHandler(t, "sink"), invoker.Config{}, map[string]string{"SINK_FILE": sinkFile})
	pub := &recordingPublisher{}
	failing := &recordingPublisher{err: errors.New("broker down")}
	ts := startServer(t, Config{}, []Route{
		{Method: "POST", Path: "/sink/{id}", Function: sink, Mode: ModeAsync},
		{Method: "POST", Path: "/jobs", Function: sink, Mode: ModeAsync, AsyncTopic: "jobs", Publisher: pub},
		{Method: "POST", Path: "/down", Function: sink, Mode: ModeAsync, AsyncTopic: "jobs", Publisher: failing},
	})
	c := httpClient(t)

	accepted := func(t *testing.T, resp *http.Response, body []byte) string {
		t.Helper()
		var r struct{ RequestID string }
		if resp.StatusCode != 202 || json.Unmarshal(body, &r) != nil || r.RequestID != resp.Header.Get(HeaderRequestID) {
			t.Fatalf("status %d, body %s", resp.StatusCode, body)
		}
		return r.RequestID
	}

	t.Run("in-memory queue", func(t *testing.T) {
		var ids []string
		for i := range 5 {
			resp, body := do(t, c, "POST", fmt.Sprintf("%s/sink/%d", ts.url, i), fmt.Sprintf(`{"n":%d}`, i), map[string]string{"Content-Type": "application/json"})
			ids = append(ids, accepted(t, resp, body))
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(sinkFile)
			got := 0
			for _, id := range ids {
				if bytes.Contains(b, []byte(`"id":"`+id+`"`)) {
					got++
				}
			}
			if got == len(ids) {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				var ev plugins.Event
				if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
					t.Fatal(err)
				}
				if _, req := decodeEcho(t, []byte(lines[0])); ev.Type != plugins.TypeHTTPRequest || req.RouteKey != "POST /sink/{id}" {
					t.Fatalf("sunk event %s", lines[0])
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events reached the sink:\n%s", got, len(ids), b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("publisher", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/jobs", "job", map[string]string{"Content-Type": "text/plain"})
		id := accepted(t, resp, body)
		evs := pub.events()
		if len(evs) != 1 || evs[0].topic != "jobs" || evs[0].ev.ID != id || !evs[0].hadDeadline {
			t.Fatalf("published %+v", evs)
		}
		if _, req := decodeEcho(t, evs[0].json); req.Body != "job" {
			t.Fatalf("published body %q", req.Body)
		}
	})
	t.Run("publisher error", func(t *testing.T) {
		resp, body := do(t, c, "POST", ts.url+"/down", "job", nil)
		checkError(t, resp, body, 503, msgUnavailable)
		if resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
	})
}

type published struct {
	topic       string
	ev          *plugins.Event
	json        []byte
	hadDeadline bool
}

// recordingPublisher stands in for the Kafka publisher, which another
// package provides; it keeps what it was given, encoded at once as a real
// producer would, since the event is not the publisher's after it returns.
type recordingPublisher struct {
	err error
	mu  sync.Mutex
	got []published
}

func (p *recordingPublisher) Publish(ctx context.Context, topic string, ev *plugins.Event) error {
	if p.err != nil {
		return p.err
	}
	_, ok := ctx.Deadline()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, published{topic, ev, ev.AppendJSON(nil), ok})
	return nil
}

func (p *recordingPublisher) events() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.got...)
}

func TestServeOverload(t *testing.T) {
	sleep := startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{
		Concurrency: 1, Queue: 1, Timeout: 10 * time.Second,
		Batch: invoker.BatchConfig{MaxItems: 1},
	}, nil)
	ts := startServer(t, Config{}, []Route{{Method: "POST", Path: "/sleep", Function: sleep}})
	c := httpClient(t)

	const n = 24
	var ok, throttled atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, body := do(t, c, "POST", ts.url+"/sleep", `{"ms":100}`, map[string]string{"Content-Type": "application/json"})
			switch resp.StatusCode {
			case 200:
				if string(body) != `{"slept_ms":100}` {
					t.Errorf("200 with body %q", body)
				}
				ok.Add(1)
			case 429:
				checkError(t, resp, body, 429, msgTooMany)
				if resp.Header.Get("Retry-After") != "1" {
					t.Errorf("429 without Retry-After: %v", resp.Header)
				}
				throttled.Add(1)
			default:
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if ok.Load()+throttled.Load() != n || ok.Load() == 0 || throttled.Load() == 0 {
		t.Fatalf("%d ok, %d throttled of %d: want both, and nothing else", ok.Load(), throttled.Load(), n)
	}
	var b bytes.Buffer
	ts.set.WritePrometheus(&b)
	if want := fmt.Sprintf(`sluice_http_requests_total{route="POST /sleep",code="429"} %d`, throttled.Load()); !strings.Contains(b.String(), want) {
		t.Fatalf("metrics lack %s:\n%s", want, b.String())
	}
}

func TestServeBodyTooLarge(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	ts := startServer(t, Config{MaxBody: 1024}, []Route{{Method: "POST", Path: "/echo", Function: echo}})
	big := strings.Repeat("x", 4<<20)

	t.Run("net/http content-length", func(t *testing.T) {
		resp, body := do(t, httpClient(t), "POST", ts.url+"/echo", big, nil)
		checkError(t, resp, body, 413, msgTooLarge)
	})
	t.Run("net/http chunked", func(t *testing.T) {
		c := httpClient(t)
		req, err := http.NewRequest("POST", ts.url+"/echo", io.MultiReader(strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		checkError(t, resp, body, 413, msgTooLarge)
	})
	t.Run("net/http expect 100-continue", func(t *testing.T) {
		resp, body := do(t, httpClient(t), "POST", ts.url+"/echo", big, map[string]string{"Expect": "100-continue"})
		checkError(t, resp, body, 413, msgTooLarge)
	})
	t.Run("fasthttp client", func(t *testing.T) {
		c := &fasthttp.Client{}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(ts.url + "/echo")
		req.Header.SetMethod("POST")
		req.SetBodyString(big)
		if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatalf("fasthttp client: %v", err)
		}
		if resp.StatusCode() != 413 || !uuidRE.Match(resp.Header.Peek(HeaderRequestID)) ||
			!bytes.Contains(resp.Body(), []byte(`"message":"Request Entity Too Large"`)) {
			t.Fatalf("status %d, id %q, body %s", resp.StatusCode(), resp.Header.Peek(HeaderRequestID), resp.Body())
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		resp, body := do(t, httpClient(t), "POST", ts.url+"/echo", strings.Repeat("y", 1024), map[string]string{"Content-Type": "text/plain"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestServeHeadersTooLarge(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	ts := startServer(t, Config{MaxHeaderBytes: 2048}, []Route{{Method: "GET", Path: "/echo", Function: echo}})
	resp, body := do(t, httpClient(t), "GET", ts.url+"/echo", "", map[string]string{"X-Big": strings.Repeat("h", 4096)})
	checkError(t, resp, body, 431, "Request Header Fields Too Large")
}

func TestServeCustomHandler(t *testing.T) {
	s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Handle("POST", "/2015-03-31/functions/{name}/invocations", func(ctx *fasthttp.RequestCtx, p *Params) {
		if p.Get("name") == "missing" {
			WriteError(ctx, 404, "Function not found: "+p.Get("name"))
			return
		}
		fmt.Fprintf(ctx, "%s %s %s", p.RouteKey(), p.Get("name"), p.RequestID())
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle("POST", "/2015-03-31/functions/{fn}/invocations", nil); !errors.Is(err, ErrBadRoute) {
		t.Fatalf("nil handler: %v", err)
	}
	if err := s.Handle("POST", "/2015-03-31/functions/{fn}/invocations", func(*fasthttp.RequestCtx, *Params) {}); !errors.Is(err, ErrDuplicateRoute) {
		t.Fatalf("duplicate: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c := httpClient(t)
	url := "http://" + ln.Addr().String()

	resp, body := do(t, c, "POST", url+"/2015-03-31/functions/echo/invocations", "{}", nil)
	want := "POST /2015-03-31/functions/{name}/invocations echo " + resp.Header.Get(HeaderRequestID)
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("status %d, body %q, want %q", resp.StatusCode, body, want)
	}
	resp, body = do(t, c, "POST", url+"/2015-03-31/functions/missing/invocations", "{}", nil)
	checkError(t, resp, body, 404, "Function not found: missing")

	pollUntil(t, func() bool { return s.InFlight() == 0 })
	if err := s.Handle("GET", "/late", func(*fasthttp.RequestCtx, *Params) {}); err == nil {
		t.Fatal("Handle after Serve succeeded")
	}
}

func TestServePanicIsAnswered(t *testing.T) {
	s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle("GET", "/panic", func(*fasthttp.RequestCtx, *Params) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	ctx := requestCtx(t, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	s.serve(ctx)
	if ctx.Response.StatusCode() != 500 || !uuidRE.Match(ctx.Response.Header.Peek(HeaderRequestID)) || s.InFlight() != 0 {
		t.Fatalf("status %d, id %q, in flight %d", ctx.Response.StatusCode(), ctx.Response.Header.Peek(HeaderRequestID), s.InFlight())
	}
}

func TestNewErrors(t *testing.T) {
	fn := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	tests := []struct {
		name   string
		cfg    Config
		routes []Route
		want   string
	}{
		{"negative max_body", Config{MaxBody: -1}, nil, "server.max_body"},
		{"tiny header buffer", Config{MaxHeaderBytes: 10}, nil, "server.max_header_bytes"},
		{"no function", Config{}, []Route{{Method: "GET", Path: "/a"}}, "route 0 (GET /a): no function"},
		{"bad mode", Config{}, []Route{{Method: "GET", Path: "/a", Function: fn, Mode: "later"}}, `mode "later"`},
		{"topic without async", Config{}, []Route{{Method: "GET", Path: "/a", Function: fn, AsyncTopic: "t"}}, "async_topic needs mode: async"},
		{"topic without publisher", Config{}, []Route{{Method: "GET", Path: "/a", Function: fn, Mode: ModeAsync, AsyncTopic: "t"}}, "publisher"},
		{"duplicate", Config{}, []Route{{Method: "GET", Path: "/a/{x}", Function: fn}, {Method: "GET", Path: "/a/{y}", Function: fn}}, "route 1 (GET /a/{y})"},
		{"bad path", Config{}, []Route{{Method: "GET", Path: "a", Function: fn}}, "must start with /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.routes, Deps{Metrics: metrics.NewSet()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func pollUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestShutdownDrains(t *testing.T) {
	sleep := startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{Timeout: 5 * time.Second}, nil)
	// No spread: every answer from the start of Shutdown on closes.
	s, err := New(Config{DrainSpread: time.Nanosecond}, []Route{{Method: "POST", Path: "/sleep", Function: sleep}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/sleep"
	c := httpClient(t)

	const n = 4
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() {
			resp, body := do(t, c, "POST", url, `{"ms":300}`, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode == 200 && string(body) != `{"slept_ms":300}` {
				t.Errorf("body %q", body)
			}
			if !resp.Close {
				t.Errorf("a response during shutdown lacks Connection: close")
			}
			codes <- resp.StatusCode
		})
	}
	pollUntil(t, func() bool { return s.InFlight() == n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("in-flight request answered %d, want 200", code)
		}
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

// TestShutdownDeadline: requests still running when Shutdown's context
// ends are not cut off; closing their function answers them 503.
func TestShutdownDeadline(t *testing.T) {
	sleep := startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{Timeout: 30 * time.Second, Concurrency: 1}, nil)
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/sleep", Function: sleep}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/sleep"
	c := httpClient(t)

	const n = 3 // one running, two queued behind concurrency 1
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() {
			resp, body := do(t, c, "POST", url, `{"ms":20000}`, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode == 503 {
				checkError(t, resp, body, 503, msgUnavailable)
			}
			codes <- resp.StatusCode
		})
	}
	pollUntil(t, func() bool { return s.InFlight() == n })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 requests still in flight") {
		t.Fatalf("Shutdown = %v, want a deadline error counting 3 requests", err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer ccancel()
	_ = sleep.Close(cctx) // its drain deadline passes: everything ends at once
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := s.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 503 {
			t.Errorf("request cut short answered %d, want 503", code)
		}
	}
}

// TestServeAllocs holds the gateway's routing path, up to a written 404 or
// 405, to zero allocations per request.
func TestServeAllocs(t *testing.T) {
	s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle("POST", "/echo/{id}", func(ctx *fasthttp.RequestCtx, p *Params) {}); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo/1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /echo/1 HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		ctx := requestCtx(t, raw)
		s.serve(ctx) // warm the pools and the metric caches
		allocs := testing.AllocsPerRun(200, func() {
			ctx.Response.Reset()
			s.serve(ctx)
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocations per request, want 0", raw[:strings.IndexByte(raw, '\r')], allocs)
		}
	}
}

// TestServeBadRequest sends a request fasthttp cannot parse over a raw
// socket: it still gets the JSON error body and a request id.
func TestServeBadRequest(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	ts := startServer(t, Config{}, []Route{{Method: "GET", Path: "/echo", Function: echo}})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !uuidRE.MatchString(resp.Header.Get(HeaderRequestID)) {
		t.Errorf("no request id: %v", resp.Header)
	}
	checkError(t, resp, body, 400, "Bad Request")
}

// TestShutdownIdleConnections: a keep-alive connection idle when Shutdown
// begins still carries its client's next request, answered with
// Connection: close, so that a client reusing it (fasthttp's, which does
// not retry a POST) sees no reset; one that stays idle is closed after
// IdleDrain.
func TestShutdownIdleConnections(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	for _, tt := range []struct {
		name      string
		idleDrain time.Duration
		reuse     bool
	}{
		{"reused during the drain", time.Hour, true},
		{"still idle after IdleDrain", 50 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{IdleDrain: tt.idleDrain, DrainSpread: time.Nanosecond}, []Route{{Method: "POST", Path: "/echo", Function: echo}}, Deps{Metrics: metrics.NewSet()})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Serve(ln) }()
			c := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1, MaxIdemponentCallAttempts: 1}
			post := func() (*fasthttp.Response, error) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				req.SetRequestURI("http://" + ln.Addr().String() + "/echo")
				req.Header.SetMethod("POST")
				req.SetBodyString(`{}`)
				return resp, c.DoTimeout(req, resp, 10*time.Second)
			}
			if resp, err := post(); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("before Shutdown: %v", err)
			}

			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				done <- s.Shutdown(ctx)
			}()
			pollUntil(t, func() bool {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			if tt.reuse {
				resp, err := post()
				if err != nil {
					t.Fatalf("a request on a connection idle when Shutdown began: %v", err)
				}
				if resp.StatusCode() != 200 || !resp.ConnectionClose() {
					t.Errorf("status %d, Connection: close %t", resp.StatusCode(), resp.ConnectionClose())
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown still waits although no connection is left (or IdleDrain passed)")
			}
		})
	}
}

// TestDrainSpread: during Shutdown each connection closes from a moment of
// its own within the spread, spread evenly over sequential connection
// ids, and every connection does by its end.
func TestDrainSpread(t *testing.T) {
	const spread = time.Second
	s := &Server{}
	s.spread.Store(int64(spread))
	for _, tt := range []struct {
		since    time.Duration
		min, max int // of 1000 connections closing
	}{
		{0, 0, 1},
		{spread / 4, 200, 300},
		{spread / 2, 450, 550},
		{spread * 3 / 4, 700, 800},
		{spread, 1000, 1000},
	} {
		now := time.Now().UnixNano()
		s.drainStart.Store(now - int64(tt.since))
		n := 0
		for id := uint64(1); id <= 1000; id++ {
			if s.closeAt(id, now) {
				n++
			}
		}
		if n < tt.min || n > tt.max {
			t.Errorf("%s into the drain: %d of 1000 connections close, want %d to %d", tt.since, n, tt.min, tt.max)
		}
	}
}
