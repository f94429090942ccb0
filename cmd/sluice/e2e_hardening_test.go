package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hardeningConfig serves echo with a short read timeout, so that the
// slow clients below are cut off within the test.
const hardeningConfig = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  max_body: 64KiB
  read_timeout: 3s
log: {level: warn, format: json}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: POST, path: /echo/{id}, function: echo}
`

// rssBytes is the resident set of process pid, from /proc/PID/status.
func rssBytes(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// dialAll opens n connections to addr, with up to 64 dials at once, and
// runs each through prep (nil for none).
func dialAll(t *testing.T, addr string, n int, prep func(net.Conn) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := net.Dial("tcp", addr)
				if err == nil && prep != nil {
					err = prep(c)
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return conns
}

// echoOnce sends one keep-alive request on c and reads its answer, leaving
// c idle.
func echoOnce(c net.Conn) error {
	if _, err := io.WriteString(c, "POST /echo/1 HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// TestE2ESlowClientsAndIdleConns holds 1,000 slowloris connections (headers
// sent one byte a second) and 5,000 idle keep-alive connections against the
// real binary: other clients are still served, the memory each connection
// costs stays under a ceiling, and the slow ones are cut off at
// read_timeout.
func TestE2ESlowClientsAndIdleConns(t *testing.T) {
	const (
		slow = 1000
		idle = 5000
	)
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, hardeningConfig))
	addr := strings.TrimPrefix(p.http, "http://")
	pid := p.cmd.Process.Pid
	served := func(n int) {
		t.Helper()
		for i := range n {
			if r := do(t, "POST", p.http+"/echo/"+strconv.Itoa(i), "application/json", []byte(`{}`)); r.code != 200 {
				t.Fatalf("request %d while the server holds slow and idle connections: status %d %s", i, r.code, r.body)
			}
		}
	}
	served(200) // warm: pools and the worker goroutines exist
	before := rssBytes(t, pid)

	// Keep-alive connections idle after one request each.
	dialAll(t, addr, idle, echoOnce)
	// Slowloris: a request line, then headers one byte a second.
	start := time.Now()
	slowConns := dialAll(t, addr, slow, func(c net.Conn) error {
		_, err := io.WriteString(c, "POST /echo/1 HTTP/1.1\r\nHost: sluice\r\nX-Slow: ")
		return err
	})
	stop := make(chan struct{})
	var dripped sync.WaitGroup
	dripped.Add(1)
	go func() {
		defer dripped.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range slowConns {
				_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.Write([]byte("a")) // fails once the server closed it
			}
		}
	}()
	defer func() { close(stop); dripped.Wait() }()

	served(200)
	held := rssBytes(t, pid)
	perConn := float64(held-before) / float64(slow+idle)
	// The ceiling: a connection's read buffer (16 KiB), a goroutine and
	// fasthttp's per-connection state, with room; the race detector's
	// shadow memory multiplies it.
	ceiling := float64(64 << 10)
	if raceEnabled {
		ceiling *= 4
	}
	t.Logf("RSS %d MiB before, %d MiB holding %d slow + %d idle connections: %.0f bytes/conn, %.2f of the %.0f ceiling",
		before>>20, held>>20, slow, idle, perConn, perConn/ceiling, ceiling)
	if perConn > ceiling {
		t.Errorf("%.0f bytes per held connection, over the ceiling of %.0f", perConn, ceiling)
	}

	// read_timeout (3s) bounds reading headers: each slowloris connection
	// is answered 408 or closed.
	var wg sync.WaitGroup
	var cut, answered atomic.Int64
	for _, c := range slowConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(c)
			if err == nil || !isTimeout(err) {
				cut.Add(1)
			}
			if bytes.HasPrefix(b, []byte("HTTP/1.1 408")) {
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d slow connections cut off after %s (%d with a 408)", cut.Load(), slow, time.Since(start).Round(time.Millisecond), answered.Load())
	if cut.Load() != slow {
		t.Errorf("%d of %d slow connections still open 30s after read_timeout", slow-cut.Load(), slow)
	}
	served(50)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rawExchange sends req on a new connection to addr and returns the status
// line and body of the answer.
func rawExchange(t *testing.T, addr string, req []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	// The answer may come before the whole request is written (a body
	// over the limit): write from another goroutine.
	go func() { _, _ = c.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestE2ERequestLimits sends requests over each limit to the real binary:
// headers too large or too many are 431, bodies over max_body 413 whether
// their length is declared or chunked.
func TestE2ERequestLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, hardeningConfig))
	addr := strings.TrimPrefix(p.http, "http://")
	head := "POST /echo/1 HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\n"
	headers := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: %s\r\n", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	chunked := func(total, chunk int) string {
		var b strings.Builder
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for sent := 0; sent < total; sent += chunk {
			n := min(chunk, total-sent)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, strings.Repeat("1", n))
		}
		b.WriteString("0\r\n\r\n")
		return b.String()
	}
	const max = 64 << 10
	for _, tt := range []struct {
		name string
		req  string
		code int
	}{
		{"under every limit", head + headers(50, 100) + "Content-Length: 1\r\n\r\n1", 200},
		{"100 headers", head + headers(97, 10) + "Content-Length: 1\r\n\r\n1", 200},
		{"101 headers", head + headers(98, 10) + "Content-Length: 1\r\n\r\n1", 431},
		{"1,000 short headers", head + headers(1000, 1) + "Content-Length: 1\r\n\r\n1", 431},
		{"one header of 20 KiB", head + headers(1, 20<<10) + "Content-Length: 1\r\n\r\n1", 431},
		{"64 KiB of headers", head + headers(64, 1<<10) + "Content-Length: 1\r\n\r\n1", 431},
		{"declared body at max_body", head + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", max, strings.Repeat("1", max)), 200},
		{"declared body over max_body", head + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", max+1, strings.Repeat("1", max+1)), 413},
		{"declared body of 1 GiB", head + "Content-Length: 1073741824\r\n\r\n" + strings.Repeat("1", 1<<16), 413},
		{"chunked body at max_body", head + chunked(max, 4096), 200},
		{"chunked body over max_body", head + chunked(max+1, 4096), 413},
		{"chunked body of 1 MiB in 1-byte chunks", head + chunked(1<<20, 1), 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := rawExchange(t, addr, []byte(tt.req))
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if code != 200 && !strings.Contains(body, `"message"`) {
				t.Errorf("refusal without the JSON error body: %s", body)
			}
		})
	}
	// The server still serves after every refusal.
	if r := do(t, "POST", p.http+"/echo/1", "application/json", []byte(`{}`)); r.code != 200 {
		t.Fatalf("after the refusals: status %d %s", r.code, r.body)
	}
}
