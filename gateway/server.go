package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// HeaderRequestID is the response header that carries the id of every
// request, the id of its event and of its invocation log line.
const HeaderRequestID = "X-Sluice-Request-Id"

// TriggerHTTP is the trigger name of events from HTTP routes, in invocation
// logs and metrics.
const TriggerHTTP = "http"

// ErrServerClosed is returned by Serve after Shutdown was called.
var ErrServerClosed = errors.New("gateway: server closed")

// Handler handles a request matched by a route added with Server.Handle.
// The response already carries X-Sluice-Request-Id. p and ctx must not be
// used after the handler returns.
type Handler func(ctx *fasthttp.RequestCtx, p *Params)

// Error messages of the JSON error body.
const (
	msgNotFound         = "Not Found"
	msgMethodNotAllowed = "Method Not Allowed"
	msgTooLarge         = "Request Entity Too Large"
	msgHeadersTooLarge  = "Request Header Fields Too Large"
	msgTooMany          = "Too Many Requests"
	msgUnavailable      = "Service Unavailable"
	msgFunctionError    = "Function error"
	msgBadOutput        = "Function returned an invalid response"
	msgTimeout          = "Endpoint request timed out"
	msgInternal         = "Internal Server Error"
)

var (
	strRequestID   = []byte(HeaderRequestID)
	strAllow       = []byte(fasthttp.HeaderAllow)
	strRetryAfter  = []byte(fasthttp.HeaderRetryAfter)
	strTraceparent = []byte("Traceparent")
	strTracestate  = []byte("Tracestate")
	strLF          = []byte("\n")
)

// Server is the HTTP gateway: it routes requests to functions (sync and
// async) and to handlers added with Handle. Create it with New, start it
// with Serve and stop it with Shutdown. Its methods are safe for concurrent
// use.
type Server struct {
	cfg        Config
	srv        *fasthttp.Server
	router     router
	log        zerolog.Logger
	errLog     zerolog.Logger // sampled, for the hot path
	set        *metrics.Set
	ownSet     bool
	none       *routeMetrics
	retryAfter []byte
	tracer     *tracing.Tracer // nil: tracing off

	mu      sync.Mutex
	serving bool
	closed  bool
	ln      *listener
	unreg   sync.Once

	draining   atomic.Bool
	drainStart atomic.Int64 // when Shutdown began, Unix nanoseconds
	spread     atomic.Int64 // the closing of connections is spread over, nanoseconds
	inflight   atomic.Int64

	refusals []refusal // set before Serve, read-only after
	filtered map[string]*metrics.Counter

	// For tests, set before Serve: clock is the time in unix nanos (nil
	// for the wall clock) of the drain's decisions; sweep, when not 0,
	// the sweep interval.
	clock func() int64
	sweep time.Duration
}

// refusal answers, in its own shape, requests under prefix that the server
// refuses before routing (413, 400, 408, 431): a Lambda SDK reads only
// Lambda's error shape.
type refusal struct {
	prefix string
	write  func(ctx *fasthttp.RequestCtx, id []byte, code int, msg string)
}

// fnRoute is a route to a function.
type fnRoute struct {
	fn       *invoker.Function
	source   string
	topic    string
	pub      Publisher
	filter   func(*plugins.Event) bool
	filtered *metrics.Counter
}

