package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// TestDrainRule: during Shutdown an idle connection is closed once idle,
// since the drain began or its last request, for twice the longest
// interval between its client's requests, within [min, max].
func TestDrainRule(t *testing.T) {
	const s = int64(time.Second)
	d := &drainRule{start: 100 * s, min: 1 * s, max: 10 * s}
	for _, tt := range []struct {
		name              string
		lastReq, gap, now int64
		want              bool
	}{
		{"one request, idle less than min since the drain began", 90 * s, 0, 100*s + s - 1, false},
		{"one request, idle min since the drain began", 90 * s, 0, 101 * s, true},
		{"a request during the drain restarts the wait", 105 * s, 0, 105*s + s - 1, false},
		{"rotating every 4s: kept 8s", 99 * s, 4 * s, 107 * s, false},
		{"rotating every 4s: closed after 8s", 99 * s, 4 * s, 108 * s, true},
		{"rotating every 30s: at most max", 99 * s, 30 * s, 110 * s, true},
		{"rotating every 30s: kept until max", 99 * s, 30 * s, 110*s - 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.expired(tt.lastReq, tt.gap, tt.now); got != tt.want {
				t.Errorf("expired(%d, %d, %d) = %t, want %t", tt.lastReq, tt.gap, tt.now, got, tt.want)
			}
		})
	}
}

// TestDrainRotatingClient: fasthttp's client with a first-in first-out pool
// (its default) comes back to each of its connections only every few
// seconds (here: 4 connections, a request a second, on a clock of the
// test's). The old server, draining, keeps them for their client's next
// request and answers it with Connection: close; the client reconnects to
// the successor, which shares the listening socket, as on a reload. Not
// one request fails. A connection its client leaves idle is closed after
// twice its client's interval, not before.
func TestDrainRotatingClient(t *testing.T) {
	const (
		conns = 4
		step  = time.Second // between two requests, so 4s between two on one connection
	)
	for _, tt := range []struct {
		name  string
		reuse bool // the client keeps sending during the drain
	}{
		{"client sends on", true},
		{"client leaves its connections idle", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var clk atomic.Int64
			clk.Store(time.Now().UnixNano())
			// The clock moves only as the test says: the deadlines fasthttp
			// sets by the wall clock must stay far ahead of it.
			cfg := Config{ReadTimeout: time.Hour, WriteTimeout: time.Hour, IdleTimeout: time.Hour}
			old := drainServer(t, cfg, "old")
			old.clock, old.sweep = clk.Load, time.Millisecond
			next := drainServer(t, cfg, "next")
			hold := make(chan struct{})
			if err := old.Handle("POST", "/hold", func(ctx *fasthttp.RequestCtx, p *Params) { <-hold }); err != nil {
				t.Fatal(err)
			}

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// The successor's listener is the same socket, as tableflip hands it over.
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			ln2, err := net.FileListener(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			go func() { _ = old.Serve(ln) }()

			c := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: conns, MaxIdemponentCallAttempts: 1}
			defer c.CloseIdleConnections()
			post := func(path string) (body string, closed bool, err error) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + ln.Addr().String() + path)
				req.Header.SetMethod("POST")
				req.SetBodyString(`{}`)
				err = c.DoTimeout(req, resp, 10*time.Second)
				return string(resp.Body()), resp.ConnectionClose(), err
			}
			// Open every connection of the pool: the requests wait until all
			// arrived.
			var wg sync.WaitGroup
			for range conns {
				wg.Go(func() {
					if _, _, err := post("/hold"); err != nil {
						t.Errorf("warm-up: %v", err)
					}
				})
			}
			pollUntil(t, func() bool { return old.InFlight() == conns })
			close(hold)
			wg.Wait()
			go func() { _ = next.Serve(ln2) }()
			old.mu.Lock()
			oln := old.ln
			old.mu.Unlock()

			// tick moves the clock a step and waits for a sweep at that time.
			tick := func(d time.Duration) {
				now := clk.Add(int64(d))
				pollUntil(t, func() bool { return oln.now.Load() >= now || oln.openConns() == 0 })
			}
			failed := 0
			send := func(want string) (closed bool) {
				t.Helper()
				tick(step)
				body, closed, err := post("/work")
				if err != nil {
					failed++
					t.Errorf("request: %v", err)
				} else if body != want {
					t.Errorf("answered by %q, want %q", body, want)
				}
				return closed
			}
			for range 3 * conns {
				send("old")
			}
			if n := oln.openConns(); n != conns {
				t.Fatalf("the client holds %d connections, want %d", n, conns)
			}

			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				shut <- old.Shutdown(ctx)
			}()
			pollUntil(t, func() bool {
				oln.mu.Lock()
				defer oln.mu.Unlock()
				return oln.closed
			})
			if tt.reuse {
				for i := range conns {
					if !send("old") {
						t.Errorf("answer %d of the draining server lacks Connection: close", i)
					}
				}
				for range conns {
					send("next")
				}
			} else {
				// 4s between two requests on a connection: kept 8s.
				tick(8*time.Second - time.Millisecond)
				if n := oln.openConns(); n != conns {
					t.Errorf("%d of %d idle connections closed before twice their interval", conns-n, conns)
				}
				tick(time.Millisecond)
				pollUntil(t, func() bool { return oln.openConns() == 0 })
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown still waits with no connection left")
			}
			if failed != 0 {
				t.Errorf("%d requests failed", failed)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = next.Shutdown(ctx)
		})
	}
}

// drainServer is a server whose /work answers name.
func drainServer(t *testing.T, cfg Config, name string) *Server {
	t.Helper()
	s, err := New(cfg, nil, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle("POST", "/work", func(ctx *fasthttp.RequestCtx, p *Params) { ctx.SetBodyString(name) }); err != nil {
		t.Fatal(err)
	}
	return s
}
