package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/sluicehq/sluice/invoker"
)

// ErrAdminNeedsToken is returned by Admin.Serve for a listener that is not
// on a loopback address when AdminConfig.Token is empty: the admin listener
// exposes profiles and must not be open to the network.
var ErrAdminNeedsToken = errors.New("gateway: admin listener not on loopback needs a token")

// AdminConfig is the admin listener's configuration. Its zero value serves
// without authentication, on loopback only.
type AdminConfig struct {
	// Token, when not empty, is required on every path as
	// "Authorization: Bearer <Token>" (server.admin_token).
	Token string
}

// Admin is the admin listener: /metrics (Prometheus text of every
// registered metrics set, Go runtime and process metrics included),
// /healthz (200 while the process serves), /readyz (200 once ready, else
// 503 naming what is not ready), /debug/pprof/, and with SetStatus the
// status page on / and its figures on /status.json. Its methods are safe
// for concurrent use.
type Admin struct {
	srv   *fasthttp.Server
	auth  []byte // "Bearer <token>", nil without a token
	ready func() error
	log   zerolog.Logger
	// status serves / and /status.json when set (SetStatus).
	status *Status

	mu      sync.Mutex
	serving bool
	closed  bool
	ln      net.Listener
}

// NewAdmin returns the admin listener. ready reports nil once the process
// is ready to take traffic, or an error naming what is not ready; nil ready
// means always ready. deps.Metrics is not used: /metrics writes every set
// registered with metrics.RegisterSet.
func NewAdmin(cfg AdminConfig, ready func() error, deps Deps) *Admin {
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	a := &Admin{ready: ready, log: log.With().Str("component", "admin").Logger()}
	if cfg.Token != "" {
		a.auth = []byte("Bearer " + cfg.Token)
	}
	a.srv = &fasthttp.Server{
		Handler:               a.serve,
		ReadTimeout:           10 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    1 << 20,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{a.log},
	}
	return a
}

// ReadyFunctions returns a ready func for NewAdmin: ready once every one of
// fns has started (invoker.Function.Ready), else an error naming those that
// have not.
func ReadyFunctions(fns ...*invoker.Function) func() error {
	return func() error {
		var not []string
		for _, f := range fns {
			if !f.Ready() {
				not = append(not, f.Name())
			}
		}
		if len(not) > 0 {
			return fmt.Errorf("functions not ready: %s", strings.Join(not, ", "))
		}
		return nil
	}
}

// Serve serves the admin paths on ln until Shutdown, after logging
// "listening" with listener "admin" and the bound address. It returns
// ErrAdminNeedsToken without serving when ln is not on loopback and no
// token is set, nil after Shutdown, or the listener's error.
func (a *Admin) Serve(ln net.Listener) error {
	if a.auth == nil && !isLoopback(ln.Addr()) {
		return fmt.Errorf("%w: %s", ErrAdminNeedsToken, ln.Addr())
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrServerClosed
	}
	if a.serving {
		a.mu.Unlock()
		return errors.New("gateway: admin Serve called twice")
	}
	a.serving = true
	a.ln = ln
	a.mu.Unlock()
	a.log.Log().Str("listener", "admin").Str("addr", ln.Addr().String()).Msg("listening")
	err := a.srv.Serve(ln)
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed || err == nil {
		return nil
	}
	return fmt.Errorf("gateway: admin serve: %w", err)
}

// Shutdown stops the admin listener, waiting for requests in flight until
// ctx ends. It returns nil or an error wrapping ctx's.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	ln := a.ln
	a.mu.Unlock()
	err := a.srv.ShutdownWithContext(ctx)
	if ln != nil {
		_ = ln.Close()
	}
	if err != nil {
		return fmt.Errorf("gateway: admin shutdown: %w", err)
	}
	return nil
}

func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *Admin) serve(ctx *fasthttp.RequestCtx) {
	if a.auth != nil {
		got := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
		if subtle.ConstantTimeCompare(got, a.auth) != 1 {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="sluice admin"`)
			ctx.Error("unauthorized\n", fasthttp.StatusUnauthorized)
			return
		}
	}
	path := ctx.Path()
	switch {
	case string(path) == "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		WriteMetrics(ctx)
	case a.status != nil && (string(path) == "/" || string(path) == "/status.json"):
		a.status.serveStatus(ctx, string(path) == "/status.json")
	case string(path) == "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case string(path) == "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if a.ready != nil {
			if err := a.ready(); err != nil {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.SetBodyString("not ready: " + err.Error() + "\n")
				return
			}
		}
		ctx.SetBodyString("ok\n")
	case bytes.HasPrefix(path, []byte("/debug/pprof/")) || string(path) == "/debug/pprof":
		if string(path) == "/debug/pprof" {
			ctx.Redirect("/debug/pprof/", fasthttp.StatusMovedPermanently)
			return
		}
		pprofhandler.PprofHandler(ctx)
	default:
		ctx.Error("not found\n", fasthttp.StatusNotFound)
	}
}