// New returns a Server for routes under cfg. It validates cfg and every
// route, and returns all their errors, each naming its route; it starts
// nothing. Functions need not be started yet.
func New(cfg Config, routes []Route, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	log = log.With().Str("component", "gateway").Logger()
	s := &Server{
		cfg:    cfg,
		log:    log,
		errLog: log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second}),
		set:    deps.Metrics,
		tracer: deps.Tracer,
	}
	if s.set == nil {
		s.set = metrics.NewSet()
		s.ownSet = true
	}
	s.retryAfter = strconv.AppendInt(nil, int64((cfg.RetryAfter+time.Second-1)/time.Second), 10)
	s.none = newRouteMetrics(s.set, unmatchedRoute)

	var errs []error
	for i, r := range routes {
		if err := s.addRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("route %d (%s %s): %w", i, r.Method, r.Path, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.ownSet {
		metrics.RegisterSet(s.set)
	}

	// The options that bound what a client can make the server hold:
	// ReadBufferSize is each connection's read buffer and the most a
	// request line and headers may take (431 past it; MaxHeaders bounds
	// their count); MaxRequestBodySize is enforced for declared and chunked
	// bodies alike (413) because StreamRequestBody stays off: streaming would
	// hand a body over the limit to the handler instead, and every function
	// gets its event's whole body anyway. ReadTimeout bounds reading a
	// request from its first byte, so a client that sends its headers a
	// byte at a time (slowloris) is answered 408 and closed; Concurrency
	// caps connections. ReduceMemoryUsage stays off: it halves what an idle
	// keep-alive connection holds (about 11 KiB instead of 21 KiB, measured
	// with 5,000 of them) by returning its read buffer to a pool, at the
	// cost of taking and returning buffers on every request.
	s.srv = &fasthttp.Server{
		Handler:                      s.serve,
		ErrorHandler:                 s.onError,
		ExpectHandler:                s.expect,
		MaxRequestBodySize:           cfg.MaxBody,
		ReadBufferSize:               cfg.MaxHeaderBytes,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  cfg.MaxConns,
		DisablePreParseMultipartForm: true, // the function gets the body as sent
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		ConnState:                    connState,
		Logger:                       fasthttpLogger{log},
	}
	return s, nil
}

func (s *Server) addRoute(r Route) error {
	if r.Function == nil {
		return errors.New("no function")
	}
	rt := &fnRoute{fn: r.Function, source: "/sluice/http/" + r.Function.Name(), topic: r.AsyncTopic, pub: r.Publisher, filter: r.Filter}
	if r.Filter != nil {
		rt.filtered = s.filteredCounter(TriggerHTTP)
	}
	var h Handler
	switch r.Mode {
	case ModeSync, "":
		if r.AsyncTopic != "" {
			return errors.New("async_topic needs mode: async")
		}
		h = s.syncHandler(rt)
	case ModeAsync:
		if r.AsyncTopic != "" && r.Publisher == nil {
			return errors.New("async_topic needs a Kafka publisher")
		}
		h = s.asyncHandler(rt)
	default:
		return fmt.Errorf("mode %q: must be sync or async", r.Mode)
	}
	return s.handle(r.Method, r.Path, h)
}

// Handle adds a route to h: method is an HTTP method or "ANY", path a
// pattern as in Route.Path. It must be called before Serve; it returns an
// error wrapping ErrBadRoute or ErrDuplicateRoute, or one saying Serve has
// begun.
func (s *Server) Handle(method, path string, h Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return errors.New("gateway: Handle after Serve")
	}
	return s.handle(method, path, h)
}

// handleRefusals makes requests under prefix that the server refuses before
// routing answered by write instead of the gateway's JSON error. It must be
// called before Serve.
func (s *Server) handleRefusals(prefix string, write func(ctx *fasthttp.RequestCtx, id []byte, code int, msg string)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return errors.New("gateway: handler added after Serve")
	}
	s.refusals = append(s.refusals, refusal{prefix: prefix, write: write})
	return nil
}

// refuse answers a request refused before routing.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, id []byte, code int, msg string) {
	if len(s.refusals) > 0 {
		path := ctx.Path()
		for _, r := range s.refusals {
			if bytes.HasPrefix(path, s2b(r.prefix)) {
				r.write(ctx, id, code, msg)
				return
			}
		}
	}
	writeError(ctx, id, code, msg)
}

// filteredCounter returns sluice_filtered_total{trigger}. Called before
// Serve, under s.mu or from New.
func (s *Server) filteredCounter(trigger string) *metrics.Counter {
	if c := s.filtered[trigger]; c != nil {
		return c
	}
	if s.filtered == nil {
		s.filtered = make(map[string]*metrics.Counter)
	}
	c := s.set.GetOrCreateCounter(`sluice_filtered_total{trigger="` + trigger + `"}`)
	s.filtered[trigger] = c
	return c
}

