package lambda

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/plugins"
)

// The Runtime API (2018-06-01) a proc serves its runtime on 127.0.0.1.
const (
	apiPrefix      = "/2018-06-01/runtime/"
	invocationPath = "invocation/"
)

// Header names, in canonical form so they are set without allocating.
const (
	hdrRequestID     = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline      = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN   = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID       = "Lambda-Runtime-Trace-Id"
	hdrClientContext = "Lambda-Runtime-Client-Context"
	hdrErrorType     = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody     = "Lambda-Runtime-Function-Error-Body"
)

var acceptedOK = []byte(`{"status":"OK"}`)

// handle answers one request of c. It returns false when the connection
// must be closed.
func (pr *proc) handle(c *apiConn, r *apiRequest) bool {
	rest, ok := strings.CutPrefix(r.path, apiPrefix)
	switch {
	case !ok:
		return c.refuse(r, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.path, "")
	case rest == "init/error":
		if r.method != http.MethodPost {
			return c.refuse(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", http.MethodPost)
		}
		return pr.initError(c, r)
	}
	rest, ok = strings.CutPrefix(rest, invocationPath)
	if !ok {
		return c.refuse(r, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.path, "")
	}
	if rest == "next" {
		if r.method != http.MethodGet {
			return c.refuse(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET", http.MethodGet)
		}
		if err := c.skipBody(r); err != nil {
			return false
		}
		pr.next(c, r.close)
		return true
	}
	id, verb, ok := strings.Cut(rest, "/")
	if !ok || id == "" || (verb != "response" && verb != "error") {
		return c.refuse(r, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.path, "")
	}
	if r.method != http.MethodPost {
		return c.refuse(r, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST", http.MethodPost)
	}
	return pr.complete(c, r, id, verb == "error")
}

// refuse drops the request's body and answers it with an error.
func (c *apiConn) refuse(r *apiRequest, status int, typ, msg, allow string) bool {
	if err := c.skipBody(r); err != nil {
		return false
	}
	c.wmu.Lock()
	c.writeError(status, typ, msg, r.close, allow)
	c.wmu.Unlock()
	return true
}

// next is the long poll: it hands the runtime the invocation waiting for
// it, or leaves the poll waiting (pr.poll) for deliver to answer. The
// first poll of a runtime marks it ready.
func (pr *proc) next(c *apiConn, closing bool) {
	pr.pollOnce.Do(func() { close(pr.polled) })
	pr.mu.Lock()
	if pr.killed {
		pr.mu.Unlock()
		c.wmu.Lock()
		c.writeError(http.StatusGone, "RuntimeStopped", "this runtime is being stopped", false, "")
		c.wmu.Unlock()
		return
	}
	if inv := pr.pending; inv != nil {
		pr.pending = nil
		pr.cur = inv
		inv.delivered = true
		pr.mu.Unlock()
		// Lines the runtime wrote before it took this invocation are not its.
		pr.logs.sync(inv.id)
		c.wmu.Lock()
		c.writeInvocation(inv, closing)
		c.wmu.Unlock()
		return
	}
	old := pr.poll
	pr.poll = c
	c.closeAfterPoll = closing
	c.parked.Store(true)
	pr.mu.Unlock()
	if old != nil && old != c {
		// A poll of a connection the runtime gave up on: that connection
		// is done with.
		old.nc.Close()
	}
}

// deliver hands inv to the runtime: written by the calling goroutine
// straight onto the connection whose poll waits, or kept for the
// runtime's next poll.
func (pr *proc) deliver(inv *invocation) {
	pr.mu.Lock()
	if pr.pending != nil {
		pr.mu.Unlock()
		panic("BUG: lambda: two invocations handed to one runtime")
	}
	inv.delivered = false
	c := pr.poll
	if c == nil || pr.killed {
		pr.pending = inv
		pr.mu.Unlock()
		return
	}
	pr.poll = nil
	pr.cur = inv
	inv.delivered = true
	closing := c.closeAfterPoll
	pr.mu.Unlock()
	pr.logs.sync(inv.id)
	c.wmu.Lock()
	c.writeInvocation(inv, closing)
	if c.werr == nil {
		c.werr = c.bw.Flush()
	}
	err := c.werr
	c.wmu.Unlock()
	c.parked.Store(false)
	select {
	case c.unpark <- struct{}{}:
	default:
	}
	if err != nil {
		// The connection is gone: the runtime did not get inv, which
		// waits for its next poll (or its exit, to move elsewhere).
		pr.mu.Lock()
		if pr.cur == inv && !pr.killed {
			pr.cur = nil
			inv.delivered = false
			pr.pending = inv
		}
		pr.mu.Unlock()
		c.nc.Close()
	} else if closing {
		c.nc.Close()
	}
}

// withdraw takes back an invocation the runtime has not taken. It reports
// whether the runtime took it.
func (pr *proc) withdraw(inv *invocation) (delivered bool) {
	if pr.pending == inv {
		pr.pending = nil
	}
	if pr.cur == inv {
		pr.cur = nil
	}
	return inv.delivered
}

// writeInvocation writes the answer to a poll: inv's event and headers.
// The caller holds wmu. closing ends the connection after it.
func (c *apiConn) writeInvocation(inv *invocation, closing bool) {
	if c.werr != nil {
		return
	}
	c.writeHead(http.StatusOK)
	c.header(hdrRequestID, inv.id)
	var b [20]byte
	_, _ = c.bw.WriteString(hdrDeadline + ": ")
	_, _ = c.bw.Write(strconv.AppendInt(b[:0], inv.deadlineMS, 10))
	_, _ = c.bw.WriteString("\r\n")
	c.header(hdrFunctionARN, c.pr.pool.arn)
	if inv.traceID != "" {
		c.header(hdrTraceID, inv.traceID)
	}
	if inv.clientContext != "" {
		c.header(hdrClientContext, inv.clientContext)
	}
	c.endBody(inv.payload, closing)
}

// complete takes the response or error of the invocation in progress.
func (pr *proc) complete(c *apiConn, r *apiRequest, id string, isError bool) bool {
	pr.mu.Lock()
	inv := pr.cur
	last := pr.last
	pr.mu.Unlock()
	if inv == nil || inv.id != id {
		if id == last {
			return c.refuse(r, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" is already complete", "")
		}
		return c.refuse(r, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" is in progress", "")
	}
	body, tooLarge, err := c.readBody(r, MaxResponseSize)
	if err != nil {
		// The invocation stays in progress: the runtime may post again
		// on a new connection, or it is dying and its exit will say so.
		var bad *errBadRequest
		if errors.As(err, &bad) {
			c.wmu.Lock()
			c.writeError(bad.status, "InvalidRequestBody", "cannot read the body: "+bad.msg, true, "")
			c.wmu.Unlock()
		}
		return false
	}
	var res result
	switch {
	case tooLarge:
		res.err = &plugins.FunctionError{
			Type:    "Function.ResponseSizeTooLarge",
			Message: "Response payload size exceeded maximum allowed payload size (" + strconv.Itoa(MaxResponseSize) + " bytes).",
		}
	case isError:
		res.err = decodeErrorBody(body, r.errType)
	case r.trailerErrType != "":
		// A streamed response that failed midway: aws-lambda-go reports
		// the error in trailers after a partial body.
		eb, _ := base64.StdEncoding.DecodeString(r.trailerErrBody)
		res.err = decodeErrorBody(eb, r.trailerErrType)
	default:
		res.out = body
	}

	pr.mu.Lock()
	if pr.cur != inv {
		// Completed twice at once, or given up meanwhile.
		pr.mu.Unlock()
		return c.refuse(r, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" is already complete", "")
	}
	pr.cur = nil
	pr.last = id
	pr.served++
	pr.mu.Unlock()

	c.wmu.Lock()
	if tooLarge {
		c.writeError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Response payload size exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseSize)+" bytes).", r.close, "")
	} else if c.werr == nil {
		c.writeHead(http.StatusAccepted)
		c.endBody(acceptedOK, r.close)
	}
	c.wmu.Unlock()
	inv.done <- res // buffered; only the holder of pr.cur sends
	return true
}

// initError records the runtime's report that it failed to initialize, then
// stops it: Lambda does not keep a runtime whose init failed.
func (pr *proc) initError(c *apiConn, r *apiRequest) bool {
	body, _, err := c.readBody(r, 1<<20)
	if err != nil {
		return false
	}
	fe := decodeErrorBody(body, r.errType)
	pr.mu.Lock()
	busy := pr.cur != nil
	if !busy && pr.initErr == nil {
		pr.initErr = fe
	}
	pr.mu.Unlock()
	c.wmu.Lock()
	if busy {
		c.writeError(http.StatusForbidden, "InvalidStateTransition", "init error reported during an invocation", r.close, "")
	} else if c.werr == nil {
		c.writeHead(http.StatusAccepted)
		c.endBody(acceptedOK, r.close)
		c.werr = c.bw.Flush()
	}
	c.wmu.Unlock()
	if !busy {
		pr.kill()
	}
	return true
}
