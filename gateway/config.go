package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// Config is the HTTP listener's configuration. Its zero value is usable:
// every zero field takes the default its comment names.
type Config struct {
	// Listen is the address ListenAndServe listens on (server.listen);
	// Serve uses the listener it is given instead. Defaults to "127.0.0.1:8080": loopback only.
	Listen string
	// MaxBody is the largest request body accepted, in bytes
	// (server.max_body); a larger one is answered 413. Defaults to 6 MiB,
	// Lambda's limit for synchronous payloads.
	MaxBody int
	// MaxHeaderBytes bounds the request line and headers; larger ones are
	// answered 431. It is also the size of each connection's read buffer.
	// Defaults to 16 KiB.
	MaxHeaderBytes int
	// MaxHeaders is the most header fields a request may carry; more are
	// answered 431, whatever their size. Defaults to 100.
	MaxHeaders int
	// ReadTimeout bounds reading one request, headers and body
	// (server.read_timeout). Defaults to 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. Defaults to 30s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Defaults to 60s.
	IdleTimeout time.Duration
	// IdleDrain is the least time Shutdown keeps a keep-alive connection
	// that is idle open for its client's next request (answered with
	// Connection: close), counted from the start of Shutdown or from the
	// connection's last request, whichever is later. Closing an idle
	// connection under a client that still holds it fails that client's
	// next request on it, and a POST is not retried; so a connection whose
	// client left longer intervals between its requests is kept twice the
	// longest of them, up to 10s (or IdleDrain, if longer; or half of what
	// Shutdown's context leaves, if less). Defaults to 1s.
	IdleDrain time.Duration
	// DrainSpread caps how long Shutdown spreads the closing of keep-alive
	// connections over: each connection open when it begins is answered
	// with Connection: close from a moment of its own within the spread on
	// (until then it is served as before), so that busy clients reconnect,
	// to a successor process on a reload, a few at a time: all at once, a
	// client holding a thousand connections reconnects them within
	// milliseconds, and a busy machine stalls until it has. The spread is
	// a millisecond per open connection (about a thousand reconnections a
	// second, a few percent of a core on loopback), up to DrainSpread.
	// Defaults to 1s.
	DrainSpread time.Duration
	// MaxConns is the most connections served at once; more are answered
	// 503 and closed. Defaults to 262144, fasthttp's default.
	MaxConns int
	// RetryAfter is the Retry-After of 429 and 503 answers, rounded up to
	// whole seconds. Defaults to 1s.
	RetryAfter time.Duration
	// TLS, when set, makes Serve speak HTTPS on its listener
	// (server.tls). Defaults to nil: plain HTTP.
	TLS *tls.Config
	// PublishTimeout bounds one Publisher.Publish of an async route with an
	// AsyncTopic. Defaults to 5s.
	PublishTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultMaxBody        = 6 << 20
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxHeaders     = 100
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultIdleDrain      = time.Second
	DefaultDrainSpread    = time.Second
	DefaultMaxConns       = 256 * 1024
	DefaultRetryAfter     = time.Second
	DefaultPublishTimeout = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	setInt(&c.MaxBody, DefaultMaxBody)
	setInt(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setInt(&c.MaxHeaders, DefaultMaxHeaders)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.IdleDrain, DefaultIdleDrain)
	setDur(&c.DrainSpread, DefaultDrainSpread)
	setInt(&c.MaxConns, DefaultMaxConns)
	setDur(&c.RetryAfter, DefaultRetryAfter)
	setDur(&c.PublishTimeout, DefaultPublishTimeout)
	return c
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Validate reports every field out of range, naming its config key.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, key string, v any) {
		if bad {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %v", key, v))
		}
	}
	check(c.MaxBody < 0, "server.max_body", c.MaxBody)
	check(c.MaxHeaderBytes < 0, "server.max_header_bytes", c.MaxHeaderBytes)
	check(c.MaxHeaders < 0, "server.max_headers", c.MaxHeaders)
	check(c.ReadTimeout < 0, "server.read_timeout", c.ReadTimeout)
	check(c.WriteTimeout < 0, "server.write_timeout", c.WriteTimeout)
	check(c.IdleTimeout < 0, "server.idle_timeout", c.IdleTimeout)
	check(c.IdleDrain < 0, "server.idle_drain", c.IdleDrain)
	check(c.DrainSpread < 0, "server.drain_spread", c.DrainSpread)
	check(c.MaxConns < 0, "server.max_conns", c.MaxConns)
	check(c.RetryAfter < 0, "server.retry_after", c.RetryAfter)
	check(c.PublishTimeout < 0, "server.publish_timeout", c.PublishTimeout)
	if c.MaxHeaderBytes > 0 && c.MaxHeaderBytes < 1024 {
		errs = append(errs, fmt.Errorf("server.max_header_bytes: must be at least 1KiB, got %d", c.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}

// Mode is how an HTTP route invokes its function.
type Mode string

// Modes of a route. The zero Mode is ModeSync.
const (
	// ModeSync waits for the function; its result is the response.
	ModeSync Mode = "sync"
	// ModeAsync answers 202 with the request id once the event is accepted
	// (queued in the function's bounded queue, or published to AsyncTopic).
	ModeAsync Mode = "async"
)

// Publisher publishes the events of async routes with an AsyncTopic to a
// durable log (Kafka), from which a trigger delivers them to the function.
// Implementations must be safe for concurrent use.
type Publisher interface {
	// Publish returns once the event is durably stored in topic, or with an
	// error; the request is answered 202 only after it returned nil, 503
	// otherwise. ctx carries the Config.PublishTimeout deadline.
	Publish(ctx context.Context, topic string, ev *plugins.Event) error
}

// Route binds an HTTP method and path to a function.
type Route struct {
	// Method is an HTTP method, or "ANY" (or "") for every method.
	Method string
	// Path is the path pattern: segments separated by /, a segment {name}
	// matches one non-empty segment and names a path parameter, a last
	// segment {name+} matches the rest of the path (one or more segments).
	// A static segment is preferred over {name}, {name} over {name+}. One
	// trailing slash is ignored, in the pattern and in requests.
	Path string
	// Function is the function to invoke. Required.
	Function *invoker.Function
	// Mode is ModeSync (the default) or ModeAsync.
	Mode Mode
	// AsyncTopic, for ModeAsync, sends events to this topic through
	// Publisher instead of the function's in-memory queue.
	AsyncTopic string
	// Publisher is required when AsyncTopic is set.
	Publisher Publisher
	// Filter, when set, is called with each request's event before it is
	// invoked or published (the trigger's filter:). An event for which it
	// returns false is skipped and counted in
	// sluice_filtered_total{trigger="http"}: a sync route answers 204 No
	// Content, an async route its usual 202. It is called concurrently and
	// must not retain the event. Defaults to nil: every event goes on.
	Filter func(*plugins.Event) bool
}

// Deps are what a Server or Admin needs that is not configuration.
type Deps struct {
	// Logger receives the "listening" line and errors. Defaults to a
	// disabled logger.
	Logger *zerolog.Logger
	// Metrics receives the gateway's series; the caller registers it.
	// Defaults to a new set that New registers with metrics.RegisterSet and
	// Shutdown unregisters. The Admin ignores it: /metrics writes every
	// registered set.
	Metrics *metrics.Set
	// Tracer traces each routed request (see tracing). The Admin ignores
	// it. Defaults to nil: tracing off.
	Tracer *tracing.Tracer
}
