package lambda

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// The Runtime API is served by a small HTTP/1.1 server of its own rather
// than net/http: every invocation is two requests on one keep-alive
// connection, and for a small handler the general server's per-request
// work and its one write per response cost as much as the handler. This
// one parses only what the Runtime API needs (request line, Host,
// Content-Length, Transfer-Encoding: chunked with trailers, Connection,
// Expect: 100-continue and the error-type header), answers each request in
// order, and writes what it has only when it would otherwise wait: the
// 202 of a response posted together with the poll for the next
// invocation (as Sluice's own runtime clients pipeline them) goes out in
// the same write as that next invocation. The invocation itself is written
// by the goroutine that dispatches it, straight onto the connection whose
// poll is waiting.

// Limits of a request's head.
const (
	maxHeaderLine  = 16 << 10 // one line: request line, field or chunk size
	maxHeaderBytes = 64 << 10 // the whole head, or the trailers
	maxHeaderCount = 128
	// discardLimit is how much of a refused body is read and dropped to
	// keep the connection; past it the connection is closed.
	discardLimit = 64 << 20
)

// errBadRequest is a request that cannot be read as HTTP/1.1; the
// connection is answered 400 and closed.
type errBadRequest struct {
	status int
	msg    string
}

func (e *errBadRequest) Error() string { return e.msg }

func badRequest(msg string) error { return &errBadRequest{status: http.StatusBadRequest, msg: msg} }

// apiServer serves one runtime's Runtime API on its own listener.
type apiServer struct {
	pr *proc
	ln net.Listener

	mu     sync.Mutex
	conns  map[*apiConn]struct{}
	closed bool
}

func newAPIServer(pr *proc, ln net.Listener) *apiServer {
	return &apiServer{pr: pr, ln: ln, conns: make(map[*apiConn]struct{})}
}

