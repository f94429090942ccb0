package bench

import (
	"net"

	"github.com/valyala/fasthttp"
)

// CeilingHandler is the bare fasthttp handler the suite compares the
// gateway with: it answers 200 with the request body as JSON, the least
// work a gateway echoing an event could do over the same sockets.
func CeilingHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	body := ctx.PostBody()
	if len(body) == 0 {
		body = []byte(`{}`)
	}
	ctx.SetBody(body)
}

// ServeCeiling serves CeilingHandler on ln until it is closed, with the
// same server settings the gateway uses where they affect speed.
func ServeCeiling(ln net.Listener) error {
	s := &fasthttp.Server{
		Handler:                       CeilingHandler,
		Name:                          "ceiling",
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: false,
	}
	return s.Serve(ln)
}