func (s *Server) handle(method, path string, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrBadRoute)
	}
	ep := &endpoint{handle: h}
	if err := s.router.add(method, path, ep); err != nil {
		return err
	}
	ep.metrics = newRouteMetrics(s.set, ep.key)
	return nil
}

// Serve accepts connections on ln and serves them until Shutdown, over TLS
// when Config.TLS is set. It logs
// "listening" with the bound address (field addr) first. It returns nil
// after Shutdown, ErrServerClosed when Shutdown came first, or the
// listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("gateway: Serve called twice")
	}
	s.serving = true
	lingerMax := int64(max(2*s.cfg.MaxBody, lingerMaxMin))
	inner := ln
	if s.cfg.TLS != nil {
		inner = tls.NewListener(ln, s.cfg.TLS)
	}
	sweep := s.sweep
	if sweep == 0 {
		sweep = sweepInterval(s.cfg.ReadTimeout, s.cfg.WriteTimeout, s.cfg.IdleTimeout)
	}
	s.ln = newListener(inner, lingerMax, sweep, s.clock)
	l := s.ln
	s.mu.Unlock()
	s.log.Log().Str("listener", "http").Str("addr", ln.Addr().String()).Msg("listening")
	err := s.srv.Serve(l)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// ListenAndServe listens on Config.Listen and serves, as Serve.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections and waits for the requests in
// flight to be answered or for ctx to end. Keep-alive connections are
// served on until a request on them is answered with Connection: close,
// each from its own moment on within a millisecond per open connection
// (up to Config.DrainSpread). An idle one is closed only once it has been
// idle, since Shutdown began or since its last request, for twice the
// longest interval its client left between two requests on it, at least
// Config.IdleDrain and at most 10s (or half of what ctx leaves, if less):
// a client that rotates its requests over many connections comes back to
// each one before then. A request still in flight when ctx ends is not cut off: it
// keeps its connection and is answered when its invocation ends, at the
// latest twice its function's timeout later (queue wait and run), or at
// once with 503 when its function is closed. Call Wait after closing the
// functions to let those last answers out. Shutdown returns nil, or an
// error wrapping ctx's error that counts the requests left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		s.spread.Store(int64(min(time.Duration(ln.openConns())*drainPerConn, s.cfg.DrainSpread)))
	}
	start := s.nanotime()
	s.drainStart.Store(start)
	s.draining.Store(true)
	if ln != nil {
		// fasthttp's own shutdown closes idle keep-alive connections at
		// once, and a client whose pool still holds one fails its next
		// request on it (a POST is not retried). So first stop accepting
		// and let every connection carry its requests on until one is
		// answered with Connection: close (see closeNow); the sweeper
		// closes those left idle past their grace (see drainRule). Under
		// load that is all of them within the spread and one interval of
		// their clients. Closing our listener leaves a socket shared with
		// a successor process (tableflip) open there.
		most := maxIdleDrain
		if dl, ok := ctx.Deadline(); ok {
			most = min(most, time.Until(dl)/2)
		}
		ln.drain.Store(&drainRule{start: start, min: int64(s.cfg.IdleDrain), max: int64(max(s.cfg.IdleDrain, most))})
		_ = ln.Close()
		s.awaitConns(ctx, ln)
	}
	err := s.srv.ShutdownWithContext(ctx)
	if ln != nil {
		_ = ln.Close() // if Shutdown raced Serve before fasthttp took the listener
	}
	s.unreg.Do(func() {
		if s.ownSet {
			metrics.UnregisterSet(s.set, false)
		}
	})
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %d requests still in flight: %w", s.inflight.Load(), err)
	}
	return nil
}

// maxIdleDrain is the most Shutdown keeps an idle connection open for its
// client's next request, unless Config.IdleDrain is longer: fasthttp's
// client closes a connection it left idle for 10s itself.
const maxIdleDrain = 10 * time.Second

// drainPerConn is how much the closing of connections is spread per open
// connection at Shutdown.
const drainPerConn = time.Millisecond

func (s *Server) nanotime() int64 {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now().UnixNano()
}