// serve accepts connections until the listener is closed.
func (s *apiServer) serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newAPIConn(s.pr, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go func() {
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close closes the listener and every connection.
func (s *apiServer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*apiConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.nc.Close()
	}
	return err
}

// apiConn is one connection of a runtime to its Runtime API.
type apiConn struct {
	pr *proc
	nc net.Conn
	br *bufio.Reader

	wmu  sync.Mutex
	bw   *bufio.Writer
	werr error // the first write error; nothing more is written

	// parked is set while this connection's poll of /invocation/next waits
	// for an invocation (it is pr.poll); no later request on it is answered
	// before that poll is. Cleared, then unpark signalled, once the
	// invocation is written.
	parked atomic.Bool
	unpark chan struct{}
	// closeAfterPoll: the waiting poll asked for Connection: close; its
	// answer closes the connection (guarded by pr.mu).
	closeAfterPoll bool

	req apiRequest
}

func newAPIConn(pr *proc, nc net.Conn) *apiConn {
	c := &apiConn{pr: pr, nc: nc, unpark: make(chan struct{}, 1)}
	c.br = bufio.NewReaderSize(flushingReader{c}, maxHeaderLine)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c
}

// flushingReader reads the connection for the request parser, writing out
// the answers it holds first: a read that may block must not leave the
// runtime waiting for them. The answers of a poll that waits are written
// with its invocation instead.
type flushingReader struct{ c *apiConn }

func (f flushingReader) Read(p []byte) (int, error) {
	if !f.c.parked.Load() {
		f.c.flush()
	}
	return f.c.nc.Read(p)
}

func (c *apiConn) flush() {
	c.wmu.Lock()
	if c.werr == nil && c.bw.Buffered() > 0 {
		c.werr = c.bw.Flush()
	}
	c.wmu.Unlock()
}

// serve answers the connection's requests in order until it ends or a
// request cannot be read.
func (c *apiConn) serve() {
	defer c.close()
	for {
		err := c.readRequest(&c.req)
		if err != nil {
			var bad *errBadRequest
			if errors.As(err, &bad) && c.waitUnparked() {
				c.wmu.Lock()
				c.writeError(bad.status, "InvalidRequest", bad.msg, true, "")
				if c.werr == nil {
					c.werr = c.bw.Flush()
				}
				c.wmu.Unlock()
			}
			return
		}
		// Responses go in request order: a poll of this connection still
		// waiting is answered first.
		if !c.waitUnparked() {
			return
		}
		if !c.pr.handle(c, &c.req) {
			c.flush()
			return
		}
		if c.req.close {
			if c.parked.Load() {
				// The poll's answer closes the connection (deliver);
				// until then, reading notices a runtime that hangs up.
				_, _ = io.Copy(io.Discard, c.br)
				return
			}
			c.flush()
			return
		}
	}
}

// waitUnparked waits until no poll of c waits. It reports false when the
// runtime exited first.
func (c *apiConn) waitUnparked() bool {
	for c.parked.Load() {
		select {
		case <-c.unpark:
		case <-c.pr.exited:
			return false
		}
	}
	return true
}

// close ends the connection; a poll of it still waiting is withdrawn.
func (c *apiConn) close() {
	pr := c.pr
	pr.mu.Lock()
	if pr.poll == c {
		pr.poll = nil
		c.parked.Store(false)
	}
	pr.mu.Unlock()
	c.nc.Close()
}

// apiRequest is the head of one request, and its body once read.
type apiRequest struct {
	method  string
	path    string
	http10  bool
	close   bool  // Connection: close, or HTTP/1.0 without keep-alive
	length  int64 // Content-Length, -1 when chunked
	expect  bool  // Expect: 100-continue
	errType string
	// Trailers of a chunked body: aws-lambda-go reports a streamed
	// response's failure in them.
	trailerErrType, trailerErrBody string
	bodyRead                       bool
}

// readRequest reads the head of the next request.
func (c *apiConn) readRequest(r *apiRequest) error {
	*r = apiRequest{}
	line, err := c.readLine()
	for err == nil && len(line) == 0 {
		// Empty lines before a request are ignored (RFC 9112, 2.2).
		line, err = c.readLine()
	}
	if err != nil {
		return err
	}
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return badRequest("malformed request line")
	}
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		r.http10, r.close = true, true
	default:
		if bytes.HasPrefix(line[sp2+1:], []byte("HTTP/")) {
			return &errBadRequest{status: http.StatusHTTPVersionNotSupported, msg: "only HTTP/1.1 is served"}
		}
		return badRequest("malformed request line")
	}
	r.method = methodString(line[:sp1])
	target := line[sp1+1 : sp2]
	if bytes.HasPrefix(target, []byte("http://")) {
		// Absolute form: the path after the authority.
		rest := target[len("http://"):]
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			target = []byte("/")
		} else {
			target = rest[i:]
		}
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if len(target) == 0 || target[0] != '/' || bytes.ContainsAny(target, " \t") {
		return badRequest("malformed request target")
	}
	r.path = string(target)

	r.length = 0
	var haveLength, chunked, host bool
	total, count := len(line), 0
	for {
		line, err = c.readLine()
		if err != nil {
			return eofIsBad(err)
		}
		if len(line) == 0 {
			break
		}
		total += len(line)
		count++
		if total > maxHeaderBytes || count > maxHeaderCount {
			return &errBadRequest{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request header too large"}
		}
		name, value, err := splitField(line)
		if err != nil {
			return err
		}
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (haveLength && n != r.length) {
				return badRequest("bad Content-Length")
			}
			r.length, haveLength = n, true
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(lastToken(value), "chunked") {
				return &errBadRequest{status: http.StatusNotImplemented, msg: "unsupported Transfer-Encoding " + strconv.Quote(string(value))}
			}
			chunked = true
		case asciiEqualFold(name, "host"):
			host = true
		case asciiEqualFold(name, "connection"):
			if hasToken(value, "close") {
				r.close = true
			} else if r.http10 && hasToken(value, "keep-alive") {
				r.close = false
			}
		case asciiEqualFold(name, "expect"):
			if !asciiEqualFold(value, "100-continue") {
				return &errBadRequest{status: http.StatusExpectationFailed, msg: "unsupported Expect"}
			}
			r.expect = !r.http10
		case asciiEqualFold(name, hdrErrorType):
			r.errType = string(value)
		}
	}
	if chunked {
		if haveLength {
			return badRequest("both Content-Length and Transfer-Encoding")
		}
		r.length = -1
	}
	if !host && !r.http10 {
		return badRequest("missing Host header")
	}
	return nil
}

// eofIsBad turns the end of the connection inside a request into a bad
// request (answered to a half-closed connection), other errors unchanged.
func eofIsBad(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("connection ended inside a request")
	}
	return err
}

// readLine reads a line without its CRLF (or bare LF). The slice is valid
// until the next read.
func (c *apiConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &errBadRequest{status: http.StatusRequestHeaderFieldsTooLarge, msg: "line too long"}
		}
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func methodString(b []byte) string {
	switch string(b) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	}
	return string(b)
}

