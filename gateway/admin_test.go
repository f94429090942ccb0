package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins/builtin"
)

func startAdmin(t *testing.T, cfg AdminConfig, ready func() error) string {
	t.Helper()
	a := NewAdmin(cfg, ready, Deps{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("admin shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("admin serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	// Gateway series reach /metrics through a registered set.
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	t.Cleanup(func() { metrics.UnregisterSet(set, true) })
	newRouteMetrics(set, "GET /x").observe(200, time.Now())

	var ready atomic.Bool
	url := startAdmin(t, AdminConfig{}, func() error {
		if !ready.Load() {
			return errors.New("functions not ready: echo")
		}
		return nil
	})
	c := httpClient(t)

	if code, body := get(t, c, url+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, c, url+"/readyz", ""); code != 503 || !strings.Contains(body, "functions not ready: echo") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, c, url+"/readyz", ""); code != 200 {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	code, body := get(t, c, url+"/metrics", "")
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", `sluice_http_requests_total{route="GET /x",code="200"} 1`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if code, body := get(t, c, url+"/debug/pprof/", ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d", code)
	}
	if code, body := get(t, c, url+"/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("/debug/pprof/goroutine = %d %.80q", code, body)
	}
	if code, _ := get(t, c, url+"/nope", ""); code != 404 {
		t.Errorf("/nope = %d", code)
	}
}

func TestAdminToken(t *testing.T) {
	url := startAdmin(t, AdminConfig{Token: "s3cret"}, nil)
	c := httpClient(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		if code, _ := get(t, c, url+path, ""); code != 401 {
			t.Errorf("%s without token = %d, want 401", path, code)
		}
		if code, _ := get(t, c, url+path, "wrong"); code != 401 {
			t.Errorf("%s with a wrong token = %d, want 401", path, code)
		}
		if code, _ := get(t, c, url+path, "s3cret"); code != 200 {
			t.Errorf("%s with the token = %d, want 200", path, code)
		}
	}
}

// publicAddr makes a loopback listener claim a public address, to test the
// token rule without listening on a public interface.
type publicAddr struct{ net.Listener }

func (publicAddr) Addr() net.Addr { return &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 9090} }

func TestAdminNeedsTokenOffLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := NewAdmin(AdminConfig{}, nil, Deps{}).Serve(publicAddr{ln}); !errors.Is(err, ErrAdminNeedsToken) {
		t.Fatalf("Serve = %v, want ErrAdminNeedsToken", err)
	}
}

func TestReadyFunctions(t *testing.T) {
	h, _ := builtin.Lookup("noop")
	f, err := invoker.New("late", invoker.Config{}, builtin.NewWorker("late", h, nil), invoker.Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	started := startFunction(t, "early", h, invoker.Config{}, nil)
	ready := ReadyFunctions(started, f)
	if err := ready(); err == nil || err.Error() != "functions not ready: late" {
		t.Fatalf("ready() = %v", err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	if err := ready(); err != nil {
		t.Fatalf("ready() after start = %v", err)
	}
}