// closeNow reports whether the connection id, during Shutdown, is to be
// closed after its answer: from a moment within the spread of its own on,
// the same for every request on it.
func (s *Server) closeNow(id uint64) bool { return s.closeAt(id, s.nanotime()) }

// closeAt is closeNow at now, Unix nanoseconds.
func (s *Server) closeAt(id uint64, now int64) bool {
	// A multiplicative hash spreads sequential connection ids evenly.
	frac := float64((id*0x9E3779B97F4A7C15)>>11) / (1 << 53)
	return now-s.drainStart.Load() >= int64(frac*float64(s.spread.Load()))
}

// awaitConns waits until ln's connections are all closed, or ctx ended.
func (s *Server) awaitConns(ctx context.Context, ln *listener) {
	if ln.openConns() == 0 {
		return
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for ln.openConns() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Wait waits until no request is in flight, or ctx ends. It is meant for
// after Shutdown.
func (s *Server) Wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway: %d requests still in flight: %w", s.inflight.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// InFlight returns the number of requests being handled.
func (s *Server) InFlight() int { return int(s.inflight.Load()) }

var paramsPool = sync.Pool{New: func() any { return new(Params) }}

// serve is the fasthttp handler: id, route, dispatch, count.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	s.inflight.Add(1)
	p := paramsPool.Get().(*Params)
	defer s.done(ctx, p)
	newRequestID(&p.id)
	ctx.Response.Header.SetCanonical(strRequestID, p.id[:])
	if s.tooManyHeaders(&ctx.Request.Header) {
		s.refuse(ctx, p.id[:], fasthttp.StatusRequestHeaderFieldsTooLarge, msgHeadersTooLarge)
		s.none.observe(fasthttp.StatusRequestHeaderFieldsTooLarge, ctx.Time())
		return
	}
	ep, miss := s.router.lookup(ctx.Method(), ctx.Path(), p)
	switch {
	case ep != nil:
		if s.tracer != nil {
			s.handleTraced(ctx, p, ep)
		} else {
			ep.handle(ctx, p)
		}
		ep.metrics.observe(ctx.Response.StatusCode(), ctx.Time())
	case miss != nil:
		ctx.Response.Header.SetCanonical(strAllow, s2b(miss.allow))
		writeError(ctx, p.id[:], fasthttp.StatusMethodNotAllowed, msgMethodNotAllowed)
		s.none.observe(fasthttp.StatusMethodNotAllowed, ctx.Time())
	default:
		writeError(ctx, p.id[:], fasthttp.StatusNotFound, msgNotFound)
		s.none.observe(fasthttp.StatusNotFound, ctx.Time())
	}
}

// minHeaderLine is the shortest header field line, "a:\r\n".
const minHeaderLine = 4

// tooManyHeaders reports whether h has more than Config.MaxHeaders fields.
// fasthttp bounds their total size (the read buffer), not their count.
// Counting line ends of the raw header is cheap, and skipped for headers
// too short to hold that many lines: most requests.
func (s *Server) tooManyHeaders(h *fasthttp.RequestHeader) bool {
	raw := h.RawHeaders()
	if len(raw) <= minHeaderLine*s.cfg.MaxHeaders {
		return false
	}
	// raw ends with the empty line that ends the header.
	return bytes.Count(raw, strLF)-1 > s.cfg.MaxHeaders
}

func (s *Server) done(ctx *fasthttp.RequestCtx, p *Params) {
	if r := recover(); r != nil {
		route := ""
		if p.ep != nil {
			route = p.ep.key
		}
		s.log.Error().Str("request_id", string(p.id[:])).Str("route", route).Interface("panic", r).Msg("handler panicked")
		ctx.Response.Reset()
		ctx.Response.Header.SetCanonical(strRequestID, p.id[:])
		writeError(ctx, p.id[:], fasthttp.StatusInternalServerError, msgInternal)
	}
	if s.draining.Load() && s.closeNow(ctx.ConnID()) {
		// Checked once the answer is ready, not when the request came: a
		// request in flight when Shutdown began closes its connection too.
		ctx.SetConnectionClose()
	}
	p.reset(nil)
	paramsPool.Put(p)
	s.inflight.Add(-1)
}

// s2b views s as bytes; the bytes must not be written.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// call is one request's event and invoker item, allocated together.
type call struct {
	item invoker.Item
	ev   plugins.Event
}

// newCall builds the request's event. Everything it keeps is copied out of
// ctx, which fasthttp reuses once the handler returns.
func (s *Server) newCall(ctx *fasthttp.RequestCtx, p *Params, rt *fnRoute) *call {
	ri := requestInfo{headers: p.hs[:0], cookies: p.cs[:0], query: p.qs[:0]}
	ri.gather(ctx, p)
	tp := ctx.Request.Header.PeekBytes(strTraceparent)
	ts := ctx.Request.Header.PeekBytes(strTracestate)

	// One allocation holds the event's strings and its data: the strings
	// first, viewed in place, then the payload. Nothing writes to it after.
	buf := make([]byte, 0, idLen+len(ri.rawPath)+len(tp)+len(ts)+estimateDataSize(&ri))
	buf = append(buf, p.id[:]...)
	buf = append(buf, ri.rawPath...)
	buf = append(buf, tp...)
	buf = append(buf, ts...)
	n := len(buf)
	strs := unsafe.String(unsafe.SliceData(buf), n)
	buf = appendRequestData(buf, &ri)

	c := &call{}
	c.ev = plugins.Event{
		ID:              strs[:idLen],
		Source:          rt.source,
		Type:            plugins.TypeHTTPRequest,
		Time:            ri.now,
		Subject:         strs[idLen : idLen+len(ri.rawPath)],
		DataContentType: "application/json",
		DataValidJSON:   true, // appendRequestData, the append-style API Gateway payload encoder
		Data:            buf[n:len(buf):len(buf)],
		TraceParent:     strs[idLen+len(ri.rawPath) : idLen+len(ri.rawPath)+len(tp)],
		TraceState:      strs[idLen+len(ri.rawPath)+len(tp):],
	}
	c.item.Event = &c.ev
	c.item.Trigger = TriggerHTTP
	return c
}

func (s *Server) syncHandler(rt *fnRoute) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		c := s.newCall(ctx, p, rt)
		if rt.filter != nil && !rt.filter(&c.ev) {
			// Nothing to run, so nothing to answer with.
			rt.filtered.Inc()
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		o := rt.fn.Call(&c.item)
		if o.Err != nil {
			s.writeInvokeError(ctx, p, o.Err)
			return
		}
		if err := writeOutput(&ctx.Response, o.Output); err != nil {
			s.errLog.Warn().Str("function", rt.fn.Name()).Str("request_id", c.ev.ID).Err(err).Msg("function returned an invalid HTTP response")
			writeError(ctx, p.id[:], fasthttp.StatusBadGateway, msgBadOutput)
		}
	}
}