// splitField splits "Name: value", trimming the value.
func splitField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, badRequest("obsolete line folding")
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, badRequest("malformed header field")
	}
	name = line[:i]
	for _, b := range name {
		if b <= ' ' || b >= 0x7f {
			return nil, nil, badRequest("malformed header field name")
		}
	}
	value = bytes.Trim(line[i+1:], " \t")
	for _, b := range value {
		if b < ' ' && b != '\t' || b == 0x7f {
			return nil, nil, badRequest("control character in a header value")
		}
	}
	return name, value, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated value holds tok.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if asciiEqualFold(bytes.Trim(t, " \t"), tok) {
			return true
		}
	}
	return false
}

func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.Trim(v, " \t")
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// readBody reads the request's body, at most limit bytes, into a slice of
// its own. tooLarge reports a longer body; it is read and dropped (up to
// discardLimit) so the connection stays usable, else the connection is
// closed after the answer. A body that cannot be read ends the
// connection (err).
func (c *apiConn) readBody(r *apiRequest, limit int) (body []byte, tooLarge bool, err error) {
	r.bodyRead = true
	if r.length > int64(limit) {
		if r.expect || r.length > discardLimit {
			// The runtime has not sent it (it waits for 100 Continue), or
			// it is not worth reading: answer and close.
			r.close = true
			return nil, true, nil
		}
		_, err := io.CopyN(io.Discard, c.br, r.length)
		return nil, true, eofIsBad(err)
	}
	if r.expect && r.length != 0 {
		c.wmu.Lock()
		if c.werr == nil {
			_, _ = c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			c.werr = c.bw.Flush()
		}
		c.wmu.Unlock()
	}
	if r.length >= 0 {
		body = make([]byte, r.length)
		if _, err := io.ReadFull(c.br, body); err != nil {
			return nil, false, eofIsBad(err)
		}
		return body, false, nil
	}
	return c.readChunked(r, limit)
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readChunked reads a chunked body and its trailers.
func (c *apiConn) readChunked(r *apiRequest, limit int) (body []byte, tooLarge bool, err error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	var read int64
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, false, eofIsBad(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseHex(bytes.Trim(line, " \t"))
		if !ok {
			return nil, false, badRequest("malformed chunk size")
		}
		if size == 0 {
			break
		}
		read += size
		if read > discardLimit {
			r.close = true
			return nil, true, nil
		}
		if tooLarge || read > int64(limit) {
			tooLarge = true
			if _, err := io.CopyN(io.Discard, c.br, size); err != nil {
				return nil, false, eofIsBad(err)
			}
		} else if _, err := io.CopyN(buf, c.br, size); err != nil {
			return nil, false, eofIsBad(err)
		}
		if line, err := c.readLine(); err != nil {
			return nil, false, eofIsBad(err)
		} else if len(line) != 0 {
			return nil, false, badRequest("malformed chunk")
		}
	}
	total := 0
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, false, eofIsBad(err)
		}
		if len(line) == 0 {
			break
		}
		if total += len(line); total > maxHeaderBytes {
			return nil, false, &errBadRequest{status: http.StatusRequestHeaderFieldsTooLarge, msg: "trailers too large"}
		}
		name, value, err := splitField(line)
		if err != nil {
			return nil, false, err
		}
		switch {
		case asciiEqualFold(name, hdrErrorType):
			r.trailerErrType = string(value)
		case asciiEqualFold(name, hdrErrorBody):
			r.trailerErrBody = string(value)
		}
	}
	if tooLarge {
		return nil, true, nil
	}
	return bytes.Clone(buf.Bytes()), false, nil
}

