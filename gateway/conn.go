package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Lingering close bounds: how long and how much of an unread request body
// is drained after an early answer before the connection is closed anyway.
const (
	lingerTimeout = 5 * time.Second
	lingerMaxMin  = 8 << 20
)

// Coarse deadlines. fasthttp sets three deadlines per request (the idle
// wait, reading the request, writing the response), each a clock read and
// a runtime timer update under locks: together more than routing and
// answering a request costs. The gateway's timeouts are seconds long, so
// the connections Serve accepts only record their deadlines, and a sweeper
// per listener enforces those that passed, every sweep interval: a
// deadline fires up to one interval late.
const (
	minSweep = 5 * time.Millisecond
	maxSweep = 250 * time.Millisecond
)

// sweepInterval is the sweep interval for the shortest timeout in use: an
// eighth of it, within [minSweep, maxSweep].
func sweepInterval(timeouts ...time.Duration) time.Duration {
	d := maxSweep
	for _, t := range timeouts {
		if t > 0 {
			d = min(d, t/8)
		}
	}
	return max(d, minSweep)
}

// listener wraps the listener Serve is given: its connections keep coarse
// deadlines, and those answered before their request body was read (413)
// close gracefully.
type listener struct {
	net.Listener
	lingerMax int64
	sweep     time.Duration

	once     sync.Once
	closeErr error

	mu      sync.Mutex
	conns   map[*conn]struct{} // open connections, for the sweeper
	closed  bool
	running bool         // a sweeper goroutine runs
	now     atomic.Int64 // unix nanos at the last sweep
}

func newListener(inner net.Listener, lingerMax int64, sweep time.Duration) *listener {
	l := &listener{Listener: inner, lingerMax: lingerMax, sweep: sweep, conns: make(map[*conn]struct{})}
	l.now.Store(time.Now().UnixNano())
	return l
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	var cc *conn
	if tc, ok := c.(tlsConnection); ok {
		// Keep the TLS methods visible: fasthttp's IsTLS looks for them.
		t := &tlsConn{conn: conn{Conn: c, l: l, lingerMax: l.lingerMax}, tls: tc}
		nc, cc = t, &t.conn
	} else {
		cc = &conn{Conn: c, l: l, lingerMax: l.lingerMax}
		nc = cc
	}
	l.mu.Lock()
	l.conns[cc] = struct{}{}
	if !l.running {
		l.running = true
		go l.sweeper()
	}
	l.mu.Unlock()
	return nc, nil
}

type tlsConnection interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// tlsConn is a conn over TLS.
type tlsConn struct {
	conn
	tls tlsConnection
}

func (c *tlsConn) Handshake() error                     { return c.tls.Handshake() }
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

func (l *listener) Close() error {
	l.once.Do(func() {
		l.closeErr = l.Listener.Close()
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
	})
	return l.closeErr
}

// sweeper enforces the deadlines that passed, until the listener is closed
// and its last connection too: connections still draining after Shutdown
// keep their deadlines.
func (l *listener) sweeper() {
	t := time.NewTicker(l.sweep)
	defer t.Stop()
	for range t.C {
		now := time.Now().UnixNano()
		l.now.Store(now)
		l.mu.Lock()
		if l.closed && len(l.conns) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		for c := range l.conns {
			c.enforce(now)
		}
		l.mu.Unlock()
	}
}

func (l *listener) remove(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// conn is a server connection with coarse deadlines that can close with a
// lingering close.
//
// fasthttp answers a request whose body is over the limit (413) without
// reading the body, then closes the connection. Closing a socket with
// unread input makes the kernel send a reset, and a client still writing
// its body gets "connection reset" instead of the 413: fasthttp's own
// client, which reads only after writing, always does. So such a
// connection half-closes instead (the client sees the answer and end of
// stream), drains what the client still sends for a bounded time and
// size, and only then closes, as net/http and nginx do.
type conn struct {
	net.Conn
	l         *listener
	lingerMax int64
	linger    atomic.Bool

	// mu orders the owner's deadline changes with the sweeper's.
	mu sync.Mutex
	// rd and wd are the read and write deadlines in unix nanos, 0 for none.
	rd, wd int64
	// rFired and wFired report that the sweeper set the real deadline in
	// the past: the next deadline set must reach the socket.
	rFired, wFired bool
	closed         bool
}

// past is the deadline the sweeper sets: any time before now fails the
// pending and later I/O at once.
var past = time.Unix(1, 0)

func deadlineNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, &c.rd, &c.rFired, c.Conn.SetReadDeadline)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, &c.wd, &c.wFired, c.Conn.SetWriteDeadline)
}

func (c *conn) setDeadline(t time.Time, d *int64, fired *bool, set func(time.Time) error) error {
	n := deadlineNanos(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	*d = n
	switch {
	case *fired:
		// The socket's deadline is in the past: put the new one there.
		*fired = false
		return set(t)
	case n != 0 && n <= c.l.now.Load():
		// Already passed (a caller unblocking I/O): at once, not at the
		// next sweep.
		*fired = true
		return set(t)
	}
	return nil
}

// enforce fires the deadlines that passed by now. Called by the sweeper.
func (c *conn) enforce(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.rd != 0 && c.rd <= now && !c.rFired {
		c.rFired = true
		_ = c.Conn.SetReadDeadline(past)
	}
	if c.wd != 0 && c.wd <= now && !c.wFired {
		c.wFired = true
		_ = c.Conn.SetWriteDeadline(past)
	}
}

func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.l.remove(c)
	if !c.linger.Load() {
		return c.Conn.Close()
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c.Conn, c.lingerMax)
	return c.Conn.Close()
}

// lingerOnClose marks nc, a connection Serve accepted, for a lingering
// close.
func lingerOnClose(nc net.Conn) {
	switch c := nc.(type) {
	case *conn:
		c.linger.Store(true)
	case *tlsConn:
		c.linger.Store(true)
	}
}

// openConns is how many connections Serve accepted are not closed yet, for
// Shutdown.
func (l *listener) openConns() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.conns))
}
