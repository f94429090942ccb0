package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/invoker"
)

func TestSweepInterval(t *testing.T) {
	tests := []struct {
		timeouts []time.Duration
		want     time.Duration
	}{
		{nil, maxSweep},
		{[]time.Duration{30 * time.Second, 60 * time.Second}, maxSweep},
		{[]time.Duration{0, 800 * time.Millisecond}, 100 * time.Millisecond},
		{[]time.Duration{time.Millisecond}, minSweep},
	}
	for _, tt := range tests {
		if got := sweepInterval(tt.timeouts...); got != tt.want {
			t.Errorf("sweepInterval(%v) = %v, want %v", tt.timeouts, got, tt.want)
		}
	}
}

// readUntilClosed reads c until the server closes it, returning what it
// read and when the close came.
func readUntilClosed(t *testing.T, c net.Conn, r io.Reader) (string, time.Time) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatalf("the server did not close the connection (read %q)", b)
	}
	return string(b), time.Now()
}

// TestTimeoutsAreEnforced: the coarse deadlines still close a connection
// that sends nothing, answer 408 to a request that stalls midway, and close
// an idle keep-alive connection; never before the timeout.
func TestTimeoutsAreEnforced(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Config{ReadTimeout: timeout, IdleTimeout: timeout, WriteTimeout: timeout},
		[]Route{{Method: "POST", Path: "/echo", Function: echo}})
	// The server's clock for a connection starts when it accepts it, which
	// can come before Dial returns here: start ours before dialing.
	dial := func() (net.Conn, time.Time) {
		start := time.Now()
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, start
	}

	t.Run("silent client", func(t *testing.T) {
		c, start := dial()
		got, end := readUntilClosed(t, c, c)
		if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("answered %q, want nothing or a 408", got)
		}
		if end.Sub(start) < timeout {
			t.Errorf("closed after %v, before the %v read timeout", end.Sub(start), timeout)
		}
	})
	t.Run("stalled request", func(t *testing.T) {
		c, start := dial()
		if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\""); err != nil {
			t.Fatal(err)
		}
		got, end := readUntilClosed(t, c, c)
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Errorf("answered %q, want a 408", got)
		}
		if end.Sub(start) < timeout {
			t.Errorf("answered after %v, before the %v read timeout", end.Sub(start), timeout)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, _ := dial()
		// The server's idle clock starts once it has answered, which is
		// after the request is sent and before the answer is read here.
		sent := time.Now()
		if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		rest, end := readUntilClosed(t, c, br)
		if rest != "" {
			t.Errorf("then sent %q", rest)
		}
		if end.Sub(sent) < timeout {
			t.Errorf("idle connection closed %v after the request was sent, before the %v idle timeout", end.Sub(sent), timeout)
		}
	})
}

// TestSlowFunctionKeepsItsConnection: a function running past the read
// timeout passes the connection's read deadline while nothing reads; the
// sweeper fires it then, and the next request on the connection must still
// be read.
func TestSlowFunctionKeepsItsConnection(t *testing.T) {
	sleep := startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{Timeout: 10 * time.Second}, nil)
	const timeout = 200 * time.Millisecond
	ts := startServer(t, Config{ReadTimeout: timeout, IdleTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second},
		[]Route{{Method: "POST", Path: "/sleep", Function: sleep}})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, body := range []string{`{"ms":700}`, `{"ms":1}`, `{"ms":1}`} {
		req := "POST /sleep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			itoa(len(body)) + "\r\n\r\n" + body
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, b)
		}
	}
}

// TestWriteTimeoutClosesStuckConnection: a client that stops reading a
// large response loses its connection after the write timeout, and the
// connection is released.
func TestWriteTimeoutClosesStuckConnection(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Config{WriteTimeout: timeout}, []Route{{Method: "POST", Path: "/echo", Function: echo}})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Echo returns the request as its event: a body of 4 MiB of escaped
	// quotes comes back as well over 8 MiB, more than loopback buffers.
	body := strings.Repeat(`"`, 4<<20)
	go func() {
		_, _ = io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	}()
	conns := func() int {
		ts.s.mu.Lock()
		ln := ts.s.ln
		ts.s.mu.Unlock()
		ln.mu.Lock()
		defer ln.mu.Unlock()
		return len(ln.conns)
	}
	waitUntil(t, "the connection is accepted", func() bool { return conns() == 1 })
	waitUntil(t, "the stuck connection is closed", func() bool { return conns() == 0 && ts.s.InFlight() == 0 })
}

// waitUntil polls cond until it holds, failing the test after 20s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