func parseHex(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		switch {
		case '0' <= b && b <= '9':
			n = n<<4 | int64(b-'0')
		case 'a' <= b && b <= 'f':
			n = n<<4 | int64(b-'a'+10)
		case 'A' <= b && b <= 'F':
			n = n<<4 | int64(b-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// skipBody drops the body of a request whose handler did not read it.
func (c *apiConn) skipBody(r *apiRequest) error {
	if r.bodyRead || r.length == 0 {
		return nil
	}
	_, _, err := c.readBody(r, 0)
	return err
}

// writeHead writes a response's status line and the headers every
// response has. The caller holds wmu and adds its own headers, then ends
// the head with endHead.
func (c *apiConn) writeHead(status int) {
	w := c.bw
	_, _ = w.WriteString("HTTP/1.1 ")
	var b [3]byte
	_, _ = w.Write(strconv.AppendInt(b[:0], int64(status), 10))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(http.StatusText(status))
	_, _ = w.WriteString("\r\nContent-Type: application/json\r\nDate: ")
	_, _ = w.Write(httpDate())
	_, _ = w.WriteString("\r\n")
}

// header writes a header; control characters in value (an event id is
// the sender's) become spaces, so a value cannot end the head.
func (c *apiConn) header(name, value string) {
	_, _ = c.bw.WriteString(name)
	_, _ = c.bw.WriteString(": ")
	for i := range len(value) {
		if b := value[i]; b < ' ' && b != '\t' || b == 0x7f {
			_, _ = c.bw.WriteString(strings.Map(func(r rune) rune {
				if r < ' ' && r != '\t' || r == 0x7f {
					return ' '
				}
				return r
			}, value))
			_, _ = c.bw.WriteString("\r\n")
			return
		}
	}
	_, _ = c.bw.WriteString(value)
	_, _ = c.bw.WriteString("\r\n")
}

// endHead ends the head with Content-Length (and Connection: close) and
// writes the body.
func (c *apiConn) endBody(body []byte, closing bool) {
	w := c.bw
	if closing {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("Content-Length: ")
	var b [20]byte
	_, _ = w.Write(strconv.AppendInt(b[:0], int64(len(body)), 10))
	_, _ = w.WriteString("\r\n\r\n")
	_, _ = w.Write(body)
}

// writeError writes an error in the Runtime API's shape. The caller holds
// wmu. allow names the method of a 405.
func (c *apiConn) writeError(status int, typ, msg string, closing bool, allow string) {
	if c.werr != nil {
		return
	}
	c.writeHead(status)
	if allow != "" {
		c.header("Allow", allow)
	}
	b := append([]byte(`{"errorMessage":`), plugins.AppendJSONString(nil, msg)...)
	b = append(b, `,"errorType":`...)
	b = plugins.AppendJSONString(b, typ)
	b = append(b, '}')
	c.endBody(b, closing)
}

// dateCache holds the Date header of the current second.
var dateCache atomic.Pointer[dateStamp]

type dateStamp struct {
	sec int64
	b   []byte
}

func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateStamp{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

// SocketEnv names the environment variable that gives a runtime the path
// of a Unix socket serving the same Runtime API as AWS_LAMBDA_RUNTIME_API.
// Sluice's own runtime clients use it when set: on one machine a Unix
// socket costs less per message than loopback TCP. Other clients ignore
// it.
const SocketEnv = "SLUICE_RUNTIME_API_SOCKET"

// apiListener accepts a runtime's connections on loopback TCP and, when
// one could be made, on a Unix socket.
type apiListener struct {
	tcp, unix net.Listener
	path      string // the Unix socket's, or ""
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
}

// listenAPI listens for a new runtime's Runtime API.
func (p *Pool) listenAPI() (*apiListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &apiListener{tcp: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	if p.cfg.UnixSocket {
		if dir := p.socketDir(); dir != "" {
			path := filepath.Join(dir, strconv.FormatInt(p.sockSeq.Add(1), 10)+".sock")
			if uln, err := net.Listen("unix", path); err == nil {
				l.unix, l.path = uln, path
				go l.accept(uln)
			}
		}
	}
	go l.accept(ln)
	return l, nil
}

// socketDir returns the pool's private folder for Unix sockets, made at
// its first use; "" when there is none (its path would be too long for a
// socket address).
func (p *Pool) socketDir() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sockDir == "" && !p.closed {
		dir, err := os.MkdirTemp("", "sluice-api-")
		if err != nil || len(dir) > 80 {
			if err == nil {
				os.Remove(dir)
			}
			return ""
		}
		p.sockDir = dir
	}
	return p.sockDir
}

func (l *apiListener) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

func (l *apiListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes both listeners (removing the socket file).
func (l *apiListener) Close() error {
	l.once.Do(func() { close(l.done) })
	err := l.tcp.Close()
	if l.unix != nil {
		l.unix.Close()
	}
	return err
}

// Addr is the TCP address, AWS_LAMBDA_RUNTIME_API's.
func (l *apiListener) Addr() net.Addr { return l.tcp.Addr() }
