package gateway

import (
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sluicehq/sluice/tracing"
)

// handleTraced runs ep's handler inside a server span: a child of the
// request's traceparent, or the root of a new trace. The span's own
// traceparent replaces the request's before the handler runs, so every
// event built from the request (sync, async, storage, invoke API) carries
// it without each handler knowing about tracing; the response carries it
// too, for the client to find the trace.
func (s *Server) handleTraced(ctx *fasthttp.RequestCtx, p *Params, ep *endpoint) {
	h := &ctx.Request.Header
	// The traceparent is parsed, not kept: no copy. A tracestate is kept
	// by the span, so it is copied, when there is one.
	var ts string
	if b := h.PeekBytes(strTracestate); len(b) > 0 {
		ts = string(b)
	}
	sp := s.tracer.Start(ep.key, tracing.KindServer, b2s(h.PeekBytes(strTraceparent)), ts, ctx.Time())
	if sp.Recording() {
		sp.SetAttributes(
			attribute.String("http.request.method", string(ctx.Method())),
			attribute.String("http.route", ep.pattern),
			attribute.String("url.path", string(ctx.Path())),
			attribute.String("sluice.request_id", string(p.id[:])),
		)
	}
	tp := sp.TraceParent()
	h.SetCanonical(strTraceparent, s2b(tp))
	ep.handle(ctx, p)
	ctx.Response.Header.SetCanonical(strTraceparent, s2b(tp))
	if sp.Recording() {
		code := ctx.Response.StatusCode()
		sp.SetAttributes(attribute.Int("http.response.status_code", code))
		if code >= 500 {
			sp.Fail(fasthttp.StatusMessage(code))
		}
	}
	sp.End(time.Time{})
}
