package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
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

	// clock is the time in unix nanos; nil for the wall clock (tests set
	// their own).
	clock func() int64
	// drain is set when Shutdown begins: from then on the sweeper closes
	// the connections idle past their grace.
	drain atomic.Pointer[drainRule]

	mu      sync.Mutex
	conns   map[*conn]struct{} // open connections, for the sweeper
	closed  bool
	running bool         // a sweeper goroutine runs
	now     atomic.Int64 // unix nanos at the last sweep
}

func newListener(inner net.Listener, lingerMax int64, sweep time.Duration, clock func() int64) *listener {
	l := &listener{Listener: inner, lingerMax: lingerMax, sweep: sweep, clock: clock, conns: make(map[*conn]struct{})}
	l.now.Store(l.nanotime())
	return l
}

func (l *listener) nanotime() int64 {
	if l.clock != nil {
		return l.clock()
	}
	return time.Now().UnixNano()
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
	cc.idle.Store(true)
	cc.lastReq.Store(l.nanotime())
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
		now := l.nanotime()
		d := l.drain.Load()
		l.mu.Lock()
		if l.closed && len(l.conns) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		for c := range l.conns {
			c.enforce(now)
			if d != nil && c.idle.Load() && d.expired(c.lastReq.Load(), c.gap.Load(), now) {
				c.closeIdle()
			}
		}
		l.mu.Unlock()
		// Stored last: a test that moves its clock knows, once it reads its
		// time here, that a sweep has decided at that time.
		l.now.Store(now)
	}
}

// drainRule decides, during Shutdown, when a keep-alive connection that
// is idle may be closed.
//
// An idle HTTP/1.1 connection cannot be told to go away: Connection: close
// travels only on an answer. Closing it under a client that still holds it
// in its pool fails that client's next request on it (a reset, or the end
// of stream before any answer), and a client does not retry a POST.
// fasthttp's client is such a client, and with its default first-in
// first-out pool it rotates requests over every connection it holds: after
// a burst, a client holding hundreds of connections comes back to each one
// only every few seconds. So a connection is kept until its client sends on
// it (and is answered with Connection: close) or closes it, and closed by
// the server only once it has been idle, since the drain began or since its
// last request, whichever is later, for twice the longest interval its
// client left between two requests on it: at least min, at most max.
type drainRule struct {
	start    int64 // unix nanos
	min, max int64 // nanos
}

// expired reports whether a connection idle since its last request began
// at lastReq, whose client's longest interval between two requests is gap,
// may be closed at now.
func (d *drainRule) expired(lastReq, gap, now int64) bool {
	grace := min(max(2*gap, d.min), d.max)
	return now-max(lastReq, d.start) >= grace
}

// connState is fasthttp's Server.ConnState: it keeps what the drain rule
// needs of each connection, whether it waits for a request, when its last
// request began and the longest interval between two of them.
func connState(nc net.Conn, st fasthttp.ConnState) {
	var c *conn
	switch x := nc.(type) {
	case *conn:
		c = x
	case *tlsConn:
		c = &x.conn
	default:
		return
	}
	switch st {
	case fasthttp.StateActive:
		// The first byte of a request arrived: not idle any more.
		c.idle.Store(false)
		now := c.l.nanotime()
		if c.requests > 0 {
			if g := now - c.lastReq.Load(); g > c.gap.Load() {
				c.gap.Store(g)
			}
		}
		c.requests++
		c.lastReq.Store(now)
	case fasthttp.StateIdle:
		c.idle.Store(true)
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

	// For the drain rule, written by the connection's own goroutine (the
	// Accept and ConnState calls), read by the sweeper.
	idle     atomic.Bool  // waiting for a request: between two, or before the first
	lastReq  atomic.Int64 // when the last request began (accepted, before the first), unix nanos
	gap      atomic.Int64 // longest interval between two requests began, nanos
	requests int          // begun so far; the connection's goroutine's alone
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

// closeIdle closes an idle connection under its owner, which waits for a
// request: its read ends with net.ErrClosed, on which fasthttp closes the
// connection without an answer. Called by the sweeper, which holds l.mu
// (so not Close, which takes it).
func (c *conn) closeIdle() {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !closed {
		_ = c.Conn.Close()
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
