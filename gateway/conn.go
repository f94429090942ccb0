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

// listener wraps the listener Serve is given so that connections answered
// before their request body was read (413) close gracefully.
type listener struct {
	net.Listener
	lingerMax int64
	once      sync.Once
	closeErr  error
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(tlsConnection); ok {
		// Keep the TLS methods visible: fasthttp's IsTLS looks for them.
		return &tlsConn{conn: conn{Conn: c, lingerMax: l.lingerMax}, tls: tc}, nil
	}
	return &conn{Conn: c, lingerMax: l.lingerMax}, nil
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
	l.once.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}

// conn is a server connection that can close with a lingering close.
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
	lingerMax int64
	linger    atomic.Bool
}

func (c *conn) Close() error {
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