// asyncDone is the Done of async items: the invoker logs and counts their
// outcome and dead-letters them; nobody waits.
func asyncDone(*invoker.Item, invoker.Outcome) {}

// asyncAttempts are the tries of an async event: Lambda's two retries.
const asyncAttempts = 3

func (s *Server) asyncHandler(rt *fnRoute) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		c := s.newCall(ctx, p, rt)
		if rt.filter != nil && !rt.filter(&c.ev) {
			rt.filtered.Inc()
		} else if rt.topic != "" {
			pctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
			err := rt.pub.Publish(pctx, rt.topic, &c.ev)
			cancel()
			if err != nil {
				s.errLog.Error().Str("function", rt.fn.Name()).Str("request_id", c.ev.ID).Str("topic", rt.topic).Err(err).Msg("cannot publish async event")
				ctx.Response.Header.SetCanonical(strRetryAfter, s.retryAfter)
				writeError(ctx, p.id[:], fasthttp.StatusServiceUnavailable, msgUnavailable)
				return
			}
		} else {
			c.item.DeadLetter = true
			c.item.Attempts = asyncAttempts
			c.item.Done = asyncDone
			if err := rt.fn.Submit(&c.item); err != nil {
				s.writeInvokeError(ctx, p, err)
				return
			}
		}
		var buf [80]byte
		b := append(buf[:0], `{"requestId":"`...)
		b = append(b, p.id[:]...)
		b = append(b, `"}`...)
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
		ctx.SetBody(b)
	}
}

