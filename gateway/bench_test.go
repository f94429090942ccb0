package gateway

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
)

// benchLoad sends POST /echo/42 with a small JSON body over loopback from
// parallel fasthttp clients and checks every answer is a 200.
func benchLoad(b *testing.B, addr string) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 512}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() {
		// CPU time per request (client and server, same process) is steadier
		// than wall time on a shared machine, and its ratio between two
		// servers is their throughput ratio on a dedicated one.
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + "/echo/42?x=1")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"hello":"world"}`)
		for pb.Next() {
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBareFasthttp is the ceiling BenchmarkGatewayEcho is measured
// against: a fasthttp handler answering a fixed JSON body, same client.
func BenchmarkBareFasthttp(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"hello":"world"}`)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()
	benchLoad(b, ln.Addr().String())
}

// BenchmarkGatewayEcho is a sync request through the whole gateway: route,
// envelope, invoker, builtin echo, response mapping.
func BenchmarkGatewayEcho(b *testing.B) {
	echo := startFunction(b, "echo", builtinHandler(b, "echo"), invoker.Config{Concurrency: 256, Queue: 4096}, nil)
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/echo/{id}", Function: echo}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	benchLoad(b, ln.Addr().String())
}

// BenchmarkServeHandler measures the gateway's handler alone on one
// goroutine, no sockets: route, envelope, invoker (inline), echo, mapping.
func BenchmarkServeHandler(b *testing.B) {
	echo := startFunction(b, "echo", builtinHandler(b, "echo"), invoker.Config{}, nil)
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/echo/{id}", Function: echo}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := requestCtx(b, "POST /echo/42?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\n"+
		"Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.serve(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

func BenchmarkEnvelope(b *testing.B) {
	ctx := requestCtx(b, "POST /echo/42?x=1&y=2 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n"+
		"Cookie: a=b; c=d\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}")
	r := testRouter(b, [2]string{"POST", "/echo/{id}"})
	p := new(Params)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		r.lookup(ctx.Method(), ctx.Path(), p)
		ri := requestInfo{headers: p.hs[:0], cookies: p.cs[:0], query: p.qs[:0]}
		ri.gather(ctx, p)
		buf = appendRequestData(buf[:0], &ri)
	}
}

// BenchmarkLambdaInvokeHandler measures a RequestResponse Invoke through
// the handler alone on one goroutine: name lookup, header checks, payload
// validation, envelope, invoker (inline), echo.
func BenchmarkLambdaInvokeHandler(b *testing.B) {
	echo := startFunction(b, "echo", builtinHandler(b, "echo"), invoker.Config{}, nil)
	s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	api, err := NewLambdaAPI(map[string]*invoker.Function{"echo": echo}, LambdaAPIConfig{}, NewLogTap())
	if err != nil {
		b.Fatal(err)
	}
	if err := api.Register(s); err != nil {
		b.Fatal(err)
	}
	ctx := requestCtx(b, "POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: localhost:8080\r\n"+
		"X-Amz-Invocation-Type: RequestResponse\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.serve(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkStorageWebhookHandler measures one S3 notification through the
// webhook handler alone: auth, decoding, queueing (a noop function drains
// the queue).
func BenchmarkStorageWebhookHandler(b *testing.B) {
	noop := startFunction(b, "noop", builtinHandler(b, "noop"), invoker.Config{Queue: 1 << 16}, nil)
	s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.HandleStorage(StorageRoute{Path: "/hook", Function: noop, Token: "s3cr3t"}); err != nil {
		b.Fatal(err)
	}
	body := sample(b, "s3-put-encoded-key.json")
	ctx := requestCtx(b, "POST /hook HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: Bearer s3cr3t\r\n"+
		"Content-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.serve(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkWriteOutput maps function outputs to responses: an event passed
// through as the body, and an API Gateway response (what Lambda-style
// functions return).
func BenchmarkWriteOutput(b *testing.B) {
	for _, c := range []struct{ name, out string }{
		{"passthrough", `{"specversion":"1.0","id":"dab7f2ce-b511-440d-af76-ffed3624312e","data":{"body":"{\"order\":{\"id\":\"A-1001\",\"items\":[{\"sku\":\"X\",\"qty\":2}],\"total\":42.5},\"customer\":\"c-17\"}","isBase64Encoded":false}}`},
		{"response", `{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{\"order\":{\"id\":\"A-1001\",\"items\":[{\"sku\":\"X\",\"qty\":2}],\"total\":42.5},\"customer\":\"c-17\"}","isBase64Encoded":false}`},
		{"response-plain-body", `{"statusCode":201,"headers":{"content-type":"text/plain","x-request-count":7},"cookies":["a=1; Path=/"],"body":"` + strings.Repeat("created ", 64) + `"}`},
		{"response-base64", `{"statusCode":200,"headers":{"content-type":"image/png"},"body":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==","isBase64Encoded":true}`},
		{"object-with-nested-statusCode", `{"data":{"statusCode":404,"message":"` + strings.Repeat("x", 200) + `"},"items":[1,2,3,{"k":"v"}]}`},
		{"object-with-errorCode", `{"errorCode":"E42","message":"` + strings.Repeat("x", 200) + `","items":[1,2,3,{"k":"v"}]}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			var resp fasthttp.Response
			out := []byte(c.out)
			b.ReportAllocs()
			for b.Loop() {
				resp.Reset()
				if err := writeOutput(&resp, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