// writeInvokeError maps an invocation error to its status (400, 404, 413, 429, 502, 504...).
func (s *Server) writeInvokeError(ctx *fasthttp.RequestCtx, p *Params, err error) {
	switch {
	case errors.Is(err, invoker.ErrQueueFull):
		ctx.Response.Header.SetCanonical(strRetryAfter, s.retryAfter)
		writeError(ctx, p.id[:], fasthttp.StatusTooManyRequests, msgTooMany)
	case errors.Is(err, invoker.ErrClosed), errors.Is(err, context.Canceled):
		// The function is shutting down; another instance can take it.
		ctx.Response.Header.SetCanonical(strRetryAfter, s.retryAfter)
		writeError(ctx, p.id[:], fasthttp.StatusServiceUnavailable, msgUnavailable)
	case errors.Is(err, invoker.ErrTimeout):
		writeError(ctx, p.id[:], fasthttp.StatusGatewayTimeout, msgTimeout)
	default:
		// The invoker logged the function's error with the request id;
		// its text stays out of the response, as on API Gateway.
		writeError(ctx, p.id[:], fasthttp.StatusBadGateway, msgFunctionError)
	}
}

// writeError answers with code and the JSON error body
// {"message":msg,"requestId":id}.
func writeError(ctx *fasthttp.RequestCtx, id []byte, code int, msg string) {
	var buf [256]byte
	b := append(buf[:0], `{"message":`...)
	b = plugins.AppendJSONString(b, msg)
	b = append(b, `,"requestId":"`...)
	b = append(b, id...)
	b = append(b, `"}`...)
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
	ctx.SetBody(b)
}

// WriteError answers ctx with code and the gateway's JSON error body,
// {"message":msg,"requestId":ID}, ID being the request's
// X-Sluice-Request-Id. Handlers added with Handle may use it.
func WriteError(ctx *fasthttp.RequestCtx, code int, msg string) {
	writeError(ctx, ctx.Response.Header.PeekBytes(strRequestID), code, msg)
}

// onError answers requests fasthttp could not read: 413 for a body over
// max_body, 431 for headers over max_header_bytes, 408 for a read timeout,
// 400 otherwise.
func (s *Server) onError(ctx *fasthttp.RequestCtx, err error) {
	var id [idLen]byte
	newRequestID(&id)
	ctx.Response.Header.SetCanonical(strRequestID, id[:])
	code, msg := fasthttp.StatusBadRequest, "Bad Request"
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, msg = fasthttp.StatusRequestEntityTooLarge, msgTooLarge
		lingerOnClose(ctx.Conn())
	case errors.As(err, &small):
		code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, msgHeadersTooLarge
	case errors.As(err, &nerr) && nerr.Timeout():
		code, msg = fasthttp.StatusRequestTimeout, "Request Timeout"
	}
	s.refuse(ctx, id[:], code, msg)
	s.none.observe(code, time.Time{})
}

// expect answers "Expect: 100-continue" requests: a declared body over
// max_body gets its 413 before the client sends it.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if ctx.Request.Header.ContentLength() <= s.cfg.MaxBody {
		return fasthttp.StatusContinue
	}
	// fasthttp's doc asks ExpectHandler not to touch the response, yet
	// writes the response as it stands after a rejection (our tests hold
	// it to that): setting it here gives this 413 the same request id and
	// JSON body as every other answer.
	var id [idLen]byte
	newRequestID(&id)
	ctx.Response.Header.SetCanonical(strRequestID, id[:])
	s.refuse(ctx, id[:], fasthttp.StatusRequestEntityTooLarge, msgTooLarge)
	lingerOnClose(ctx.Conn())
	s.none.observe(fasthttp.StatusRequestEntityTooLarge, time.Time{})
	return fasthttp.StatusRequestEntityTooLarge
}

// fasthttpLogger sends fasthttp's own messages (mostly connections that
// broke) to the debug level.
type fasthttpLogger struct{ l zerolog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug().Msgf(format, args...)
}
